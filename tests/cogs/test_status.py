"""The status message's throttle, the texts it shows, and the error replies, without Discord."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest
from discord import app_commands

from bot.app import Refused
from bot.clock import FakeClock
from bot.config import GenerationMode, QuotaWindow
from bot.errors import InvalidInput, QuotaExceeded
from bot.jobs.models import JobUpdate
from bot.store import EffectiveLimits, JobRecord, JobState, LimitKind, MemberHasActiveJobs
from cogs import render
from cogs.errors import reply_for
from cogs.status import StatusMessage, token_gone

NOW = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def job(**fields: Any) -> JobRecord:
    values: dict[str, Any] = {
        "id": 7,
        "user_id": 42,
        "guild_id": 1,
        "channel_id": 2,
        "video_filename": "face.mp4",
        "video_size": 1000,
        "audio_filename": "voice.mp3",
        "audio_size": 100,
        "youtube_url": None,
        "start_seconds": None,
        "end_seconds": None,
        "mode": GenerationMode.LITE,
        "max_fps": None,
        "name": None,
        "state": JobState.RECEIVED,
        "project_id": None,
        "estimated_credits": None,
        "charged_credits": None,
        "error_code": None,
        "error_data": None,
        "delivery_kind": None,
        "delivery_message_id": None,
        "status_channel_id": 2,
        "status_message_id": 3,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return JobRecord(**values)


def update(state: JobState, **fields: Any) -> JobUpdate:
    passed = (
        "queue_position",
        "activity",
        "activity_data",
        "remaining_credits",
        "credits_reserved",
        "resets_at",
        "sandbox",
    )
    extra = {k: fields.pop(k) for k in passed if k in fields}
    return JobUpdate(job=job(state=state, **fields), elapsed=fields.pop("elapsed", 83.0), **extra)


class FakeInteraction:
    """Just what `StatusMessage` uses of an interaction: its expiry and `edit_original_response`."""

    def __init__(self) -> None:
        self.expires_at = discord.utils.utcnow() + dt.timedelta(minutes=15)
        self.edits: list[tuple[str, discord.ui.View | None]] = []

    async def edit_original_response(self, *, content: str, view: discord.ui.View | None, **_: Any) -> None:
        self.edits.append((content, view))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sink_for(clock: FakeClock, interaction: FakeInteraction) -> StatusMessage:
    return StatusMessage(
        cast(discord.Client, None),
        clock,
        channel_id=2,
        message_id=3,
        interaction=cast(discord.Interaction, interaction),
        min_interval=3.0,
    )


async def test_edits_at_most_every_interval_and_shows_the_newest(clock: FakeClock) -> None:
    """Updates inside the interval are coalesced into one later edit showing the latest state."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RECEIVED, queue_position=2))
    assert len(interaction.edits) == 1 and "position 2" in interaction.edits[0][0]

    await sink.update(update(JobState.RECEIVED, queue_position=2))  # nothing visible changed
    await clock.advance(1)
    await sink.update(update(JobState.FETCHING))
    await sink.update(update(JobState.UPLOADING, estimated_credits=45))
    assert len(interaction.edits) == 1  # both wait for the interval

    await clock.advance(2)
    assert len(interaction.edits) == 2
    content, view = interaction.edits[1]
    assert "📤 Uploading to Magic Hour" in content and "Estimate: 45 credits" in content
    assert view is not None and [item.custom_id for item in view.children] == ["lipsync:cancel:7"]  # type: ignore[attr-defined]


class FlakyInteraction(FakeInteraction):
    """Fails the first edit with a Discord server error."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def edit_original_response(self, *, content: str, view: discord.ui.View | None, **_: Any) -> None:
        if self.failures:
            self.failures -= 1
            response = SimpleNamespace(status=500, reason="Server Error")
            raise discord.HTTPException(cast(Any, response), "try again")
        await super().edit_original_response(content=content, view=view)


async def test_final_state_survives_a_failed_edit_and_late_updates(clock: FakeClock) -> None:
    """A failed final edit is retried once; a progress snapshot after the final one is ignored."""
    interaction = FlakyInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.DONE, charged_credits=45))
    assert interaction.edits == []
    await sink.update(update(JobState.RENDERING))  # a late listener snapshot
    await asyncio.sleep(0)  # let the retry task start and wait on the clock
    assert clock.sleepers == 1  # the retry waits for the interval
    await clock.advance(3)
    assert len(interaction.edits) == 1
    content, view = interaction.edits[0]
    assert "✅ Done" in content and view is None


async def test_terminal_state_is_shown_at_once_and_removes_the_button(clock: FakeClock) -> None:
    """A finished job never waits for the throttle, and a pending delayed edit is dropped."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RENDERING))
    await sink.update(update(JobState.DOWNLOADING))
    await sink.update(update(JobState.DONE, charged_credits=45))
    assert len(interaction.edits) == 2
    content, view = interaction.edits[1]
    assert content.splitlines()[1] == "✅ Done" and "Cost: 45 credits." in content and view is None
    await clock.advance(10)
    assert len(interaction.edits) == 2 and sink.edits == 2


