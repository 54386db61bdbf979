"""The status message's throttle, the texts it shows, and the error replies, without Discord."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import logging
import re
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest
from discord import app_commands

from bot import bounds, words
from bot.app import Refused
from bot.bounds import OutOfBounds
from bot.clock import FakeClock
from bot.config import GenerationMode, QuotaWindow
from bot.errors import InvalidInput, QuotaExceeded
from bot.jobs.endings import STARTING_REASONS, UNREAD_REASONS
from bot.jobs.models import JobUpdate
from bot.store import (
    Balance,
    JobRecord,
    JobState,
    LedgerEntry,
    LedgerKind,
    LimitKind,
    MemberHasActiveJobs,
)
from cogs import texts
from cogs.errors import reply_for
from cogs.lipsync._pacing import EditPacer
from cogs.lipsync._status import StatusMessage, token_gone
from cogs.lipsync._texts import canceled_text, private_progress_text, result_text, status_text
from cogs.manage._texts import grant_text, quota_text
from cogs.texts._style import _UNREAD_REASONS
from tests.jobs.test_endings import every_decision
from tests.store.test_usage_figures import limits as effective_limits

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
        "expected_start",
        "render_started_at",
        "activity",
        "activity_data",
        "expected_at",
        "remaining_credits",
        "credits_reserved",
        "resets_at",
        "sandbox",
    )
    extra = {k: fields.pop(k) for k in passed if k in fields}
    return JobUpdate(job=job(state=state, **fields), elapsed=fields.pop("elapsed", 83.0), **extra)


class FakeInteraction:
    """Just what `StatusMessage` uses of an interaction: its expiry, the private reply, and followups.

    `private` lists the private reply's texts; `card` every post and edit of the public card (content
    and view); `sent` the public messages posted (content, allowed mentions); `deleted` the ids removed.
    """

    def __init__(self) -> None:
        self.expires_at = discord.utils.utcnow() + dt.timedelta(minutes=15)
        self.private: list[str] = []
        self.card: list[tuple[str, discord.ui.View | None]] = []
        self.sent: list[tuple[str, discord.AllowedMentions | None]] = []
        self.deleted: list[int] = []
        self.attached: list[list[str]] = []  # the files each edit put on the card
        self.followup = self
        self.channel = FakeChannel()  # the bot's own posts in the job's channel
        self._next_id = 100

    @property
    def edits(self) -> list[tuple[str, discord.ui.View | None]]:
        return self.card

    async def edit_original_response(self, *, content: str, **_: Any) -> None:
        self.private.append(content)

    async def send(
        self, content: str, *, view: Any = None, allowed_mentions: discord.AllowedMentions | None = None, **_: Any
    ) -> SimpleNamespace:
        self._next_id += 1
        self.card.append((content, None if view is discord.utils.MISSING else view))
        self.sent.append((content, allowed_mentions))
        return SimpleNamespace(id=self._next_id)

    async def edit_message(
        self,
        message_id: int,
        *,
        content: str,
        view: discord.ui.View | None,
        attachments: list[discord.File] = discord.utils.MISSING,
        **_: Any,
    ) -> None:
        self.card.append((content, view))
        if attachments is not discord.utils.MISSING:
            self.attached.append([file.filename for file in attachments])

    async def delete_message(self, message_id: int) -> None:
        self.deleted.append(message_id)


class FakeChannel:
    """Just what `StatusMessage` uses of the bot's own view of a channel: the replies that ping."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, discord.MessageReference | None, discord.AllowedMentions | None]] = []

    def get_partial_messageable(self, channel_id: int, *, guild_id: int | None = None) -> FakeChannel:
        return self

    async def send(
        self,
        content: str,
        *,
        reference: discord.MessageReference | None = None,
        allowed_mentions: discord.AllowedMentions | None = None,
        **_: Any,
    ) -> SimpleNamespace:
        self.sent.append((content, reference, allowed_mentions))
        return SimpleNamespace(id=900 + len(self.sent))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def sink_for(
    clock: FakeClock, interaction: FakeInteraction, message_id: int | None = 3, pacer: EditPacer | None = None
) -> StatusMessage:
    """A job's display; `message_id` None: a new job whose card isn't posted yet."""
    return StatusMessage(
        cast(discord.Client, interaction.channel),
        clock,
        channel_id=2,
        guild_id=1,
        message_id=message_id,
        interaction=cast(discord.Interaction, interaction),
        min_interval=3.0,
        pacer=pacer,
    )


