"""The store's records and results: jobs, their states, ledger rows, quota answers, policy.

Everything here is codes and numbers: the store never builds a sentence for a member. Words are
made at the edges (the Discord layer, the terminal), which is where language and markup belong.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.bounds import MAX_CLIP_SECONDS
from bot.config import GenerationMode, QuotaWindow

if TYPE_CHECKING:
    from bot.config import Settings


class JobState(StrEnum):
    """Where a job is in its life; every change is persisted with its time."""

    RECEIVED = "received"
    FETCHING = "fetching"
    UPLOADING = "uploading"
    CREATING = "creating"  # the paid create call is on its way to Magic Hour (or its answer is)
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
# canceled; that is added below rather than listed. `creating` sits between the upload and the
# project id, so a restart can tell "never created" (uploading) from "perhaps created" (creating).
_FORWARD: dict[JobState, frozenset[JobState]] = {
    JobState.RECEIVED: frozenset({JobState.FETCHING, JobState.UPLOADING}),
    JobState.FETCHING: frozenset({JobState.UPLOADING}),
    JobState.UPLOADING: frozenset({JobState.CREATING}),
    JobState.CREATING: frozenset({JobState.SUBMITTED}),
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


# Steps that older versions allowed and that stored histories may still contain (schema 1-2 went
# straight from uploading to submitted). Accepted when checking recorded events, never for new moves.
LEGACY_TRANSITIONS: frozenset[tuple[JobState, JobState]] = frozenset({(JobState.UPLOADING, JobState.SUBMITTED)})

# States in which the render is complete at Magic Hour, so a reservation must have been settled.
SETTLED_STATES: frozenset[JobState] = frozenset({JobState.DOWNLOADING, JobState.DELIVERING, JobState.DONE})

# The error code of a job whose create call may or may not have reached Magic Hour. Such a job is
# settled to what it reserved (the operator may have been charged) and listed for managers.
UNKNOWN_AT_MAGIC_HOUR = "unknown_at_magic_hour"

# A job's error details: a flat JSON object of scalars (numbers, names, ids), never a sentence.
ErrorData = dict[str, str | int | float | bool | None]


def can_transition(current: JobState, to: JobState) -> bool:
    """Whether a job in `current` may move to `to`."""
    return to in ALLOWED_TRANSITIONS[current]


class ResultPlace(StrEnum):
    """Where a member's finished videos go (their `/lipsync-settings`, kept with each job)."""

    CHANNEL = "channel"  # the channel the job was started in
    THREAD = "thread"  # a thread of its own, off the job's message
    DM = "dm"  # a direct message


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
    locale: str | None = None  # the Discord locale of the member who asked ("es-ES")
    # Where the result goes and whether it pings its member: their settings when they asked.
    deliver_to: ResultPlace | None = None
    ping_owner: bool | None = None


