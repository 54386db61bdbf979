"""Admission: every rule that decides whether a job may start, each written once.

Before anything is fetched, `Admission.check` applies the cheap rules: the request's shape
(`validation.check_request`, under the server's rules) and the member's `EffectiveLimits`, asked
whether one credit still fits; `Admission.record` inserts the job only if the member's unfinished
jobs are still under the limit, counted in the insert's own transaction. After probing,
`Admission.reserve` sets the estimate aside under the same `EffectiveLimits.refusal_for` rule.
Refusals are data (`bot.store.Refusal`); `refused` turns one into a `QuotaExceeded`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from bot.config import QuotaWindow
from bot.errors import QuotaExceeded
from bot.jobs.models import GuildRules, JobRequest
from bot.jobs.quote import Quote, Short
from bot.jobs.validation import check_request
from bot.store import EffectiveLimits, GuildSettings, JobRecord, LimitKind, Refusal, Reservation, Store

# Every job costs at least one frame: asking whether one credit fits is asking "is anything left?".
_SMALLEST_JOB = 1


@dataclass(frozen=True)
class Admitted:
    """A request that passed the cheap checks: the rules that apply, and the member's limits."""

    rules: GuildRules
    limits: EffectiveLimits


def rules_for(defaults: GuildRules, guild: GuildSettings | None) -> GuildRules:
    """The operator's rules, narrowed by a server's own settings: never wider than the operator's.

    The server's modes count only where the operator offers them too (in the operator's order; none
    when the two no longer share one), and its longest clip only up to the operator's: a server
    setting stored before the operator narrowed theirs is narrowed here, at every use.
    """
    if guild is None:
        return defaults
    modes = defaults.allowed_modes
    if guild.allowed_modes is not None:
        modes = tuple(m for m in defaults.allowed_modes if m in guild.allowed_modes)
    clip = defaults.max_clip_seconds
    if guild.max_clip_seconds is not None:
        clip = min(clip, guild.max_clip_seconds)
    return GuildRules(allowed_modes=modes, max_clip_seconds=clip, max_input_bytes=defaults.max_input_bytes)


def refused(
    refusal: Refusal, window: QuotaWindow, *, before_estimate: bool = False, quote: Quote | None = None
) -> QuotaExceeded:
    """A refusal as the error front ends word: `active_jobs`, `quota_<limit>[_hold]` or `quota_<limit>_spent`.

    `before_estimate` marks the precheck's refusal, where no estimate exists yet: the member is
    told the limit is spent, not that "this clip needs 1 credit". With the job's `quote`, the
    refusal says which figure didn't fit: `quota_<limit>` when even the likely cost is more than is
    left, `quota_<limit>_hold` when only what is held until the job ends is.
    """
    if refusal.limit is LimitKind.ACTIVE_JOBS:
        return QuotaExceeded("active_jobs", limit=refusal.max_active)
    suffix = "_spent" if before_estimate else ""
    figures: dict[str, int] = {}
    if quote is not None:
        figures = quote.data()
        if quote.short_of(refusal.available) is Short.HOLD:
            suffix = "_hold"
    return QuotaExceeded(
        f"quota_{refusal.limit.value}{suffix}",
        available=refusal.available,
        requested=refusal.requested,
        resets_at=refusal.resets_at,
        window=window.value,
        **figures,
    )


class Admission:
    """Applies the admission rules for one bot: its defaults, and the store's limits."""

    def __init__(self, store: Store, defaults: GuildRules) -> None:
        self._store = store
        self._defaults = defaults

    @property
    def window(self) -> QuotaWindow:
        """How often allowances reset."""
        return self._store.policy.window

    async def read(self, guild_id: int | None, user_id: int, role_ids: tuple[int, ...] = ()) -> Admitted:
        """The rules and limits that apply to this member now (one read of the store)."""
        limits = await self._store.quota.limits(guild_id, user_id, role_ids)
        return Admitted(rules_for(self._defaults, limits.guild), limits)

    async def check(self, request: JobRequest) -> Admitted:
        """Every check that costs nothing: raises `InvalidInput` or `QuotaExceeded`, spends nothing."""
        admitted = await self.read(request.guild_id, request.user_id, request.role_ids)
        check_request(request, admitted.rules)
        # The store counts jobs holding credits (so two requests at once can't refuse each other);
        # here every unfinished job counts, so a second request made later is refused at once.
        limits = admitted.limits
        unfinished = await self._store.jobs.active_count(request.guild_id, request.user_id)
        if unfinished > limits.active_jobs:
            limits = dataclasses.replace(limits, active_jobs=unfinished)
        refusal = limits.refusal_for(_SMALLEST_JOB, new_job=True)
        if refusal is not None:
            raise refused(refusal, self.window, before_estimate=refusal.limit is not LimitKind.ACTIVE_JOBS)
        return admitted

    async def record(
        self, request: JobRequest, admitted: Admitted, *, claimed: bool = False, stored: str | None = None
    ) -> JobRecord:
        """Record the admitted job, checking the active-job limit again in the same transaction.

        `check` reads the count before anything is fetched; requests racing each other all read
        the same count, so the job's insert counts once more, under the server's lock, and refuses
        (`active_jobs`) all but the ones that fit. `claimed` and `stored` are `JobStore.create`'s
        `claimed` and `request`.
        """
        outcome = await self._store.jobs.create_within(
            request.new_job(), max_unfinished=admitted.limits.max_active_jobs, claimed=claimed, request=stored
        )
        if isinstance(outcome, Refusal):
            raise refused(outcome, self.window)
        return outcome

    async def reserve(self, job: JobRecord, role_ids: tuple[int, ...], quote: Quote) -> Reservation:
        """Set the quote's hold aside for `job` against every limit at once, or raise `QuotaExceeded`.

        The refusal carries the quote's figures and says which of them didn't fit.
        """
        outcome = await self._store.quota.reserve(
            job.id, guild_id=job.guild_id, user_id=job.user_id, role_ids=role_ids, amount=quote.hold
        )
        if isinstance(outcome, Refusal):
            raise refused(outcome, self.window, quote=quote)
        return outcome

    async def top_up(self, job: JobRecord, amount: int) -> Reservation | Refusal:
        """Raise `job`'s reservation to `amount` within every limit (Magic Hour asked for more)."""
        return await self._store.quota.top_up(job.id, amount)
