"""One member's balance in one window, computed once: what every screen shows, member's and manager's.

`Balance.of` takes what the store read in one snapshot (the member's `EffectiveLimits` and the
window's grant rows) and splits it into the figures people read: allowance, granted, taken back,
used (of which held by running jobs), and left. `/quota`, `/lipsync-status`, a grant's answer and
`/lipsync-admin member` all render these fields, so a member and a manager looking at the same
state read the same numbers. Nothing here reads the database or makes a sentence.

The figures add up: `allowance + granted - taken_back - capped - used == own_left`, and `left` is
`max(0, own_left)` unless the server pool or bot budget has less (`limited_by` says which). A
member can be over their allowance (`overdrawn`): Magic Hour charged more than was held, or a
take-back raced a job. That is shown, never hidden behind a 0.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot.store.models import EffectiveLimits, LedgerEntry, LedgerKind, LimitKind


@dataclass(frozen=True, slots=True)
class GrantRow:
    """One grant (positive) or take-back (negative) in the window, as a manager made it."""

    amount: int
    at: dt.datetime
    by_user_id: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class Balance:
    """A member's credits in one window: every figure a member or a manager is shown."""

    allowance: int  # per window, before grants
    source: LimitKind  # where the allowance comes from: MEMBER, ROLE, SERVER_DEFAULT, GLOBAL_DEFAULT
    granted: int  # credits managers added this window (>= 0)
    taken_back: int  # credits managers took back this window (>= 0)
    capped: int  # allowance plus grants above the operator's ceiling: never spendable (>= 0)
    used: int  # charged for finished jobs + held by running ones + adjustments
    held: int  # the part of `used` held by running jobs (given back if they fail)
    pool_limit: int | None  # the server's pool per window; None: no pool
    pool_left: int | None  # what the pool has left (never below 0); None: no pool
    budget_limit: int | None  # the bot's budget per window; None: unlimited
    budget_left: int | None  # what the budget has left (never below 0); None: unlimited
    left: int  # what the member can really spend now, every limit counted (>= 0)
    window_start: dt.datetime
    resets_at: dt.datetime
    active_jobs: int  # running jobs holding credits
    max_active_jobs: int
    grants: tuple[GrantRow, ...] = ()  # this window's grants and take-backs, oldest first

    @classmethod
    def of(cls, limits: EffectiveLimits, grant_rows: Sequence[LedgerEntry]) -> Balance:
        """The balance of `limits`, with its grants split by `grant_rows` (the same window's grant rows).

        The rows must be the ones `limits.granted` summed (read in the same snapshot): a
        mismatch raises `ValueError` rather than showing figures that don't add up.
        """
        rows = [row for row in grant_rows if row.kind is LedgerKind.GRANT]
        if sum(row.amount for row in rows) != limits.granted:
            raise ValueError(f"grant rows add up to {sum(r.amount for r in rows)}, the limits to {limits.granted}")
        granted = sum(row.amount for row in rows if row.amount > 0)
        taken_back = -sum(row.amount for row in rows if row.amount < 0)
        # What the operator's ceiling removes: `member_available` is min(allowance + grants, ceiling) - used.
        capped = limits.allowance + limits.granted - limits.used - limits.member_available
        return cls(
            allowance=limits.allowance,
            source=limits.limit_kind,
            granted=granted,
            taken_back=taken_back,
            capped=max(0, capped),
            used=limits.used,
            held=limits.reserved,
            pool_limit=limits.pool_limit,
            pool_left=None if limits.pool_available is None else max(0, limits.pool_available),
            budget_limit=limits.budget_limit,
            budget_left=None if limits.budget_available is None else max(0, limits.budget_available),
            left=limits.remaining,
            window_start=limits.window_start,
            resets_at=limits.resets_at,
            active_jobs=limits.active_jobs,
            max_active_jobs=limits.max_active_jobs,
            grants=tuple(GrantRow(row.amount, row.at, row.by_user_id, row.note) for row in rows),
        )

    @property
    def own_left(self) -> int:
        """What the member's own allowance has left: negative when they are over it."""
        return self.allowance + self.granted - self.taken_back - self.capped - self.used

    @property
    def overdrawn(self) -> int:
        """How far the member is over their allowance (0 when they are not)."""
        return max(0, -self.own_left)

    @property
    def takeable(self) -> int:
        """The most a manager can take back without driving the balance below zero: what is unspent."""
        return max(0, self.own_left)

    def take_back(self, asked: int) -> int:
        """How much of `asked` (> 0) a take-back should take: at most what is unspent (`takeable`)."""
        if asked <= 0:
            raise ValueError("a take-back asks for a positive number of credits")
        return min(asked, self.takeable)

    @property
    def limited_by(self) -> LimitKind | None:
        """The server pool or bot budget, when it (not the member's own allowance) limits what is left."""
        if self.left >= self.takeable:
            return None
        for kind, available in ((LimitKind.SERVER_POOL, self.pool_left), (LimitKind.BOT_BUDGET, self.budget_left)):
            if available is not None and available == self.left:
                return kind
        return None
