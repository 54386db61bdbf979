"""The store's records and results: jobs, their states, ledger rows, quota answers, policy.

Ledger sign convention (one signed `amount` per row, from the member's point of view):

- `reserve`: `-reserved` (credits set aside when a job is accepted)
- `settle`:  `+(reserved - charged)` (gives back what the render did not use; negative when
  Magic Hour charged more than was reserved, which is recorded, never refused)
- `refund`:  `+reserved` (the job failed or was canceled; nothing is spent)
- `adjust`:  an operator's correction of usage, `+n` gives credits back, `-n` takes them
- `grant`:   `+n` extra allowance for one member in one window; never counts as usage

So a window's usage (against member, server pool and bot budget alike) is
`used = -SUM(amount) over every row except grants`: an open reservation counts in full, a settled
job counts what it was charged, a refunded job counts nothing. Every row carries `period_at`, the
moment that decides which window it counts in; settle and refund rows copy their reservation's, so
a job reserved before a reset and settled after it still counts in the window where it was made.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.config import GenerationMode, QuotaWindow
from bot.errors import QuotaExceeded

if TYPE_CHECKING:
    from bot.config import Settings


class JobState(StrEnum):
    """Where a job is in its life; every change is persisted with its time."""

    RECEIVED = "received"
    FETCHING = "fetching"
    UPLOADING = "uploading"
    SUBMITTED = "submitted"
    RENDERING = "rendering"
    DOWNLOADING = "downloading"
    DELIVERING = "delivering"
    DONE = "done"
    FAILED = "failed"
    CANCELED = "canceled"

    @property
    def terminal(self) -> bool:
        """True for states a job never leaves: done, failed, canceled."""
        return self in TERMINAL_STATES


TERMINAL_STATES: frozenset[JobState] = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELED})

# The happy path, plus the two shortcuts the engine needs: local files skip fetching, and a render
# can finish between two polls so `rendering` is never seen. Any live state may also fail or be
# canceled; that is added below rather than listed.
_FORWARD: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.FETCHING, JobState.UPLOADING}),
    JobState.FETCHING: frozenset({JobState.UPLOADING}),
    JobState.UPLOADING: frozenset({JobState.SUBMITTED}),
    JobState.SUBMITTED: frozenset({JobState.RENDERING, JobState.DOWNLOADING}),
    JobState.RENDERING: frozenset({JobState.DOWNLOADING}),
    JobState.DOWNLOADING: frozenset({JobState.DELIVERING}),
    JobState.DELIVERING: frozenset({JobState.DONE}),
}

ALLOWED_TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    state: (_FORWARD.get(state, frozenset()) | {JobState.FAILED, JobState.CANCELED})
    if state not in TERMINAL_STATES
    else frozenset()
    for state in JobState
}


def can_transition(current: JobState, to: JobState) -> bool:
    """Whether a job in `current` may move to `to`."""
    return to in ALLOWED_TRANSITIONS[current]


class NewJob(BaseModel):
    """What is known about a job when it is accepted; the store adds id, state and times."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    user_id: int
    mode: GenerationMode
    guild_id: int | None = None  # None for command-line jobs
    channel_id: int | None = None
    video_filename: str | None = None
    video_size: int | None = Field(default=None, ge=0)
    audio_filename: str | None = None
    audio_size: int | None = Field(default=None, ge=0)
    youtube_url: str | None = None
    start_seconds: float | None = Field(default=None, ge=0)
    end_seconds: float | None = Field(default=None, ge=0)
    max_fps: float | None = Field(default=None, gt=0)
    name: str | None = None
    estimated_credits: int | None = Field(default=None, ge=0)
    status_channel_id: int | None = None
    status_message_id: int | None = None


class JobRecord(BaseModel):
    """One job as stored: who asked, from what, with which options, and how far it got.

    Discord CDN URLs and interaction tokens are never stored (they expire, and the tokens are
    secrets); `status_channel_id`/`status_message_id` are enough to find the status message after a
    restart.
    """

    model_config = ConfigDict(frozen=True)

    id: int
    user_id: int
    guild_id: int | None
    channel_id: int | None
    video_filename: str | None
    video_size: int | None
    audio_filename: str | None
    audio_size: int | None
    youtube_url: str | None
    start_seconds: float | None
    end_seconds: float | None
    mode: GenerationMode
    max_fps: float | None
    name: str | None
    state: JobState
    project_id: str | None
    estimated_credits: int | None
    charged_credits: int | None
    error_code: str | None
    error_message: str | None
    delivery_kind: str | None  # e.g. "file", "compressed", "link", "dm", "local"
    delivery_message_id: int | None
    status_channel_id: int | None
    status_message_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime

    @field_validator("created_at", "updated_at")
    @classmethod
    def _utc(cls, value: dt.datetime) -> dt.datetime:
        # Stored text carries +00:00; use the stdlib's UTC object so records compare and print alike.
        return value.astimezone(dt.UTC)

    @property
    def terminal(self) -> bool:
        """True once the job is done, failed or canceled."""
        return self.state.terminal


# Fields `JobStore.update` and `JobStore.transition` may change. Identity (id, owner, created_at),
# mode (the reservation was priced for it) and state (only through `transition`) are not here.
UPDATABLE_JOB_FIELDS: frozenset[str] = frozenset(
    {
        "channel_id",
        "video_filename",
        "video_size",
        "audio_filename",
        "audio_size",
        "youtube_url",
        "start_seconds",
        "end_seconds",
        "max_fps",
        "name",
        "project_id",
        "estimated_credits",
        "charged_credits",
        "error_code",
        "error_message",
        "delivery_kind",
        "delivery_message_id",
        "status_channel_id",
        "status_message_id",
    }
)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """One recorded transition: the job entered `state` at `at`."""

    job_id: int
    state: JobState
    at: dt.datetime
    detail: str | None