async def test_edits_at_most_every_interval_and_shows_the_newest(clock: FakeClock) -> None:
    """Private progress until the credits are reserved; updates inside the interval coalesce into one later edit."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction, message_id=None)
    await sink.update(update(JobState.RECEIVED, queue_position=2))
    assert interaction.private == [
        "⏳ Queued: 2 in line.\nOnly you can see this until your job is admitted; then its card appears in the channel."
    ]
    await sink.update(update(JobState.RECEIVED, queue_position=2))  # nothing visible changed
    await clock.advance(1)
    await sink.update(update(JobState.FETCHING))
    await sink.update(update(JobState.UPLOADING, estimated_credits=45, credits_reserved=True))
    assert len(interaction.private) == 1 and interaction.card == []  # both wait for the interval

    await clock.advance(2)
    [(content, view)] = interaction.card  # the card, posted once the job is admitted
    assert "📤 Uploading" in content and "Likely cost: 45 credits, held until it finishes" in content
    assert view is not None and [item.custom_id for item in view.children] == ["lipsync:cancel:7"]  # type: ignore[attr-defined]
    assert interaction.sent == [(content, interaction.sent[0][1])] and interaction.sent[0][1] is not None
    assert interaction.sent[0][1].users is False or interaction.sent[0][1].users == []  # the card pings no one
    assert (
        interaction.private[-1] == "▶️ Your job #7 has started: [follow it here](https://discord.com/channels/1/2/101)."
    )


class FlakyInteraction(FakeInteraction):
    """Fails the first edit of the card with a Discord server error."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def edit_message(self, message_id: int, *, content: str, view: discord.ui.View | None, **_: Any) -> None:
        if self.failures:
            self.failures -= 1
            response = SimpleNamespace(status=500, reason="Server Error")
            raise discord.HTTPException(cast(Any, response), "try again")
        await super().edit_message(message_id, content=content, view=view)


async def test_final_state_survives_a_failed_edit_and_late_updates(clock: FakeClock) -> None:
    """A failed final edit is retried once; a progress snapshot after the final one is ignored."""
    interaction = FlakyInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.CANCELED, charged_credits=0))
    assert interaction.edits == []
    await sink.update(update(JobState.RENDERING))  # a late listener snapshot
    await asyncio.sleep(0)  # let the retry task start and wait on the clock
    assert clock.sleepers == 1  # the retry waits for the interval
    await clock.advance(3)
    assert len(interaction.edits) == 1
    content, view = interaction.edits[0]
    assert "🛑 Canceled" in content and view is None


async def test_terminal_state_is_shown_at_once_and_removes_the_button(clock: FakeClock) -> None:
    """A finished job never waits for the throttle, and a pending delayed edit is dropped."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RENDERING))
    await sink.update(update(JobState.DOWNLOADING))
    await sink.update(update(JobState.DONE, charged_credits=45, delivery_kind="dm"))
    assert len(interaction.edits) == 2
    content, view = interaction.edits[1]
    assert content.splitlines()[1] == "✅ Done · took 1:23 · sent by direct message"
    assert "Cost: 45 credits." in content and view is None
    await clock.advance(10)
    assert len(interaction.edits) == 2 and sink.edits == 2


def only_the_owner(mentions: discord.AllowedMentions | None, owner: int = 42) -> bool:
    """Whether a message's allowed mentions let it ping `owner` and no one else."""
    assert mentions is not None and mentions.everyone is False and mentions.roles is False
    return [user.id for user in cast(list[discord.Object], mentions.users)] == [owner]