def test_status_text_for_each_kind_of_ending() -> None:
    """Failure says why and that nothing was spent; cancel says what was charged; sandbox says so."""
    failed = render.status_text(update(JobState.FAILED, error_code="magic_hour_no_source_face", sandbox=True))
    assert "❌ Failed: Magic Hour couldn't find a face in the video." in failed
    assert "No credits were used" in failed and "Took 1 min 23 s." in failed
    assert failed.endswith(render.SANDBOX_NOTE)
    canceled = render.status_text(update(JobState.CANCELED, charged_credits=12))
    assert "Charged: 12 credits (what Magic Hour charged for it)." in canceled
    reset = NOW + dt.timedelta(hours=12)
    running = render.status_text(
        update(
            JobState.RENDERING,
            estimated_credits=45,
            remaining_credits=555,
            credits_reserved=True,
            resets_at=reset,
            name="intro",
            activity="activity_fetch",
            activity_data={"filename": "a`b.mp4"},
        )
    )
    assert running.startswith("**Lip-sync job #7** “intro” · lite · by <@42>")
    assert "🎬 Rendering · fetching `aˋb.mp4`" in running  # a name can't close its code span
    assert (
        f"Estimate: 45 credits · you have 555 credits left after this job (resets <t:{int(reset.timestamp())}:R>)"
        in running
    )
    fetching = render.status_text(update(JobState.FETCHING, remaining_credits=600))
    assert "Estimate: worked out once the files are checked · you have 600 credits left" in fetching
    assert "after this job" not in fetching
    assert f"Started <t:{int(NOW.timestamp())}:R>." in running


def test_result_text() -> None:
    """Links, re-encodes and sandbox renders are each called out."""
    done = job(state=JobState.DONE, charged_credits=45)
    linked = render.result_text(done, sandbox=False, kind="link", link="https://example.test/v.mp4")
    assert linked.startswith("<@42>, your lip-sync job #7 is ready. Cost: 45 credits.")
    assert "Download it: https://example.test/v.mp4" in linked and "**New link**" in linked
    assert render.SANDBOX_NOTE not in linked
    squeezed = render.result_text(done, sandbox=True, kind="compressed", mention=False)
    assert squeezed.startswith("Your lip-sync job #7") and "re-encoded" in squeezed
    assert squeezed.endswith(render.SANDBOX_NOTE)


def test_quota_text_names_source_and_reset() -> None:
    """The member sees their limit's source, what's held by running jobs, pools and the reset."""
    balance = EffectiveLimits(
        allowance=600,
        limit_kind=LimitKind.ROLE,
        granted=50,
        used=100,
        reserved=45,
        member_available=550,
        pool_limit=5000,
        pool_available=1000,
        budget_limit=None,
        budget_available=None,
        remaining=550,
        window_start=NOW,
        resets_at=NOW + dt.timedelta(days=1),
        active_jobs=1,
        max_active_jobs=1,
        guild=None,
    )
    text = render.quota_text(balance, QuotaWindow.DAILY)
    assert f"Left: **550 credits** · resets <t:{int((NOW + dt.timedelta(days=1)).timestamp())}:R>" in text
    assert "Allowance: 600 credits per day, from the limit for one of your roles." in text
    assert "Extra granted this period: 50 credits." in text
    assert "(45 credits held by running jobs" in text and "shared pool has 1,000 credits left" in text


def test_mode_labels_carry_the_price() -> None:
    assert [render.mode_label(m) for m in GenerationMode] == [
        "lite — 1 credit/frame",
        "standard — 1 credit/frame",
        "pro — 2 credits/frame",
    ]


def test_long_texts_are_clipped_to_discords_limit() -> None:
    text = render.status_text(update(JobState.FAILED, error_code="magic_hour_error", error_data={"detail": "x" * 5000}))
    assert len(text) == render.MAX_CONTENT and text.endswith("…")


def test_error_replies(caplog: pytest.LogCaptureFixture) -> None:
    """Members' mistakes show their own message; anything else an apology with a logged reference."""
    command: Any = SimpleNamespace(name="lipsync")
    assert reply_for(InvalidInput("bad_max_fps", limit=60)) == "`max_fps` must be between 1 and 60."
    wrapped = app_commands.CommandInvokeError(command, QuotaExceeded("active_jobs", limit=2))
    assert reply_for(wrapped).startswith("You can have 2 jobs running at a time")
    assert "`/cancel`" in reply_for(wrapped)
    assert reply_for(Refused(InvalidInput("guild_not_allowed"))) == "This bot isn't enabled on this server."
    assert reply_for(MemberHasActiveJobs(42, [3, 4])).startswith("Some of your jobs are still running (#3, #4).")
    with caplog.at_level(logging.ERROR, logger="cogs.errors"):
        apology = reply_for(app_commands.CommandInvokeError(command, ZeroDivisionError("boom")))
    reference = apology.split("`")[1]
    assert apology.startswith("Sorry, something went wrong on the bot's side.")
    assert f"reference {reference}" in caplog.text and "ZeroDivisionError" in caplog.text


class _Response:
    def __init__(self, status: int) -> None:
        self.status = status
        self.reason = "test"


@pytest.mark.parametrize(
    ("status", "code", "gone"),
    [(401, 50027, True), (404, 10015, True), (404, 10062, True), (404, 10008, False), (403, 50013, False)],
)
def test_token_gone(status: int, code: int, gone: bool) -> None:
    """Only the answers that mean "this interaction token is dead" switch to the bot's own token."""
    error = discord.HTTPException(cast(Any, _Response(status)), {"code": code, "message": "x"})
    assert token_gone(error) is gone