class JobRecord(BaseModel):
    """One job as stored: who asked, from what, with which options, and how far it got.

    Interaction tokens are never stored (they are secrets), and the record never carries Discord
    CDN links: a queued job's links wait in the row's `request` (read with
    `JobStore.stored_request`, dropped when the job leaves the queue) so another process can run it;
    `status_channel_id`/`status_message_id` are enough to find the status message after a restart.
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
    error_data: ErrorData | None
    delivery_kind: str | None  # e.g. "file", "compressed", "link", "dm", "thread", "local"
    delivery_message_id: int | None
    status_channel_id: int | None
    status_message_id: int | None
    created_at: dt.datetime
    updated_at: dt.datetime
    claimed_by: str | None = None  # the instance id of the process running the job (see `JobStore` on claims)
    lease_until: dt.datetime | None = None  # a previous version's claim holds until then (NULL for new claims)
    cancel_requested_by: int | None = None  # a member asked to cancel (the running process acts on it)
    # The Discord locale of the member who started the job: its messages are written in it.
    locale: str | None = None
    # What a re-run needs (written when the files are uploaded): Magic Hour's paths of the uploaded
    # files, kept there 7 days from `files_uploaded_at`, and what probing found, so a re-run is
    # priced without the files (`source_fps`: the video's rate when found constant, else None).
    video_file_path: str | None = None
    audio_file_path: str | None = None
    files_uploaded_at: dt.datetime | None = None
    video_seconds: float | None = None
    audio_seconds: float | None = None
    source_fps: float | None = None
    rerun_of: int | None = None  # the job whose uploads this one reused
    # Where the result goes and whether it pings the member (their settings when they asked);
    # None: the channel the job was started in, with a ping.
    deliver_to: ResultPlace | None = None
    ping_owner: bool | None = None

    @field_validator("error_data", mode="before")
    @classmethod
    def _json(cls, value: object) -> object:
        # Stored as JSON object text; a dict passes through.
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("created_at", "updated_at", "files_uploaded_at", "lease_until")
    @classmethod
    def _utc(cls, value: dt.datetime | None) -> dt.datetime | None:
        # Stored text carries +00:00; use the stdlib's UTC object so records compare and print alike.
        return value.astimezone(dt.UTC) if value is not None else None

    @property
    def terminal(self) -> bool:
        """True once the job is done, failed or canceled."""
        return self.state.terminal

    @property
    def fate_unknown(self) -> bool:
        """True for a job whose outcome at Magic Hour is unknown and the operator hasn't yet reconciled."""
        return self.error_code == UNKNOWN_AT_MAGIC_HOUR and "reconciled_charge" not in (self.error_data or {})


# Fields `JobStore.update` and `JobStore.transition` may change. Identity (id, owner, created_at),
# mode (the reservation was priced for it), state (only through `transition`) and charged_credits
# (written only when `transition` settles the reservation or `QuotaLedger.reconcile` records
# Magic Hour's real charge, each with its ledger row) are not here.
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
        "error_code",
        "error_data",
        "delivery_kind",
        "delivery_message_id",
        "status_channel_id",
        "status_message_id",
        "locale",
        "video_file_path",
        "audio_file_path",
        "files_uploaded_at",
        "video_seconds",
        "audio_seconds",
        "source_fps",
        "rerun_of",
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
    """What a ledger row records. Its `amount` is signed from the member's point of view, and a
    window's usage is `-SUM(amount)` over every row but grants (docs/design-notes.md, "Quota")."""

    RESERVE = "reserve"  # -reserved: set aside when the job is accepted
    TOPUP = "topup"  # -n: more set aside when the create answer costs more than the estimate
    SETTLE = "settle"  # +(held - charged): gives back what the render didn't use (negative if it used more)
    REFUND = "refund"  # +held: nothing was charged
    GRANT = "grant"  # +n extra allowance for one member in one window; never usage
    ADJUST = "adjust"  # ±n: the operator's correction, counted in the window it is written in
    RECONCILE = "reconcile"  # +(counted - charged): an unknown job, once its charge is known