async def test_a_result_on_the_card_is_followed_by_a_reply_that_pings_only_the_owner(clock: FakeClock) -> None:
    """The deliverer edited the card into the result: it stays as it is, and a reply to it pings its owner."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RENDERING))
    video = discord.File(io.BytesIO(b"mp4"), filename="lipsync-7.mp4")
    assert await sink.become_result(7, "the result", discord.ui.View(), video) == 3
    await sink.update(update(JobState.DELIVERING))  # a late progress snapshot never replaces the result
    await sink.update(update(JobState.DONE, charged_credits=45, delivery_kind="file", delivery_message_id=3))
    assert [content for content, _ in interaction.card][1:] == ["the result"] and interaction.deleted == []
    assert interaction.attached == [["lipsync-7.mp4"]]
    [(ping, reference, mentions)] = interaction.channel.sent
    assert ping == "<@42>, your job #7 is ready: the result is on its card above."
    assert reference is not None and reference.message_id == 3 and only_the_owner(mentions)
    assert sink.message_id == 3


@pytest.mark.parametrize("ping", [True, False])
async def test_a_failure_is_written_on_the_card_and_pings_only_the_owner(clock: FakeClock, ping: bool) -> None:
    """An edit pings no one: the card says what failed, and a reply to it pings the owner (if they want it)."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RENDERING))
    await sink.update(update(JobState.FAILED, error_code="magic_hour_no_source_face", project_id="p1", ping_owner=ping))
    content, _view = interaction.card[-1]
    assert content.startswith("**Lip-sync job #7** · lite · by <@42>\n❌ Failed: Magic Hour couldn't find a face")
    assert interaction.sent == [] and interaction.deleted == [] and sink.message_id == 3  # the same card
    if not ping:
        assert interaction.channel.sent == []
        return
    [(text, reference, mentions)] = interaction.channel.sent
    assert text == "<@42>, your job #7 didn't work out: its card above says why and what to change."
    assert reference is not None and reference.message_id == 3 and only_the_owner(mentions)


