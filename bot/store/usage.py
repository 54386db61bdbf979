"""A server's usage over a period, counted from the ledger: `usage_report`.

Counted from the ledger rather than from jobs, so it stays right after members' data is deleted
(their usage shows under `by_member[None]`, including rows still kept under a token).
"""

from __future__ import annotations

import datetime as dt

from bot.config import GenerationMode
from bot.store import queries
from bot.store.db import Connection, Row, fetch_all
from bot.store.jobs import load_uncertain
from bot.store.models import LedgerKind, UsageLine, UsageReport


async def usage_report(conn: Connection, guild_id: int | None, since: dt.datetime, until: dt.datetime) -> UsageReport:
    """`guild_id`'s usage over `[since, until)`, by member and by mode, in the caller's transaction."""
    rows = await fetch_all(conn, queries.USAGE_ROWS, (guild_id, since, until))
    report = UsageReport(
        guild_id, since, until, UsageLine(), uncertain=await load_uncertain(conn, guild_id, since, until)
    )
    for row in rows:
        mode = GenerationMode(row["mode"]) if row["mode"] is not None else None
        member = row["user_id"] if row["user_id"] is not None and row["user_id"] >= 0 else None
        for line in (
            report.total,
            report.by_member.setdefault(member, UsageLine()),
            report.by_mode.setdefault(mode, UsageLine()),
        ):
            _add(line, row)
    return report


def _add(line: UsageLine, row: Row) -> None:
    kind = LedgerKind(row["kind"])
    credits = -int(row["amount"])  # what the row counts as usage
    line.used += credits
    if kind in (LedgerKind.RESERVE, LedgerKind.TOPUP):
        if kind is LedgerKind.RESERVE:
            line.jobs += 1
        if row["open"]:
            line.in_flight += credits
    elif kind is LedgerKind.SETTLE:
        line.settled += 1
        line.charged += int(row["charged"])
    elif kind is LedgerKind.REFUND:
        line.refunded += 1
    elif kind is LedgerKind.ADJUST:
        line.adjusted += credits
    elif kind is LedgerKind.RECONCILE:
        line.charged += credits  # corrects the settle (what the job held) to what Magic Hour charged
