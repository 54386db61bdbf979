"""`/lipsync` end to end: simcord's Discord, the real engine and store, the sandbox over HTTP."""

from __future__ import annotations

from typing import Any

import discord
import pytest
import simcord

from bot.config import GenerationMode
from bot.store import JobState, StoreUnavailable
from cogs.texts import SANDBOX_NOTE
from tests.cogs.conftest import Harness, button_ids

LONG_RENDER = 120.0  # sandbox seconds: long enough that a job is still rendering while a test acts


def is_ping(message: discord.Message) -> bool:
    """The one-line reply that pings a job's owner under its card (`ping_done`, `ping_failed`)."""
    return message.reference is not None and "its card above" in message.content


def card(harness: Harness) -> discord.Message:
    """The one job's card as members see it now (which becomes its result or failure); not its ping."""
    [message] = [m for m in harness.public() if not is_ping(m)]
    return message


def link_urls(message: discord.Message) -> list[str]:
    """The URLs of a message's link buttons."""
    return [
        child.url
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button) and child.url
    ]


def results_in(harness: Harness) -> list[discord.Message]:
    """Channel messages that carry or link a finished video."""
    return [m for m in harness.channel.history() if "is ready." in m.content]


async def test_happy_path_posts_the_result_video(harness: Harness) -> None:
    """Two attachments in; a private reply; the job's one card becomes the result, and a reply pings the owner.

    (It was a status message and a second message with the video: the video is now attached to the card.)
    """
    result = await harness.lipsync()
    assert result.acknowledged and result.ephemeral  # the reply is private until the job is admitted
    job = await harness.latest_job()

    final = await harness.finish(job.id)

    assert final.state is JobState.DONE, final.error_code
    assert final.delivery_kind == "file"
    [posted] = result.followups  # the token is fresh: the card is a followup, and the result was edited onto it
    message = posted.message
    assert [m.id for m in harness.public() if not is_ping(m)] == [message.id]
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert message.attachments[0].size > 10_000
    assert f"<@{harness.alice.id}>" in message.content and SANDBOX_NOTE in message.content
    assert final.delivery_message_id == message.id == final.status_message_id
    assert f"Cost: {final.charged_credits} credits." in message.content
    # No Cancel button on a finished job: the ways to run it again from its uploaded files instead.
    assert button_ids(message) == [
        f"lipsync:again:{job.id}:pro",
        f"lipsync:again:{job.id}:window",
        f"lipsync:delete:{job.id}:{harness.alice.id}",
    ]
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == final.charged_credits == 45 and balance.reserved == 0


BAD_INPUTS: list[Any] = [
    pytest.param({"video": "voice.mp3"}, "is an audio file", id="audio-in-video-slot"),
    pytest.param({"video": "notes.txt"}, "isn't a video", id="text-in-video-slot"),
    pytest.param({"audio": "face.mp4"}, "isn't an audio file", id="video-in-audio-slot"),
    pytest.param({"video": None, "youtube_url": "https://vimeo.com/1234", "end": 3.0}, "YouTube link", id="other-host"),
    pytest.param({"youtube_url": "https://youtu.be/dQw4w9WgXcQ", "end": 3.0}, "not both", id="video-and-link"),
    pytest.param({"video": None}, "the bot needs a clip with a face", id="neither"),
    pytest.param({"start": 4.0, "end": 2.0}, "must be after `start`", id="end-before-start"),
    pytest.param({"start": 2.0, "end": 2.0}, "must be after `start`", id="end-equals-start"),
    pytest.param({"start": 0.0, "end": 90.0}, "longest clip allowed here is 1:00", id="clip-too-long"),
]


@pytest.mark.parametrize(("options", "says"), BAD_INPUTS)
async def test_bad_input_gets_an_ephemeral_answer_and_costs_nothing(
    harness: Harness, options: dict[str, Any], says: str
) -> None:
    """Each mistake is answered at once, only to the member, before anything is deferred or stored."""
    result = await harness.lipsync(**options)
    assert result.ephemeral and not result.deferred
    assert result.response is not None and says in result.response.content
    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id) == []
    assert await harness.ledger_rows() == 0
    assert harness.cdn.requests == 0  # nothing was even downloaded


@pytest.mark.settings(max_input_bytes=20_000)
async def test_oversized_file_is_refused_before_download(harness: Harness) -> None:
    """Discord reports the size, so a file over the limit is refused without fetching it."""
    result = await harness.lipsync()
    assert result.ephemeral and result.response is not None
    assert "the largest file this bot accepts is 20.0 KB" in result.response.content
    assert harness.cdn.requests == 0 and await harness.ledger_rows() == 0