async def test_a_cancel_pings_no_one(clock: FakeClock) -> None:
    """A cancel is the member's own act: the card says so, and nobody is pinged."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    await sink.update(update(JobState.RENDERING))
    await sink.update(update(JobState.CANCELED, charged_credits=0))
    assert "🛑 Canceled" in interaction.card[-1][0] and interaction.channel.sent == []


def test_a_place_far_back_in_line_is_not_a_number_that_goes_stale() -> None:
    """Only the first few places are followed edit by edit: behind them the private reply says so."""
    with words.using("en"):
        near = private_progress_text(update(JobState.RECEIVED, queue_position=10))
    assert near.startswith("⏳ Queued: 10 in line.\n")
    with words.using("en"):
        far = private_progress_text(update(JobState.RECEIVED, queue_position=11))
    assert far.startswith("⏳ Waiting in line, not yet among the first 10: your place shows here once it is.\n")
    assert "11" not in far


def test_status_text_for_each_kind_of_ending() -> None:
    """Failure says why and what it cost (0, refunded); cancel states the charge; sandbox says how it counts."""
    failed = status_text(update(JobState.FAILED, error_code="magic_hour_no_source_face", sandbox=True))
    assert "❌ Failed: Magic Hour couldn't find a face in the video." in failed
    assert "Cost: 0 credits (refunded)." in failed
    assert "Took" not in failed and "took" not in failed  # how long a failure took is noise
    assert failed.endswith(texts.SANDBOX_NOTE)
    assert "charged to your allowance here; no Magic Hour credits spent" in texts.SANDBOX_NOTE
    canceled = status_text(update(JobState.CANCELED, charged_credits=12))
    assert "Cost: 12 credits, what Magic Hour charged for it." in canceled
    unknown = status_text(update(JobState.FAILED, error_code="unknown_at_magic_hour", charged_credits=45))
    assert "Cost: 45 credits, counted as spent until the bot's operator checks it with Magic Hour." in unknown
    quick = status_text(update(JobState.DONE, charged_credits=1234, elapsed=0.2))
    assert quick.splitlines()[1] == "✅ Done" and "Cost: 1,234 credits." in quick  # no "took 0 s"
    reset = NOW + dt.timedelta(hours=12)
    running = status_text(
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
    assert running.startswith("**Lip-sync job #7** `intro` · lite · by <@42>")
    assert "fetching `aˋb.mp4`" in running  # a name can't close its code span
    assert "Likely cost: 45 credits, held until it finishes (you pay only what Magic Hour charges)." in running
    assert "555" not in running and "left" not in running  # the channel never sees a balance
    assert f"Started <t:{int(NOW.timestamp())}:R>." in running
    fetching = status_text(update(JobState.FETCHING, remaining_credits=600))
    assert "Estimate: worked out once the files are checked." in fetching and "600" not in fetching


def test_rendering_tells_elapsed_time_and_the_expected_finish() -> None:
    """While Magic Hour renders: how long so far, and when it should be done (or that it is late)."""
    eta = NOW + dt.timedelta(minutes=5)
    early = status_text(update(JobState.RENDERING, elapsed=4.0))
    assert early.splitlines()[1] == "🎬 Rendering · a few seconds so far"  # no estimate yet: None
    timed = status_text(update(JobState.RENDERING, elapsed=185.0, expected_at=eta))
    assert timed.splitlines()[1] == (f"🎬 Rendering · 3 min so far · should be done <t:{int(eta.timestamp())}:R>")
    waiting = status_text(update(JobState.SUBMITTED, elapsed=40.0, expected_at=eta))
    assert waiting.splitlines()[1] == f"🕒 Rendering · 40 s so far · should be done <t:{int(eta.timestamp())}:R>"
    late = status_text(update(JobState.RENDERING, elapsed=301.0, expected_at=eta))
    assert late.splitlines()[1] == "🎬 Rendering · 5 min so far · taking longer than expected"
    naive = status_text(update(JobState.RENDERING, elapsed=185.0, expected_at=eta.replace(tzinfo=None)))
    assert naive.splitlines()[1] == timed.splitlines()[1]
    uploading = status_text(update(JobState.UPLOADING, elapsed=185.0, expected_at=eta))
    assert "so far" not in uploading and "should be done" not in uploading


async def test_a_rendering_job_is_refreshed_while_nothing_else_changes(clock: FakeClock) -> None:
    """The engine says nothing during a render; the status message still moves its clock on, within the throttle."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction)
    eta = NOW + dt.timedelta(seconds=100)
    await sink.update(update(JobState.RENDERING, elapsed=0.0, expected_at=eta))
    await asyncio.sleep(0)  # let the refresh start and wait on the clock
    assert clock.sleepers == 1
    assert [line.splitlines()[1] for line, _ in interaction.edits] == [
        f"🎬 Rendering · a few seconds so far · should be done <t:{int(eta.timestamp())}:R>"
    ]
    for _ in range(8):  # two minutes, in the refresh's own steps
        await clock.advance(15)
    shown = [line.splitlines()[1] for line, _ in interaction.edits]
    assert shown[1:] == [
        f"🎬 Rendering · 10 s so far · should be done <t:{int(eta.timestamp())}:R>",
        f"🎬 Rendering · 30 s so far · should be done <t:{int(eta.timestamp())}:R>",
        f"🎬 Rendering · 40 s so far · should be done <t:{int(eta.timestamp())}:R>",
        f"🎬 Rendering · 1 min so far · should be done <t:{int(eta.timestamp())}:R>",
        "🎬 Rendering · 1 min so far · taking longer than expected",
        "🎬 Rendering · 2 min so far · taking longer than expected",
    ]
    # Edited only when the words changed, never more often than the throttle allows.
    assert sink.edits == 7
    await sink.update(update(JobState.DONE, charged_credits=45, elapsed=120.0))
    await clock.advance(60)
    assert sink.edits == 8 and clock.sleepers == 0  # a finished job is never refreshed


