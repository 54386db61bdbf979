"""Each Discord delivery fallback is counted in `lipsync_delivery_fallbacks_total`.

`ResultPoster` tries the job's card (an edit), a followup, then a channel message, then a DM, and at
each place attaches the file, a re-encoded copy, or a link. These tests refuse the card's edits and
force a followup failure (and, in the second, a channel that refuses the post) on a result too
large for the interaction's upload limit, through simcord and the real bot, and read the counters
from the bot's own metrics registry.

A fallback is counted when it is taken, even if the message it was for then fails: the first test's
result is re-encoded for the followup, the followup fails, and the channel gets the original file.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.ops.metrics import FALLBACKS
from bot.store import JobState
from tests.cogs.conftest import Harness

LONG_RENDER = 120.0  # sandbox seconds: the job is still rendering while the test sets up the faults


def fallbacks(harness: Harness) -> dict[str, float]:
    """Every fallback's count, as a scrape of the bot's registry would show it."""
    registry = harness.bot.services.metrics.registry
    counts = {f: registry.get_sample_value("lipsync_delivery_fallbacks_total", {"fallback": f}) for f in FALLBACKS}
    return {f: value or 0.0 for f, value in counts.items()}


Fault = tuple[str, str, int, int, str, int | None]  # method, path, status, code, message, times (None: always)


async def rendered_with_faults(harness: Harness, *faults: Fault) -> int:
    """Start a job, wait until it renders, arm the Discord faults, let the render finish; the job's id."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    for method, path, status, code, message, times in faults:
        harness.env.inject_error(method, path, status=status, code=code, message=message, times=times)
    await harness.sandbox_clock.advance(LONG_RENDER)
    return job.id


# Discord refuses an upload over the limit with 413 (40005); any failure that isn't "token gone" falls back.
FOLLOWUP_REFUSED: Fault = ("POST", "/webhooks/*", 413, 40005, "Request entity too large", 1)
# Every edit of the card through the interaction refused: the result can't be put on it.
CARD_REFUSED: Fault = ("PATCH", "/webhooks/*", 413, 40005, "Request entity too large", None)


async def test_compressed_then_channel_fallbacks_are_counted(
    harness: Harness, upload_limit: Callable[[int], None]
) -> None:
    """A result re-encoded for the followup counts `compressed`; the followup failing counts `channel`.

    The channel's own limit (10 MiB) takes the original file, so nothing else is counted.
    """
    upload_limit(60_000)  # the 88 KB result is re-encoded to fit the interaction's limit
    assert fallbacks(harness) == dict.fromkeys(FALLBACKS, 0.0)

    job_id = await rendered_with_faults(harness, CARD_REFUSED, FOLLOWUP_REFUSED)
    final = await harness.finish(job_id)

    assert final.state is JobState.DONE and final.delivery_kind == "file", final.error_code
    [message] = [m for m in harness.channel.history() if m.id == final.delivery_message_id]
    assert [m.id for m in message.mentions] == [harness.alice.id]
    assert fallbacks(harness) == {"compressed": 1.0, "link": 0.0, "channel": 1.0, "dm": 0.0}


async def test_link_channel_and_dm_fallbacks_are_counted(harness: Harness, upload_limit: Callable[[int], None]) -> None:
    """A result that can't fit the followup counts `link`; the followup failing `channel`; the channel refusing `dm`."""
    upload_limit(5_000)  # no re-encoding fits: the followup would carry a link
    channel_refused = (
        "POST", f"/channels/{harness.channel.id}/messages", 403, 50013, "Missing Permissions", 1
    )  # fmt: skip

    job_id = await rendered_with_faults(harness, CARD_REFUSED, FOLLOWUP_REFUSED, channel_refused)
    final = await harness.finish(job_id)

    assert final.state is JobState.DONE and final.delivery_kind == "dm", final.error_code
    dm = harness.alice.user.dm_channel.last_message
    assert dm is not None and dm.id == final.delivery_message_id
    assert [a.filename for a in dm.attachments] == [f"sandbox-lipsync-{job_id}.mp4"]
    assert fallbacks(harness) == {"compressed": 0.0, "link": 1.0, "channel": 1.0, "dm": 1.0}
