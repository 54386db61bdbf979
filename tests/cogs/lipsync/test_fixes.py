"""Refusals with one-click fixes, in Discord: a member short of credits, a voice longer than the video.

simcord's Discord, the real engine and store, the sandbox over HTTP. The fixes are buttons on the
member's private answer; a click starts the changed job through `start_job`, as `/lipsync` would.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from bot.jobs.models import JobRequest
from bot.store import JobRecord, JobState
from bot.testmedia import make_audio
from cogs.lipsync._fixes import FixesView
from tests.cogs.conftest import Harness
from tests.cogs.lipsync.test_lipsync import private_refusal


def labels(components: list[dict[str, object]]) -> list[str]:
    """The labels of a message's buttons, from its raw components."""
    return [
        str(child["label"])
        for row in components
        for child in row.get("components", [])  # type: ignore[attr-defined]
        if isinstance(child, dict) and "label" in child
    ]


async def test_a_member_short_of_credits_takes_a_one_click_fix(harness: Harness) -> None:
    """30 credits left, a clip likely to cost 45: the member alone is told, with the changes that
    would fit, each priced; pressing the 20 fps cap starts that job, which renders within what's left."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 30)
    result = await harness.lipsync()
    refused = await harness.finish((await harness.latest_job()).id)
    assert refused.state is JobState.FAILED and refused.error_code == "quota_member"
    told = private_refusal(result)
    assert "You have 30 credits left today, less than this clip's likely cost of 45 credits" in told
    assert "These would fit, each one click" in told
    assert "• at most 20 frames a second: likely cost 30 credits, 30 credits held until it finishes." in told
    assert "• the part from 0 s to 1 s: likely cost 30 credits, 30 credits held until it finishes." in told
    answer = result.response  # the private reply to the command: the refusal, its fixes under it
    assert answer is not None
    assert labels(answer.components) == ["20 fps: about 30 credits", "0 s to 1 s: about 30 credits"]
    assert harness.public() == [] and await harness.ledger_rows() == 0

    # Nobody else sees the answer; its owner presses the cap.
    started = await harness.alice.click(answer.message, label="20 fps: about 30 credits")
    assert started.response is not None and started.ephemeral  # private until the new job is admitted
    job = await harness.latest_job()
    assert job.id != refused.id and job.max_fps == 20.0
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE, final.error_code
    assert final.charged_credits == 30
    assert labels(answer.components) == []  # one job from one refusal: the buttons went
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 30 and balance.remaining == 0


async def test_a_long_voice_is_announced_with_the_part_that_would_render(harness: Harness, tmp_path: Path) -> None:
    """A 5 s voice on a 2 s video: nothing is held; the member is told only 0-2 s would render, and
    one click renders that part."""
    voice = await make_audio(tmp_path / "long-voice.mp3", seconds=5.0, tone_hz=440)
    result = await harness.lipsync(audio=("long-voice.mp3", voice.read_bytes()))
    refused = await harness.finish((await harness.latest_job()).id)
    assert refused.error_code == "voice_past_video"
    told = private_refusal(result)
    assert "The voice is 5 s long, but `face.mp4` has only 2 s: only 0 s to 2 s would be rendered" in told
    answer = result.response  # the private reply to the command: the refusal, its fixes under it
    assert answer is not None
    assert labels(answer.components) == ["0 s to 2 s: about 60 credits", "Another part…"]
    assert await harness.ledger_rows() == 0

    await harness.alice.click(answer.message, label="0 s to 2 s: about 60 credits")
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE and final.end_seconds == pytest.approx(2.0, abs=0.05)
    assert final.charged_credits == 60


async def test_the_fixes_say_when_they_have_expired(harness: Harness) -> None:
    """The buttons live in memory with the answer: when they time out, the answer says so and drops them."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 30)
    shown: list[FixesView] = []
    # The bot's own copy: discord.py drops an extension's modules when a bot closes, and loads them afresh.
    presenter = importlib.import_module("cogs.lipsync._presenter")
    offer = presenter.fixes_offer

    def keep(request: JobRequest, job: JobRecord) -> tuple[str, FixesView] | None:
        offered: tuple[str, FixesView] | None = offer(request, job)
        if offered is not None:
            shown.append(offered[1])
        return offered

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(presenter, "fixes_offer", keep)
        result = await harness.lipsync()
        await harness.finish((await harness.latest_job()).id)
    [view] = shown
    await view.on_timeout()  # what discord.py calls after `FIXES_TIMEOUT`
    answer = result.response  # the private reply to the command: the refusal, its fixes under it
    assert answer is not None
    assert answer.content.splitlines()[-1].startswith("These choices have expired; run ")
    assert labels(answer.components) == []