async def test_a_refusal_is_told_privately_and_nothing_is_public(clock: FakeClock) -> None:
    """A job refused after its files were fetched: the private reply says why; no card was ever posted."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction, message_id=None)
    await sink.update(update(JobState.FETCHING))
    refused = update(
        JobState.FAILED,
        error_code="quota_member",
        error_data={
            "available": 15,
            "requested": 45,
            "estimate": 38,
            "hold": 45,
            "window": "daily",
            "resets_at": NOW.isoformat(),
        },
    )
    await sink.update(refused)
    text = interaction.private[-1]
    assert text.startswith("❌ Your job didn't start, and nothing was charged.\n")  # no job number
    assert "You have 15 credits left today, less than this clip's likely cost of 38 credits (45 credits held" in text
    assert interaction.card == [] and interaction.deleted == []  # the refusal was never written in public
    await sink._flush()  # e.g. a refresh that was already waiting to edit
    await sink.update(update(JobState.RENDERING))
    assert interaction.card == [] and clock.sleepers == 0


async def test_a_cancel_before_the_card_is_private_too(clock: FakeClock) -> None:
    """A job canceled while it waited in line never reaches the channel."""
    interaction = FakeInteraction()
    sink = sink_for(clock, interaction, message_id=None)
    await sink.update(update(JobState.RECEIVED, queue_position=1))
    await sink.update(update(JobState.CANCELED, charged_credits=0))
    assert interaction.private[-1] == "🛑 You canceled your job before it started; nothing was charged."
    assert interaction.card == []


def test_result_text() -> None:
    """Re-encodes, links (on buttons, never in the text) and sandbox renders are each called out."""
    done = job(state=JobState.DONE, charged_credits=45)
    linked = result_text(done, sandbox=False, kind="link", linked=True)
    assert linked.startswith("<@42>, your lip-sync job #7 is ready. Cost: 45 credits.")
    assert "**Download** button" in linked and "**New link**" in linked and "http" not in linked
    assert texts.SANDBOX_NOTE not in linked
    unlinked = result_text(done, sandbox=False, kind="link", linked=False)
    assert "press **New link** for a download link" in unlinked
    delivering = job(state=JobState.DELIVERING, estimated_credits=50, charged_credits=45)
    assert "Cost: 45 credits." in result_text(delivering, sandbox=False, kind="file")  # the charge, not the estimate
    squeezed = result_text(done, sandbox=True, kind="compressed", mention=False)
    assert squeezed.startswith("Your lip-sync job #7") and "re-encoded" in squeezed
    assert squeezed.endswith(texts.SANDBOX_NOTE)
    assert "no credits spent" not in squeezed  # the sandbox charges the allowance: it says so


def test_quota_text_names_source_and_reset() -> None:
    """The member sees their limit's source, what's held by running jobs, pools and the reset."""
    balance = limits(
        limit_kind=LimitKind.ROLE,
        granted=50,
        used=100,
        reserved=45,
        member_available=550,
        pool_limit=5000,
        pool_available=1000,
        remaining=550,
        active_jobs=1,
    )
    text = quota_text(balance, QuotaWindow.DAILY)
    assert f"Left: **550 credits** · resets <t:{int((NOW + dt.timedelta(days=1)).timestamp())}:R>" in text
    assert "Allowance: 600 credits per day, from a role's limit." in text
    named = quota_text(balance, QuotaWindow.DAILY, role_id=77)
    assert "Allowance: 600 credits per day, from the limit of the role <@&77>." in named
    assert "Extra granted this period: 50 credits." in text
    assert "(45 credits held by running jobs" in text and "shared pool has 1,000 credits left" in text
    assert "Less than the allowance gives" not in text


def limits(**fields: Any) -> Balance:
    """A `Balance` of these `EffectiveLimits` fields; its grants are one row of `granted`."""
    window = {"window_start": NOW, "resets_at": NOW + dt.timedelta(days=1)}
    effective = effective_limits(**{**window, **fields})
    granted = effective.granted
    rows = [LedgerEntry(1, LedgerKind.GRANT, None, 1, 42, None, granted, None, NOW, NOW, 5, None)] if granted else []
    return Balance.of(effective, rows)


def test_what_is_left_names_the_pool_or_budget_that_limits_it() -> None:
    """ "Left" is what can really be spent; when a pool or budget is the reason, the member is told which."""
    empty_pool = limits(pool_limit=500, pool_available=-20, remaining=0)
    text = quota_text(empty_pool, QuotaWindow.DAILY)
    assert "Left: **0 credits**" in text
    assert "Less than the allowance gives: this server's shared pool has 0 credits left." in text
    budget = limits(
        budget_limit=10_000, budget_available=1_500, member_available=12_000, allowance=12_000, remaining=1_500
    )
    assert "(the bot's overall budget has 1,500 credits left)" in texts.left_text(budget, QuotaWindow.WEEKLY)
    assert "1,500 credits left this week" in texts.left_text(budget, QuotaWindow.WEEKLY)
    taken = limits(granted=-100, member_available=500, remaining=500)
    assert "Taken back this period: 100 credits." in quota_text(taken, QuotaWindow.DAILY)
    assert "-100" not in quota_text(taken, QuotaWindow.DAILY)


def test_grant_answers_say_what_really_happened() -> None:
    """Grants, take-backs clamped to what could be taken, and nothing to take: each in its own words."""
    after = limits(remaining=0, granted=-100, used=500, member_available=0)
    clamped = grant_text(42, -500, -100, after, QuotaWindow.DAILY)
    assert clamped.startswith("Took back 100 credits from <@42>, all they had left unspent (you asked for 500 credits)")
    assert clamped.endswith("they have 0 credits left.")
    exact = grant_text(42, -100, -100, after, QuotaWindow.DAILY)
    assert exact.startswith("Took back 100 credits from <@42> for this period")
    nothing = grant_text(42, -10, None, after, QuotaWindow.DAILY)
    assert nothing == (
        "<@42> has nothing left to take back today: their allowance is already used or held by running jobs"
        " (500 credits used)."
    )
    raced = limits(remaining=0, granted=-100, used=545, member_available=-45)
    told = grant_text(42, -100, -100, raced, QuotaWindow.DAILY)
    assert told.endswith(
        "they have 0 credits left.\nOver the allowance by 45 credits: more was charged or taken back than was"
        " left. New jobs can start after the reset."
    )
    pooled = limits(remaining=5, granted=1_000, member_available=1_600, pool_available=5, pool_limit=100)
    given = grant_text(42, 1_000, 1_000, pooled, QuotaWindow.DAILY)
    assert given.startswith("Granted 1,000 credits to <@42> for this period (it resets <t:")
    assert given.endswith("they have 5 credits left (this server's shared pool has 5 credits left).")


def test_mode_labels_carry_the_price() -> None:
    assert [texts.mode_label(m) for m in GenerationMode] == [
        "lite — 1 credit/frame",
        "standard — 1 credit/frame",
        "pro — 2 credits/frame",
    ]


def test_long_texts_are_clipped_to_discords_limit() -> None:
    text = status_text(update(JobState.FAILED, error_code="magic_hour_error", error_data={"detail": "x" * 5000}))
    assert len(text) == texts.MAX_CONTENT and text.endswith("…")


def test_error_replies(caplog: pytest.LogCaptureFixture) -> None:
    """Members' mistakes show their own message; anything else an apology with a logged reference."""
    command: Any = SimpleNamespace(name="lipsync")
    assert reply_for(OutOfBounds(bounds.FPS, 61.0)) == "`max_fps` must be between 1 and 60."
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


