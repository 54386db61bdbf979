"""The bot's SQLite store: job records and the credit-quota ledger.

Open one `Store` per process with `await Store.open(path, policy=QuotaPolicy.from_settings(s))`;
it exposes `store.jobs` (`JobStore`), `store.quota` (`QuotaLedger`) and `store.limits`
(`LimitStore`). The ledger's sign convention is documented in `bot.store.models`.
"""

from __future__ import annotations

from bot.store.errors import (
    InvalidTransition,
    JobNotActive,
    JobNotFound,
    MemberHasActiveJobs,
    NoReservation,
    SchemaTooNew,
    StoreBusy,
    StoreError,
)
from bot.store.jobs import JobStore
from bot.store.limits import LimitStore
from bot.store.models import (
    ALLOWED_TRANSITIONS,
    TERMINAL_STATES,
    Balance,
    DeletionReport,
    GuildSettings,
    JobEvent,
    JobRecord,
    JobState,
    LedgerEntry,
    LedgerKind,
    LimitKind,
    NewJob,
    QuotaPolicy,
    Refusal,
    Reservation,
    UsageLine,
    UsageReport,
    can_transition,
)
from bot.store.quota import QuotaLedger
from bot.store.store import Store
from bot.store.windows import discord_timestamp, next_reset, window_bounds

__all__ = [
    "ALLOWED_TRANSITIONS",
    "TERMINAL_STATES",
    "Balance",
    "DeletionReport",
    "GuildSettings",
    "InvalidTransition",
    "JobEvent",
    "JobNotActive",
    "JobNotFound",
    "JobRecord",
    "JobState",
    "JobStore",
    "LedgerEntry",
    "LedgerKind",
    "LimitKind",
    "LimitStore",
    "MemberHasActiveJobs",
    "NewJob",
    "NoReservation",
    "QuotaLedger",
    "QuotaPolicy",
    "Refusal",
    "Reservation",
    "SchemaTooNew",
    "Store",
    "StoreBusy",
    "StoreError",
    "UsageLine",
    "UsageReport",
    "can_transition",
    "discord_timestamp",
    "next_reset",
    "window_bounds",
]