class LedgerKind(StrEnum):
    """What a ledger row records; see the module docstring for signs."""

    RESERVE = "reserve"
    SETTLE = "settle"
    REFUND = "refund"
    GRANT = "grant"
    ADJUST = "adjust"


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row. `user_id` and `job_id` are None once a deleted member's usage is anonymised."""

    id: int
    kind: LedgerKind
    job_id: int | None
    guild_id: int | None
    user_id: int | None
    mode: GenerationMode | None
    amount: int
    charged: int | None
    period_at: dt.datetime
    at: dt.datetime
    by_user_id: int | None
    note: str | None


class LimitKind(StrEnum):
    """Which limit decided an allowance or refused a reservation."""

    MEMBER = "member"  # a limit set for this member in this server
    ROLE = "role"  # the highest limit among the member's roles
    SERVER_DEFAULT = "server_default"  # the server's default member allowance
    GLOBAL_DEFAULT = "global_default"  # the bot's default member allowance
    SERVER_POOL = "server_pool"  # the server's total credits per window
    BOT_BUDGET = "bot_budget"  # the bot's total credits per window, across servers
    ACTIVE_JOBS = "active_jobs"  # the member already has as many running jobs as allowed


@dataclass(frozen=True, slots=True)
class Reservation:
    """Credits set aside for a job; `settle` or `refund` closes it."""

    job_id: int
    amount: int
    reserved_at: dt.datetime
    resets_at: dt.datetime  # end of the window this reservation counts in
    remaining: int  # the member's credits left in this window after this reservation
    already_reserved: bool = False  # True when the job had reserved before; nothing new was written


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a reservation was refused: which limit, how much it leaves, and when it resets."""

    limit: LimitKind
    available: int  # credits (or, for ACTIVE_JOBS, job slots) still available, never negative
    requested: int  # credits asked for (or, for ACTIVE_JOBS, 1 job)
    resets_at: dt.datetime | None  # None for ACTIVE_JOBS: it frees up when a job ends
    user_message: str  # plain words, with Discord timestamp markup for the reset

    def as_error(self) -> QuotaExceeded:
        """This refusal as the exception front ends already know how to show."""
        return QuotaExceeded(self.user_message, code=f"quota_{self.limit.value}")


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's standing in the current window."""

    allowance: int  # the limit that applies, before grants
    limit_kind: LimitKind  # where `allowance` came from: MEMBER, ROLE, SERVER_DEFAULT, GLOBAL_DEFAULT
    granted: int  # extra credits granted this window
    used: int  # charged for finished jobs + held by running ones + adjustments
    reserved: int  # the part of `used` held by running jobs (may still be refunded)
    remaining: int  # allowance + granted - used, never negative
    window_start: dt.datetime
    resets_at: dt.datetime
    active_jobs: int  # running jobs holding a reservation
    max_active_jobs: int
    server_pool_remaining: int | None  # None when the server has no pool
    bot_budget_remaining: int | None  # None when the bot has no budget


@dataclass(slots=True)
class UsageLine:
    """Totals for one member, one mode, or a whole server over a period."""

    jobs: int = 0  # jobs that reserved credits
    settled: int = 0  # of which finished and charged
    refunded: int = 0  # of which refunded
    charged: int = 0  # credits Magic Hour charged for settled jobs
    in_flight: int = 0  # credits held by jobs still running
    adjusted: int = 0  # net credits added to usage by operator adjustments
    used: int = 0  # charged + in_flight + adjusted: what counts against limits


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A server's usage over `[since, until)`; `by_member[None]` is deleted members' usage."""

    guild_id: int | None
    since: dt.datetime
    until: dt.datetime
    total: UsageLine
    by_member: dict[int | None, UsageLine] = field(default_factory=dict)
    by_mode: dict[GenerationMode | None, UsageLine] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class GuildSettings:
    """A server's own settings; None means "use the bot's default"."""

    guild_id: int
    default_member_credits: int | None = None
    pool_credits: int | None = None
    allowed_modes: tuple[GenerationMode, ...] | None = None
    max_clip_seconds: float | None = None
    max_active_jobs: int | None = None


@dataclass(frozen=True, slots=True)
class DeletionReport:
    """What `Store.delete_member_data` removed or anonymised."""

    jobs_deleted: int
    ledger_rows_anonymised: int
    grants_deleted: int
    limits_deleted: int


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """The bot-wide quota defaults; servers override some of them in the database."""

    window: QuotaWindow = QuotaWindow.DAILY
    reset_time: dt.time = dt.time(0, 0)  # UTC
    default_member_credits: int = 600
    bot_budget_credits: int | None = None  # per window across all servers; None = unlimited
    max_active_jobs_per_member: int = 1

    def __post_init__(self) -> None:
        if self.default_member_credits < 0:
            raise ValueError("default_member_credits must be >= 0")
        if self.bot_budget_credits is not None and self.bot_budget_credits < 0:
            raise ValueError("bot_budget_credits must be >= 0 or None")
        if self.max_active_jobs_per_member < 1:
            raise ValueError("max_active_jobs_per_member must be >= 1")

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaPolicy:
        """The policy an operator configured."""
        return cls(
            window=settings.quota_window,
            reset_time=settings.quota_reset_time,
            default_member_credits=settings.default_member_credits,
            bot_budget_credits=settings.bot_budget_credits,
            max_active_jobs_per_member=settings.max_active_jobs_per_member,
        )