@pytest.mark.parametrize(
    "code",
    [
        "deadline",
        "magic_hour_error",
        "magic_hour_no_source_face",
        "canceled_remotely",
        "internal_error",
        "delivery_failed",
    ],
)
def test_a_failure_reason_never_contradicts_what_the_job_cost(code: str) -> None:
    """Magic Hour may charge for a render it stopped: the reason says why, the cost line alone says what it cost."""
    charged = status_text(update(JobState.FAILED, error_code=code, error_data={"minutes": 30}, charged_credits=12))
    assert "Cost: 12 credits, what Magic Hour charged for it." in charged
    assert "nothing was charged" not in charged.lower() and "no credits" not in charged.lower()
    free = status_text(update(JobState.FAILED, error_code=code, error_data={"minutes": 30}))
    assert "Cost: 0 credits (refunded)." in free


def test_a_job_unknown_at_magic_hour_says_so_until_the_operator_reconciles_it() -> None:
    """Counted as spent while unknown; once reconciled, it costs what Magic Hour charged, said plainly."""
    unknown = job(
        state=JobState.FAILED, error_code="unknown_at_magic_hour", error_data={"reserved": 45}, charged_credits=45
    )
    assert texts.cost_text(unknown) == (
        "Cost: 45 credits, counted as spent until the bot's operator checks it with Magic Hour."
    )
    reconciled = unknown.model_copy(
        update={"error_data": {"reserved": 45, "reconciled_charge": 30}, "charged_credits": 30}
    )
    assert texts.cost_text(reconciled) == "Cost: 30 credits, what Magic Hour charged for it."