class Direction(StrEnum):
    """Which way a ledger row moves a member's credits, so no caller reads a sign."""

    OUT = "out"  # counts as usage: a reservation, a top-up, a charge above what was held, ...
    IN = "in"  # gives back or adds: a settle below what was held, a refund, a grant, ...
    NONE = "none"  # a row of 0 credits (a settle at exactly what was held)


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    """One ledger row: `credits` moved in `direction` (`amount` is the same as a signed number).

    `job_id` is None once its member's data was deleted; `user_id` is then a negative one-way token
    while the row's window runs (it still counts against that member) and None after it.
    """

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

    @property
    def direction(self) -> Direction:
        """Whether this row took credits (`OUT`), gave or added them (`IN`), or neither."""
        return Direction.OUT if self.amount < 0 else Direction.IN if self.amount > 0 else Direction.NONE

    @property
    def credits(self) -> int:
        """How many credits this row moved, whichever way (never negative)."""
        return abs(self.amount)


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
    """Credits held for a job; `JobStore.transition` settles or refunds them."""

    job_id: int
    amount: int  # the total held: the reservation plus any top-ups
    reserved_at: dt.datetime
    resets_at: dt.datetime  # end of the window this reservation counts in
    remaining: int  # what the member can still spend in that window after this (every limit), >= 0
    already_reserved: bool = False  # True when nothing new was written (a repeat, or no top-up needed)


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why credits were refused, as data: which limit, how much it has left, when it resets.

    The front ends turn this into words; the store never does.
    """

    limit: LimitKind
    available: int  # credits (or, for ACTIVE_JOBS, job slots) still available, never negative
    requested: int  # credits asked for (or, for ACTIVE_JOBS, 1 job)
    resets_at: dt.datetime | None  # None for ACTIVE_JOBS: it frees up when a job ends
    max_active: int | None = None  # for ACTIVE_JOBS, how many running jobs a member may have


@dataclass(frozen=True, slots=True)
class EffectiveLimits:
    """Everything that limits one member's spending in one window, read in one snapshot.

    `refusal_for` is the one credit rule; `QuotaLedger.reserve` and `top_up` apply it to the same
    numbers inside their write transaction, so what a member is shown and what is enforced agree.
    """

    allowance: int  # the member's allowance per window, before grants
    limit_kind: LimitKind  # where `allowance` came from: MEMBER, ROLE, SERVER_DEFAULT, GLOBAL_DEFAULT
    granted: int  # grants this window (negative when a manager took credits back)
    used: int  # charged for finished jobs + held by running ones + adjustments
    reserved: int  # the part of `used` held by open reservations (may still be refunded)
    member_available: int  # allowance + granted - used; negative after a settle above what was held
    pool_limit: int | None  # the server's effective pool per window: min(pool, ceiling); None: none
    pool_available: int | None  # pool_limit - what the server used; None when there is no pool
    budget_limit: int | None  # the bot's budget per window; None: unlimited
    budget_available: int | None  # budget_limit - what every server used; None when unlimited
    remaining: int  # what the member can really spend now: max(0, the least of the availables)
    window_start: dt.datetime
    resets_at: dt.datetime
    active_jobs: int  # running jobs holding a reservation
    max_active_jobs: int
    guild: GuildSettings | None  # the server's own settings; None for command-line jobs

    def refusal_for(self, amount: int, *, new_job: bool = True) -> Refusal | None:
        """The refusal for spending `amount` more credits, or None when every limit allows it.

        With `new_job`, a member already running `max_active_jobs` jobs is refused first
        (ACTIVE_JOBS). Then each credit limit (member, server pool, bot budget) refuses when
        `amount` exceeds what it has available, for every amount including 0 (so a member whose
        balance is below zero cannot start even a free job). Several failing: the tightest wins;
        ties go to the member's limit, then the pool, then the budget.
        """
        if amount < 0:
            raise ValueError("cannot ask for a negative amount")
        if new_job and self.active_jobs >= self.max_active_jobs:
            return Refusal(
                limit=LimitKind.ACTIVE_JOBS,
                available=max(0, self.max_active_jobs - self.active_jobs),
                requested=1,
                resets_at=None,
                max_active=self.max_active_jobs,
            )
        checks: list[tuple[LimitKind, int]] = [(self.limit_kind, self.member_available)]
        if self.pool_available is not None:
            checks.append((LimitKind.SERVER_POOL, self.pool_available))
        if self.budget_available is not None:
            checks.append((LimitKind.BOT_BUDGET, self.budget_available))
        failing = [check for check in checks if amount > check[1]]
        if not failing:
            return None
        # min() keeps the first of equals: the member's own limit, then pool, then budget.
        limit, available = min(failing, key=lambda check: check[1])
        return Refusal(limit=limit, available=max(0, available), requested=amount, resets_at=self.resets_at)


@dataclass(frozen=True, slots=True)
class Reconciliation:
    """What `QuotaLedger.reconcile` recorded for a job whose outcome at Magic Hour was unknown."""

    job_id: int
    counted: int  # what the job's ledger rows added up to before (what it had reserved, as a rule)
    charged: int  # what Magic Hour really charged: the job's rows now add up to this
    entry: LedgerEntry  # the `reconcile` row

    @property
    def given_back(self) -> int:
        """Credits given back to the member, the server and the budget; negative when more were counted."""
        return self.counted - self.charged


@dataclass(slots=True)
class UsageLine:
    """Totals for one member, one mode, or a whole server over a period."""

    jobs: int = 0  # jobs that reserved credits
    settled: int = 0  # of which finished and charged
    refunded: int = 0  # of which refunded
    charged: int = 0  # credits Magic Hour charged for settled jobs (as reconciled, for unknown ones)
    in_flight: int = 0  # credits held by jobs still running
    adjusted: int = 0  # net credits added to usage by operator adjustments
    used: int = 0  # charged + in_flight + adjusted: what counts against limits


@dataclass(frozen=True, slots=True)
class UsageReport:
    """A server's usage over `[since, until)`; `by_member[None]` is deleted members' usage.

    `uncertain` lists the period's jobs whose create call may have reached Magic Hour without an
    answer (`UNKNOWN_AT_MAGIC_HOUR`): they count as charged what they reserved, and a manager may
    want to check them against Magic Hour's own records.
    """

    guild_id: int | None
    since: dt.datetime
    until: dt.datetime
    total: UsageLine
    by_member: dict[int | None, UsageLine] = field(default_factory=dict)
    by_mode: dict[GenerationMode | None, UsageLine] = field(default_factory=dict)
    uncertain: list[JobRecord] = field(default_factory=list)


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
    """What `Store.delete_member_data` removed, anonymised, and kept."""

    jobs_deleted: int  # job records and their events
    ledger_rows_anonymised: int  # usage rows of ended windows, now without member or job
    ledger_rows_kept: int  # rows of the current window, kept under a one-way token: they still count
    grants_deleted: int  # grants of ended windows
    limits_kept: int  # limits a manager set on this member (they survive a deletion)
    usage_kept_until: dt.datetime | None  # when the kept rows start being anonymised; None: none kept
    settings_deleted: int = 0  # their own `/lipsync-settings` (one row per server)


@dataclass(frozen=True, slots=True)
class QuotaPolicy:
    """The operator's quota defaults, and the bounds on what a server's managers may set.

    Managers narrow, never widen: a server's modes are at most `allowed_modes`, its longest clip
    at most `max_clip_seconds`, its jobs at a time at most `max_active_jobs_per_member`, and its
    credits at most `server_credits_ceiling`. `LimitStore` refuses wider settings when they are
    set, and `within_operator` narrows stored ones when they are used (the operator may have
    narrowed since).
    """

    window: QuotaWindow = QuotaWindow.DAILY
    reset_time: dt.time = dt.time(0, 0)  # UTC
    default_member_credits: int = 600
    bot_budget_credits: int | None = None  # per window across all servers; None = unlimited
    max_active_jobs_per_member: int = 1
    # The most any one server may spend per window, and the most any limit, pool or member's
    # allowance plus grants may be set to; None = no ceiling. Command-line jobs have no server.
    server_credits_ceiling: int | None = None
    allowed_modes: tuple[GenerationMode, ...] = tuple(GenerationMode)
    max_clip_seconds: float = MAX_CLIP_SECONDS

    def __post_init__(self) -> None:
        if self.default_member_credits < 0:
            raise ValueError("default_member_credits must be >= 0")
        if self.bot_budget_credits is not None and self.bot_budget_credits < 0:
            raise ValueError("bot_budget_credits must be >= 0 or None")
        if self.max_active_jobs_per_member < 1:
            raise ValueError("max_active_jobs_per_member must be >= 1")
        if self.server_credits_ceiling is not None and self.server_credits_ceiling < 0:
            raise ValueError("server_credits_ceiling must be >= 0 or None")

    @classmethod
    def from_settings(cls, settings: Settings) -> QuotaPolicy:
        """The policy an operator configured."""
        return cls(
            window=settings.quota_window,
            reset_time=settings.quota_reset_time,
            default_member_credits=settings.default_member_credits,
            bot_budget_credits=settings.budget_credits,
            max_active_jobs_per_member=settings.max_active_jobs_per_member,
            server_credits_ceiling=settings.server_credits_ceiling,
            allowed_modes=tuple(settings.allowed_modes),
            max_clip_seconds=settings.max_clip_seconds,
        )
