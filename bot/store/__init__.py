"""The bot's store: job records and the credit-quota ledger, on SQLite or PostgreSQL.

Open one `Store` per process with `await Store.open(target, policy=QuotaPolicy.from_settings(s))`,
where `target` is a SQLite file (the default) or a `postgresql://` URL (several processes);
it exposes `store.jobs` (`JobStore`), `store.quota` (`QuotaLedger`), `store.limits`
(`LimitStore`), `store.member_settings` (`MemberSettingsStore`: members' own preferences),
`store.usage` (`UsageQueries`: a member's `Balance`, usage by day) and
`store.instances` (the processes sharing the database, with their heartbeats).
The ledger's sign convention is in docs/design-notes.md, "Quota".

The store holds codes and numbers, never sentences: a refusal is a `Refusal`, a job's error is
`error_code` plus `error_data`, and the front ends put them into words (and Discord markup).
"""

from __future__ import annotations

from bot.store.balance import Balance, GrantRow
from bot.store.daily import DailyUsage
from bot.store.errors import (
    AboveCeiling,
    AlreadyReconciled,
    CommitUncertain,
    InvalidTransition,
    JobNotActive,
    JobNotFound,
    LeaseLost,
    MemberHasActiveJobs,
    NoReservation,
    NotReconcilable,
    SchemaTooNew,
    StoreBusy,
    StoreError,
    StoreUnavailable,
)
from bot.store.jobs import JobStore
from bot.store.limits import LimitStore
from bot.store.member_settings import MemberSettings, MemberSettingsStore
from bot.store.models import (
    ALLOWED_TRANSITIONS,
    SETTLED_STATES,
    TERMINAL_STATES,
    UNKNOWN_AT_MAGIC_HOUR,
    DeletionReport,
    Direction,
    EffectiveLimits,
    ErrorData,
    GuildSettings,
    JobEvent,
    JobRecord,
    JobState,
    LedgerEntry,
    LedgerKind,
    LimitKind,
    NewJob,
    QuotaPolicy,
    Reconciliation,
    Refusal,
    Reservation,
    ResultPlace,
    UsageLine,
    UsageReport,
    can_transition,
)
from bot.store.quota import QuotaLedger
from bot.store.store import Store
from bot.store.usage_figures import GrantTotals, UsageQueries
from bot.store.windows import next_reset, window_bounds

__all__ = [
    "ALLOWED_TRANSITIONS",
    "SETTLED_STATES",
    "TERMINAL_STATES",
    "UNKNOWN_AT_MAGIC_HOUR",
    "AboveCeiling",
    "AlreadyReconciled",
    "Balance",
    "CommitUncertain",
    "DailyUsage",
    "DeletionReport",
    "Direction",
    "EffectiveLimits",
    "ErrorData",
    "GrantRow",
    "GrantTotals",
    "GuildSettings",
    "InvalidTransition",
    "JobEvent",
    "JobNotActive",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "JobStore",
    "LeaseLost",
    "LedgerEntry",
    "LedgerKind",
    "LimitKind",
    "LimitStore",
    "MemberHasActiveJobs",
    "MemberSettings",
    "MemberSettingsStore",
    "NewJob",
    "NoReservation",
    "NotReconcilable",
    "QuotaLedger",
    "QuotaPolicy",
    "Reconciliation",
    "Refusal",
    "Reservation",
    "ResultPlace",
    "SchemaTooNew",
    "Store",
    "StoreBusy",
    "StoreError",
    "StoreUnavailable",
    "UsageLine",
    "UsageQueries",
    "UsageReport",
    "can_transition",
    "next_reset",
    "window_bounds",
]