@pytest.mark.parametrize(
    ("data", "says", "cost"),
    [
        ({"reserved": 45, "reason": "no_answer"}, "lost contact with Magic Hour while starting", "counted as spent"),
        ({"reserved": 45}, "while starting", "counted as spent"),  # recorded before reasons were
        ({"reserved": 45, "reason": "canceled_unreadable"}, "couldn't be reached to learn how", "counted as spent"),
        ({"reserved": 45, "reason": "unreadable"}, "couldn't be reached to learn how", "counted as spent"),
        ({"reserved": 45, "reason": "internal_error"}, "couldn't be reached to learn how", "counted as spent"),
        ({"reserved": 90, "reason": "over_budget_unreadable"}, "couldn't be reached to learn how", "counted as spent"),
        ({"reserved": 45, "reason": "no_answer", "reconciled_charge": 30}, "has since checked", "Cost: 30 credits"),
    ],
)
def test_a_job_unknown_at_magic_hour_gives_the_right_reason(data: dict[str, Any], says: str, cost: str) -> None:
    """Why its fate is unknown (starting it, or reading it later), and once reconciled, that it was checked."""
    charged = data.get("reconciled_charge", data["reserved"])
    text = status_text(
        update(JobState.FAILED, error_code="unknown_at_magic_hour", error_data=data, charged_credits=charged)
    )
    assert says in text and cost in text, text
    if "reconciled_charge" in data:
        assert "stay counted" not in text and "counted as spent" not in text


def test_a_cancel_that_ended_unknown_says_why() -> None:
    """Cancel couldn't reach Magic Hour: the answer says the job ended, why, and what stays counted."""
    ended = job(
        state=JobState.FAILED,
        error_code="unknown_at_magic_hour",
        error_data={"reserved": 45, "reason": "canceled_unreadable"},
        charged_credits=45,
    )
    text = canceled_text(ended)
    assert "couldn't be reached to learn how this job ended" in text and "counted as spent" in text


def test_a_cancel_magic_hour_has_not_confirmed_says_so_in_every_language() -> None:
    """The member hears the stop is asked for, not yet confirmed, and that a finished render still reaches them."""
    stopping = job(state=JobState.RENDERING, project_id="p1")
    assert "hasn't confirmed yet" in canceled_text(stopping)
    for lang in ("es", "pt-BR"):
        with words.using(lang):
            text = canceled_text(stopping)
        assert f"#{stopping.id}" in text and "Magic Hour" in text and "hasn't" not in text


def test_every_reason_a_job_ends_unknown_for_is_worded() -> None:
    """Each reason an unknown ending is decided for is about starting the job or about reading it later."""
    reasons = {
        str((ending.data or {})["reason"]) for _, ending in every_decision() if ending.code == "unknown_at_magic_hour"
    }
    assert reasons == STARTING_REASONS | UNREAD_REASONS and not STARTING_REASONS & UNREAD_REASONS
    assert _UNREAD_REASONS == UNREAD_REASONS
    for reason in reasons:
        unread = job(
            state=JobState.FAILED, error_code="unknown_at_magic_hour", error_data={"reason": reason, "reserved": 45}
        )
        worded = texts.failure_text(unread)
        assert ("couldn't be reached" in worded) is (reason in UNREAD_REASONS), (reason, worded)


def outside_code_spans(text: str) -> str:
    """What Discord renders as markdown: the message without its code spans."""
    return re.sub(r"`[^`]*`", "", text)


@pytest.mark.parametrize(
    "name",
    [
        "https://evil.example/claim-your-credits",
        "[free credits](https://evil.example)",
        "www.evil.example",
        "**URGENT** <@&1> @everyone ||spoiler|| # Heading",
        "a`b `https://evil.example`",
    ],
)
def test_a_job_name_is_plain_text_in_the_bots_public_messages(name: str) -> None:
    """A member's name for a job never becomes a link, a mention or formatting in the bot's own words."""
    rendering = status_text(update(JobState.RENDERING, name=name))
    done = result_text(job(state=JobState.DONE, name=name, charged_credits=45), sandbox=False, kind="file")
    for text in (rendering, done):
        rest = outside_code_spans(text)
        assert "evil" not in rest and "://" not in rest and "@everyone" not in rest and "<@&" not in rest, text
        assert name.replace("`", "ˋ") in text  # shown whole, in its code span


# ---------------------------------------------------------------------------------- progress in members' words