async def test_mode_the_server_disallows(harness: Harness) -> None:
    """A mode a manager switched off is refused at once, naming the allowed ones."""
    await harness.store.limits.set_allowed_modes(harness.guild.id, [GenerationMode.LITE])
    result = await harness.lipsync(mode="pro")
    assert result.ephemeral and result.response is not None
    assert result.response.content == "The `pro` mode isn't enabled on this server. Allowed here: lite."
    assert await harness.ledger_rows() == 0


async def test_mode_choices_show_their_price(harness: Harness) -> None:
    """The mode picker tells what each mode costs."""
    [command] = [c for c in await harness.bot.tree.fetch_commands() if c.name == "lipsync"]
    [mode] = [o for o in command.options if o.name == "mode"]
    assert isinstance(mode, discord.app_commands.Argument)
    labels = [c.name for c in mode.choices]
    assert labels == ["lite — 1 credit/frame", "standard — 1 credit/frame", "pro — 2 credits/frame"]


def private_refusal(result: simcord.InteractionResult) -> str:
    """The one answer a job refused after its files were fetched gets: the private reply, nothing else."""
    assert result.response is not None and result.response.ephemeral and result.followups == []
    return result.response.content


async def test_file_whose_name_lies_fails_after_fetch_with_nothing_spent(harness: Harness) -> None:
    """A text file named .mp4 passes the cheap checks, then the member alone learns why, and it costs nothing."""
    result = await harness.lipsync(video="liar.mp4")
    assert result.ephemeral
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.FAILED and final.error_code == "name_mismatch"
    told = private_refusal(result)
    assert told.splitlines() == [
        "❌ Your job didn't start, and nothing was charged.",
        "`liar.mp4` is named like a .mp4 file, but it's really a text file. Please send the real media file.",
    ]
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 0 and balance.reserved == 0
    assert results_in(harness) == [] and harness.public() == []


async def test_quota_refusal_names_the_limit_and_the_reset(harness: Harness) -> None:
    """Over the allowance, the job stops before spending and tells the member alone what's left and when it resets."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 10)
    result = await harness.lipsync()
    final = await harness.finish((await harness.latest_job()).id)
    assert final.state is JobState.FAILED and final.error_code == "quota_member"
    told = private_refusal(result)
    assert "You have 10 credits left today, less than this clip's likely cost of 45 credits" in told
    assert "resets <t:" in told and ":R>" in told
    assert harness.public() == []
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 0


async def test_a_database_outage_is_told_plainly_and_costs_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The database can't be reached (past the store's own retries): the member is told to try again, privately."""

    async def unreachable(*args: object, **kwargs: object) -> None:
        raise StoreUnavailable("PostgreSQL could not be reached (ConnectionRefusedError)")

    monkeypatch.setattr(harness.store.quota, "limits", unreachable)
    result = await harness.lipsync()
    assert result.ephemeral and result.response is not None
    assert result.response.content == (
        "The bot can't reach its database right now (it may be restarting). Please try again in a minute."
    )
    assert harness.public() == []
    monkeypatch.undo()
    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id) == []


async def test_active_job_limit(harness: Harness) -> None:
    """While one job renders, a second one is refused at once, ephemerally."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    first = await harness.lipsync()
    assert first.ephemeral
    second = await harness.lipsync()
    assert second.ephemeral and second.response is not None
    assert "You can have 1 job running at a time" in second.response.content
    assert len(await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id)) == 1


async def test_cancel_by_someone_else_then_by_the_owner(harness: Harness) -> None:
    """Bob's click gets a polite no; Alice's cancels, refunds, and removes the button."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    refused = await harness.bob.click(card(harness), label="Cancel")
    assert refused.ephemeral and refused.response is not None
    assert refused.response.content == f"Only <@{harness.alice.id}> can cancel job #{job.id}."
    assert (await harness.store.jobs.get(job.id)) is not None

    canceled = await harness.alice.click(card(harness), label="Cancel")
    assert canceled.ephemeral and canceled.response is not None
    assert canceled.response.content.startswith(f"Canceled job #{job.id}.")
    final = await harness.finish(job.id)
    assert final.state is JobState.CANCELED
    status = card(harness)
    assert "🛑 Canceled" in status.content and button_ids(status) == []
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 0 and balance.reserved == 0


