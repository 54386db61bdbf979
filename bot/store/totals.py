"""Running totals of the ledger per scope and window, written in the transaction of each ledger row.

A reservation reads a member's, a server's and the bot's totals (rows by primary key) instead of
summing the window's rows, so it costs the same on the first day and after a year. Scopes:
`member:<server or ->:<user>` (a deleted member's token is a user of its own), `guild:<server>`,
`bot`. `used` follows the ledger's signs (grants aside); members also keep `granted` and
`reserved` (a hold adds what it holds, a settle or refund takes away what its job held). Totals
are kept for one window rule (`ledger_totals_window`); a window not started yet has no total
(zero) until its first row. A process on another rule recounts them once (`rebuild`) or, until
the rule matches, sums the ledger. `problems` proves them for `check_invariants`. See
docs/design-notes.md, "Running totals".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.config import QuotaWindow
from bot.store.db import Connection, Row, fetch_all, fetch_one, parse_ts
from bot.store.models import LedgerKind
from bot.store.windows import window_bounds

BOT_SCOPE = "bot"
ROW_COLUMNS = "kind, guild_id, user_id, amount, charged, period_at"
_UPSERT_CHUNK = 100  # rows per INSERT: well under SQLite's limit of bound parameters
_FIELDS = ("used", "granted", "reserved")


@dataclass(frozen=True, slots=True)
class TotalsRow:
    """What the totals need to know about one ledger row."""

    kind: LedgerKind
    guild_id: int | None
    user_id: int | None
    amount: int
    charged: int | None
    period_at: dt.datetime

    @classmethod
    def of(cls, row: Row) -> TotalsRow:
        """From a row selected with `ROW_COLUMNS`."""
        return cls(
            kind=LedgerKind(row["kind"]),
            guild_id=row["guild_id"],
            user_id=row["user_id"],
            amount=int(row["amount"]),
            charged=None if row["charged"] is None else int(row["charged"]),
            period_at=parse_ts(row["period_at"]),
        )

    def changes(self) -> tuple[int, int, int]:
        """What this row adds to (used, granted, reserved)."""
        if self.kind is LedgerKind.GRANT:
            return 0, self.amount, 0
        reserved = 0
        if self.kind in (LedgerKind.RESERVE, LedgerKind.TOPUP):
            reserved = -self.amount
        elif self.kind in (LedgerKind.SETTLE, LedgerKind.REFUND):
            reserved = -(self.amount + (self.charged or 0))  # what the job held, given back
        return -self.amount, 0, reserved

    def scopes(self) -> list[str]:
        """Every scope this row counts in."""
        found = [BOT_SCOPE]
        if self.guild_id is not None:
            found.append(guild_scope(self.guild_id))
        if self.user_id is not None:
            found.append(member_scope(self.guild_id, self.user_id))
        return found


def window_key(window: QuotaWindow, reset_time: dt.time) -> str:
    """The name of a window rule, as `ledger_totals_window` records it."""
    reset = dt.time.fromisoformat(str(reset_time)).replace(tzinfo=None)  # a policy may carry text
    return f"{QuotaWindow(window).value} {reset.isoformat()}"


def parse_key(key: str) -> tuple[QuotaWindow, dt.time]:
    """The window rule a key names."""
    window, reset_time = key.split(" ")
    return QuotaWindow(window), dt.time.fromisoformat(reset_time)


def member_scope(guild_id: int | None, user_id: int) -> str:
    """The scope of one member (or one deleted member's token) in one server."""
    return f"member:{'-' if guild_id is None else guild_id}:{user_id}"


def guild_scope(guild_id: int) -> str:
    """The scope of one server's pool."""
    return f"guild:{guild_id}"


async def current_key(conn: Connection) -> str | None:
    """The window rule the totals are kept for (None before they were ever built)."""
    row = await fetch_one(conn, "SELECT window_key FROM ledger_totals_window")
    return None if row is None else str(row[0])


Deltas = dict[tuple[str, dt.datetime], list[int]]


def deltas(rows: Iterable[TotalsRow], key: str, sign: int = 1) -> Deltas:
    """What `rows` change, per (scope, window start), under the rule `key`."""
    window, reset_time = parse_key(key)
    starts: dict[dt.datetime, dt.datetime] = {}
    found: Deltas = {}
    for row in rows:
        start = starts.get(row.period_at)
        if start is None:
            start = starts[row.period_at] = window_bounds(row.period_at, window, reset_time)[0]
        used, granted, reserved = row.changes()
        for scope in row.scopes():
            total = found.setdefault((scope, start), [0, 0, 0])
            total[0] += sign * used
            if scope.startswith("member:"):  # a server's and the bot's totals need only their usage
                total[1] += sign * granted
                total[2] += sign * reserved
    return found


async def record(conn: Connection, rows: Iterable[TotalsRow], *, sign: int = 1, key: str | None = None) -> None:
    """Add what `rows` count (or take it away, `sign=-1`) to the totals, in the caller's transaction.

    Every write to the ledger calls this with the rows it wrote (or changed, before and after).
    On PostgreSQL the caller holds the ledger lock at least shared, so `rebuild` cannot interleave.
    `key` saves reading the rule when the caller has just read it in this transaction.
    """
    key = key or await current_key(conn)
    if key is None:
        return  # never built: `rebuild` will count these rows with the rest
    await _upsert(conn, deltas(rows, key))


async def ledger_rows(conn: Connection, where: str, params: Sequence[object]) -> list[tuple[int, TotalsRow]]:
    """The ledger rows matching `where` (a constant clause), with their ids, as the totals see them."""
    sql = f"SELECT id, {ROW_COLUMNS} FROM ledger WHERE {where}"  # noqa: S608 - constant clauses only
    return [(int(r["id"]), TotalsRow.of(r)) for r in await fetch_all(conn, sql, params)]


async def recount(conn: Connection, before: Sequence[tuple[int, TotalsRow]]) -> None:
    """After ledger rows were re-attributed or deleted: take `before` away, add what those rows are now.

    For the rare writes that change rows rather than add them (a member's data being deleted).
    """
    if not before:
        return
    key = await current_key(conn)
    if key is None:
        return
    ids = [row_id for row_id, _ in before]
    after: list[TotalsRow] = []
    for first in range(0, len(ids), _UPSERT_CHUNK):
        chunk = ids[first : first + _UPSERT_CHUNK]
        marks = ", ".join(["?"] * len(chunk))
        after += [row for _, row in await ledger_rows(conn, f"id IN ({marks})", chunk)]
    changes = deltas((row for _, row in before), key, sign=-1)
    for scope_start, change in deltas(after, key).items():
        total = changes.setdefault(scope_start, [0, 0, 0])
        for i, value in enumerate(change):
            total[i] += value
    await _upsert(conn, changes)


async def _upsert(conn: Connection, changes: Deltas) -> None:
    items = sorted((k, v) for k, v in changes.items() if any(v))  # one order everywhere: no deadlocks
    for first in range(0, len(items), _UPSERT_CHUNK):
        chunk = items[first : first + _UPSERT_CHUNK]
        values = ", ".join(["(?, ?, ?, ?, ?)"] * len(chunk))
        await conn.execute(
            f"INSERT INTO ledger_totals (scope, window_start, used, granted, reserved) VALUES {values}"  # noqa: S608
            " ON CONFLICT (scope, window_start) DO UPDATE SET used = ledger_totals.used + excluded.used,"
            " granted = ledger_totals.granted + excluded.granted,"
            " reserved = ledger_totals.reserved + excluded.reserved",
            [p for (scope, start), v in chunk for p in (scope, start, *v)],
        )


async def rebuild(conn: Connection, key: str) -> int:
    """Recount every total from the ledger under the rule `key`; return how many totals there are.

    The caller holds the ledger lock exclusively (PostgreSQL) inside a write transaction.
    """
    await conn.execute("DELETE FROM ledger_totals")
    rows = await fetch_all(conn, f"SELECT {ROW_COLUMNS} FROM ledger")  # noqa: S608 - constant columns
    changes = deltas((TotalsRow.of(r) for r in rows), key)
    await _upsert(conn, changes)
    if not await conn.execute("UPDATE ledger_totals_window SET window_key = ?", (key,)):
        await conn.execute("INSERT INTO ledger_totals_window (id, window_key) VALUES (1, ?)", (key,))
    return sum(1 for v in changes.values() if any(v))


_OPEN_HOLD_SQL = (
    "(l.kind IN ('reserve', 'topup') AND l.job_id IS NOT NULL AND NOT EXISTS"
    " (SELECT 1 FROM ledger AS c WHERE c.job_id = l.job_id AND c.kind IN ('settle', 'refund')))"
)


async def problems(conn: Connection) -> list[str]:
    """Every total that differs from what the ledger's rows sum to, in words.

    Recomputed here from the ledger itself (open reservations found by their missing closing row,
    not by the arithmetic `record` uses), so a wrong `record` is caught rather than repeated.
    """
    key = await current_key(conn)
    if key is None:
        return ["the ledger's running totals were never built"]
    want = await _summed_from_ledger(conn, key)
    have = {
        (str(r["scope"]), parse_ts(r["window_start"])): [int(r["used"]), int(r["granted"]), int(r["reserved"])]
        for r in await fetch_all(conn, "SELECT scope, window_start, used, granted, reserved FROM ledger_totals")
    }
    found: list[str] = []
    for scope, start in sorted(set(want) | set(have)):
        kept, summed = have.get((scope, start), [0, 0, 0]), want.get((scope, start), [0, 0, 0])
        found += [
            f"running total {name} of {scope} for the window from {start.isoformat()} is {a},"
            f" but its ledger rows sum to {b}"
            for name, a, b in zip(_FIELDS, kept, summed, strict=True)
            if a != b
        ]
    return found


async def _summed_from_ledger(conn: Connection, key: str) -> Deltas:
    window, reset_time = parse_key(key)
    want: Deltas = {}
    rows = await fetch_all(
        conn,
        f"SELECT l.kind, l.guild_id, l.user_id, l.amount, l.period_at, {_OPEN_HOLD_SQL} AS open FROM ledger AS l",  # noqa: S608
    )
    for row in rows:
        grant = row["kind"] == LedgerKind.GRANT.value
        amount = int(row["amount"])
        sums = (0 if grant else -amount, amount if grant else 0, -amount if row["open"] else 0)
        start = window_bounds(parse_ts(row["period_at"]), window, reset_time)[0]
        scopes = [BOT_SCOPE] + ([] if row["guild_id"] is None else [guild_scope(row["guild_id"])])
        if row["user_id"] is not None:
            scopes.append(member_scope(row["guild_id"], row["user_id"]))
        for scope in scopes:
            total = want.setdefault((scope, start), [0, 0, 0])
            for i, value in enumerate(sums if scope.startswith("member:") else sums[:1]):
                total[i] += value
    return want