@pytest.mark.parametrize(
    ("state", "label"),
    [
        (JobState.UPLOADING, "📤 Uploading"),
        (JobState.CREATING, "📨 Uploading"),
        (JobState.SUBMITTED, "🕒 Rendering"),
        (JobState.RENDERING, "🎬 Rendering"),
        (JobState.DOWNLOADING, "📥 Sending"),
        (JobState.DELIVERING, "📨 Sending"),
    ],
)
def test_the_card_names_stages_in_members_words(state: JobState, label: str) -> None:
    """Uploading, Rendering, Sending: never "creating", "submitted" or Magic Hour's internals."""
    assert status_text(update(state, elapsed=0.0)).splitlines()[1].startswith(label)


def test_rendering_shows_a_bar_from_submission_to_the_expected_finish() -> None:
    """With a forecast, a bar of how far the render should be; never full before it really ends."""
    started = NOW
    eta = NOW + dt.timedelta(seconds=100)
    halfway = status_text(update(JobState.RENDERING, elapsed=50.0, expected_at=eta, render_started_at=started))
    assert halfway.splitlines()[1] == (
        f"🎬 Rendering · ▰▰▰▰▰▱▱▱▱▱ 50% · 50 s so far · should be done <t:{int(eta.timestamp())}:R>"
    )
    late = status_text(update(JobState.RENDERING, elapsed=300.0, expected_at=eta, render_started_at=started))
    assert late.splitlines()[1] == "🎬 Rendering · ▰▰▰▰▰▰▰▰▰▱ 90% · 5 min so far · taking longer than expected"


def test_a_queued_job_tells_its_member_an_estimated_start() -> None:
    """While queued (private), the place in line and, from the render history, when it should start."""
    start = NOW + dt.timedelta(minutes=3)
    with words.using("en"):
        text = private_progress_text(update(JobState.RECEIVED, queue_position=2, expected_start=start))
    assert text.splitlines()[0] == f"⏳ Queued: 2 in line, should start <t:{int(start.timestamp())}:R>."
    with words.using("es"):
        spanish = private_progress_text(update(JobState.RECEIVED, queue_position=2))
    assert spanish.splitlines()[0] == "⏳ En cola: posición 2."


def test_the_part_is_shown_exactly_as_planned() -> None:
    """The part sent to render (the probed window), as members read it: seconds, then a clock."""
    short = status_text(update(JobState.RENDERING, start_seconds=0.0, end_seconds=1.4567))
    assert short.splitlines()[2] == "`face.mp4` + `voice.mp3` · part 0–1.46 s"
    with words.using("es"):
        long = status_text(update(JobState.RENDERING, start_seconds=45.0, end_seconds=90.0))
        decimals = status_text(update(JobState.RENDERING, start_seconds=0.0, end_seconds=1.5))
    assert decimals.splitlines()[2] == "`face.mp4` + `voice.mp3` · fragmento 0–1,5 s"  # Spanish writes a comma
    assert long.splitlines()[2] == "`face.mp4` + `voice.mp3` · fragmento 0:45–1:30"
    assert texts.span(0.0, 3600.0) == "0:00–1 h"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(2.46, "2.5 s"), (59.9, "59.9 s"), (60, "1:00"), (90, "1:30"), (3725, "1:02:05"), (10800, "3 h")],
)
def test_durations_read_as_a_clock_not_thousands_of_seconds(seconds: float, shown: str) -> None:
    """ "3 h" and "1:30", never "10800 s"."""
    assert words.seconds(seconds) == shown
    assert words.describe("max_clip_set", {"seconds": seconds}) == f"The longest clip here is now {shown}."


@pytest.mark.parametrize(
    ("lang", "refunded"),
    [
        ("en", "Cost: 0 credits (refunded)."),
        ("es", "Coste: 0 créditos (reembolsados)."),
        ("pt-BR", "Custo: 0 créditos (reembolsados)."),
    ],
)
def test_zero_credits_is_plural_in_every_language(lang: str, refunded: str) -> None:
    assert words.credits(0, lang).endswith("s") and words.credits(1, lang).endswith("o" if lang != "en" else "t")
    with words.using(lang):
        assert refunded in status_text(update(JobState.CANCELED, charged_credits=0))