async def test_cancel_command(harness: Harness) -> None:
    """`/cancel` refuses other members' jobs and unknown ids, and cancels the member's own."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    other = await harness.bob.slash(harness.channel, "cancel", job_id=job.id)
    assert other.response is not None and "Only <@" in other.response.content and other.ephemeral
    missing = await harness.alice.slash(harness.channel, "cancel", job_id=job.id + 100)
    assert missing.response is not None and missing.response.content == f"There is no job #{job.id + 100} here."
    mine = await harness.alice.slash(harness.channel, "cancel", job_id=job.id)
    assert mine.ephemeral and mine.response is not None and "Canceled job" in mine.response.content
    assert (await harness.finish(job.id)).state is JobState.CANCELED


async def test_result_after_the_token_expired_is_put_on_the_card_by_the_bot(harness: Harness) -> None:
    """A render that outlives the 15-minute token: the bot's own token attaches the video to the same card, and
    a reply to it pings the member.

    (It used to be a new channel message replying to the status message, which stayed.)
    """
    harness.sandbox.config.render_seconds = LONG_RENDER
    result = await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    old = card(harness)
    await harness.env.advance_time(16 * 60)  # Discord's clock: the interaction token is gone
    await harness.sandbox_clock.advance(LONG_RENDER)  # Magic Hour's clock: the render is done

    final = await harness.finish(job.id)

    assert final.state is JobState.DONE
    assert [f.message.id for f in result.followups] == [old.id]  # the card, posted while the token lived
    [message] = results_in(harness)
    assert message.id == final.delivery_message_id == final.status_message_id == old.id
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    [ping] = [m for m in harness.public() if is_ping(m)]
    assert [m.id for m in ping.mentions] == [harness.alice.id] and ping.reference is not None
    assert ping.reference.message_id == message.id
    assert [m.id for m in harness.public()] == [message.id, ping.id]


async def test_delivery_falls_back_to_a_dm_when_the_channel_refuses(harness: Harness) -> None:
    """After the token, with posting and editing in the channel forbidden, the member gets the video by DM."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.env.advance_time(16 * 60)
    for method, path in (("POST", ""), ("PATCH", "/*")):
        harness.env.inject_error(
            method,
            f"/channels/{harness.channel.id}/messages{path}",
            status=403,
            code=50013,
            message="Missing Permissions",
            times=None,
        )
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE and final.delivery_kind == "dm"
    dm = harness.alice.user.dm_channel.last_message
    assert dm is not None and dm.id == final.delivery_message_id
    assert [a.filename for a in dm.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert results_in(harness) == []


async def test_result_over_the_upload_limit_is_compressed_to_fit(harness: Harness, upload_limit: Any) -> None:
    """Too big to attach as is: re-encoded under the limit and attached."""
    upload_limit(60_000)
    result = await harness.lipsync()  # an 88 KB result
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE and final.delivery_kind == "compressed", final.error_code
    [posted] = result.followups
    [attachment] = posted.message.attachments
    assert attachment.size <= 60_000 and attachment.filename == f"sandbox-lipsync-{job.id}.mp4"
    assert "re-encoded to fit" in posted.content


async def test_result_that_cannot_fit_is_linked_with_a_fresh_link_button(harness: Harness, upload_limit: Any) -> None:
    """Far too big: a download link, and a button that fetches a newly signed one."""
    upload_limit(5_000)
    result = await harness.lipsync()
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE and final.delivery_kind == "link"
    [posted] = result.followups
    assert posted.message.attachments == [] and "use the **Download** button" in posted.content
    assert "http" not in posted.content  # the signed link is on the button, never in the text
    assert button_ids(posted.message) == [
        f"lipsync:link:{job.id}",
        f"lipsync:again:{job.id}:pro",
        f"lipsync:again:{job.id}:window",
        f"lipsync:delete:{job.id}:{harness.alice.id}",
    ]
    assert link_urls(posted.message)[0].startswith("http://127.0.0.1:")
    # Each fresh link costs a Magic Hour request: only the owner (or a manager) may ask, now and then.
    refused = await harness.bob.click(posted.message, label="New link")
    assert refused.ephemeral and refused.response is not None
    assert refused.response.content == f"Only the member who started job #{job.id} can do that."
    reads = harness.sandbox.counters.requests["get_project"]
    fresh = await harness.alice.click(posted.message, label="New link")
    assert fresh.ephemeral and fresh.response is not None
    assert fresh.response.content.startswith(f"A fresh download link for job #{job.id}: use the **Download** button")
    assert "http" not in fresh.response.content
    [url] = link_urls(fresh.response.message)
    assert url.startswith("http://127.0.0.1:")
    again = await harness.alice.click(posted.message, label="New link")
    assert again.ephemeral and again.response is not None
    assert again.response.content.startswith(f"A fresh link for job #{job.id} was made a moment ago.")
    assert harness.sandbox.counters.requests["get_project"] == reads + 1


async def test_after_a_restart_the_job_is_delivered_and_its_buttons_work(harness: Harness) -> None:
    """A job rendering during a restart is resumed, delivered with a ping, and its Cancel still answers."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.restart()

    refused = await harness.bob.click(card(harness), label="Cancel")
    assert refused.response is not None and refused.response.content.startswith("Only <@")

    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE
    [message] = results_in(harness)
    assert [m.id for m in message.mentions] == [harness.alice.id]
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert card(harness).id == message.id  # the result replaced the card the new process found


async def test_owner_cancels_a_resumed_job(harness: Harness) -> None:
    """The Cancel button of a job from before the restart cancels it in the new process."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.restart()
    canceled = await harness.alice.click(card(harness), label="Cancel")
    assert canceled.response is not None and canceled.response.content.startswith(f"Canceled job #{job.id}.")
    assert (await harness.finish(job.id)).state is JobState.CANCELED


async def test_status_moves_to_a_new_message_when_the_old_one_cannot_be_edited(harness: Harness) -> None:
    """After the token, if Discord refuses a bot-token edit of the card, a new card takes over."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.env.advance_time(16 * 60)
    old = card(harness)
    harness.env.inject_error(
        "PATCH", f"/channels/{harness.channel.id}/messages/{old.id}", status=403, code=50005, times=None
    )
    canceled = await harness.alice.slash(harness.channel, "cancel", job_id=job.id)
    assert canceled.response is not None and "Canceled job" in canceled.response.content
    final = await harness.finish(job.id)

    assert final.state is JobState.CANCELED
    [moved] = [m for m in harness.channel.history() if m.id != old.id]
    assert "🛑 Canceled" in moved.content and button_ids(moved) == []
    assert final.status_message_id == moved.id  # a later restart edits the message members can see


async def test_restart_before_submission_fails_the_job_with_nothing_spent(harness: Harness) -> None:
    """A job that hadn't reached Magic Hour when the bot stopped is failed, refunded and says so."""
    harness.sandbox.faults.hang("upload_urls")
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.watcher.reached(job.id, JobState.UPLOADING)
    await harness.restart()
    record = await harness.store.jobs.get(job.id)
    assert record is not None and record.state is JobState.FAILED and record.error_code == "interrupted"
    status = card(harness).content
    assert "❌ Failed: The bot restarted before your job reached Magic Hour" in status
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 0 and balance.reserved == 0


async def test_late_result_respects_the_servers_upload_limit(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    """A channel message uses the server's limit (not the interaction's): over it, re-encoded to fit."""
    limits = dict(discord.Guild._PREMIUM_GUILD_LIMITS)
    limits[0] = limits[0]._replace(filesize=60_000)
    monkeypatch.setattr(discord.Guild, "_PREMIUM_GUILD_LIMITS", limits)
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.env.advance_time(16 * 60)
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.delivery_kind == "compressed"
    [message] = results_in(harness)
    assert message.attachments[0].size <= 60_000 and [m.id for m in message.mentions] == [harness.alice.id]


@pytest.mark.settings(max_jobs_in_flight=1)
async def test_queue_shows_slots_and_each_members_place(harness: Harness) -> None:
    """With one slot busy, Bob's job waits; /queue tells him where it stands, and Alice hers."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    alices = await harness.latest_job()
    await harness.rendering(alices.id)
    waiting = await harness.lipsync(harness.bob)
    bobs = await harness.latest_job(harness.bob)
    assert waiting.response is not None and "Queued: 1 in line." in waiting.response.content  # private until it starts

    shown = await harness.bob.slash(harness.channel, "queue")
    assert shown.ephemeral and shown.response is not None
    assert shown.response.content.splitlines() == [
        "**Queue**: 1 of 1 job slots in use, 1 waiting in line.",
        "`—` position 1 in line",  # no number before the job is admitted: its member never saw one
    ]
    panel = await harness.bob.slash(harness.channel, "lipsync-status")  # the panel neither
    assert panel.response is not None and "• `—` position 1 in line · " in panel.response.content
    assert f"#{bobs.id}" not in panel.response.content
    labels = [
        child.label
        for row in panel.response.message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button)
    ]
    assert labels == ["Cancel", "Refresh"]
    alice_view = await harness.alice.slash(harness.channel, "queue")
    assert alice_view.response is not None and f"`#{alices.id}` 🎬 Rendering" in alice_view.response.content

    for job, member in ((bobs, harness.bob), (alices, harness.alice)):
        await harness.engine.cancel(job.id, by_user_id=member.id)
        await harness.finish(job.id)


async def test_a_manager_can_ask_for_a_fresh_link_to_a_members_result(harness: Harness, upload_limit: Any) -> None:
    """A server manager (Manage Server) may fetch a fresh link to any member's result in their server."""
    upload_limit(5_000)
    result = await harness.lipsync()
    job = await harness.latest_job()
    assert (await harness.finish(job.id)).delivery_kind == "link"
    [posted] = result.followups
    reads = harness.sandbox.counters.requests["get_project"]
    fresh = await harness.manager.click(posted.message, label="New link")
    assert fresh.ephemeral and fresh.response is not None
    assert fresh.response.content.startswith(f"A fresh download link for job #{job.id}")
    assert link_urls(fresh.response.message)[0].startswith("http://127.0.0.1:")
    assert harness.sandbox.counters.requests["get_project"] == reads + 1
