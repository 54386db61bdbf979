"""The credit ledger: one reading of a member's limits, and the writes that must respect it.

`load_limits` reads everything that limits a member's spending in a window (allowance, grants,
usage, pool, budget, active jobs) into an `EffectiveLimits`, whose `refusal_for` is the only credit
rule. `QuotaLedger.limits` shows it to members and managers; `reserve` and `top_up` load the same
thing inside their `BEGIN IMMEDIATE` transaction and apply the same rule, so concurrent requests
can never overspend and what is shown is what is enforced. Credits are closed (settled or
refunded) only by `JobStore.transition`; a job whose outcome at Magic Hour was unknown is later
brought to Magic Hour's real charge, once, by `reconcile`. Sign convention and window rules:
`bot.store.models`. Reach this as `store.quota`.

Across processes (PostgreSQL), a reservation or top-up first takes the locks of every limit it
checks (`Connection.lock`: the server's, which covers its members, active jobs and pool, and the
bot budget's when there is one), then locks the job's row: so two processes reserving against one
limit are ordered, each sums the ledger after the other's row is committed, and none overspends.
On SQLite, `BEGIN IMMEDIATE` orders every writer anyway. Within one process, reservations that would
wait for the same database lock first queue on an `asyncio.Lock` (per server, or one for the bot
budget): correctness comes from the database's locks, but a queue of one waiter per process at the
database, rather than one per task, is about three times faster under contention.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from bot import bounds
from bot.clock import Clock
from bot.config import GenerationMode
from bot.store import forget, ledger, totals
from bot.store.db import (
    BUDGET_LOCK,
    LEDGER_LOCK,
    Connection,
    Database,
    Row,
    fetch_all,
    fetch_one,
    guild_lock,
    parse_ts,
)
from bot.store.errors import AboveCeiling, AlreadyReconciled, JobNotActive, JobNotFound, NoReservation, NotReconcilable
from bot.store.jobs import error_data_text, load_job, load_uncertain, write_fields
from bot.store.limits import load_guild_settings, resolve_allowance
from bot.store.models import (
    UNKNOWN_AT_MAGIC_HOUR,
    EffectiveLimits,
    JobState,
    LedgerEntry,
    LedgerKind,
    QuotaPolicy,
    Reconciliation,
    Refusal,
    Reservation,
    UsageLine,
    UsageReport,
)
from bot.store.windows import window_bounds


def _entry(row: Row) -> LedgerEntry:
    return LedgerEntry(
        id=int(row["id"]),
        kind=LedgerKind(row["kind"]),
        job_id=row["job_id"],
        guild_id=row["guild_id"],
        user_id=row["user_id"],
        mode=GenerationMode(row["mode"]) if row["mode"] is not None else None,
        amount=int(row["amount"]),
        charged=row["charged"],
        period_at=parse_ts(row["period_at"]),
        at=parse_ts(row["at"]),
        by_user_id=row["by_user_id"],
        note=row["note"],
    )


def _at_most(value: int, bound: int | None) -> int:
    return value if bound is None else min(value, bound)


def _role_text(role_ids: Sequence[int]) -> str:
    return ",".join(str(int(r)) for r in role_ids)


def _role_list(text: str | None) -> list[int]:
    return [int(part) for part in text.split(",") if part] if text else []


async def lock_limits(conn: Connection, policy: QuotaPolicy, guild_id: int | None, *, budget: bool = True) -> None:
    """Lock every limit a member of `guild_id` spends against, until the transaction ends (see above)."""
    names = [guild_lock(guild_id)]
    if budget and policy.bot_budget_credits is not None:
        names.append(BUDGET_LOCK)
    await conn.lock(*names, shared=[LEDGER_LOCK])


async def load_limits(
    conn: Connection,
    policy: QuotaPolicy,
    secret: bytes,
    guild_id: int | None,
    user_id: int,
    role_ids: Sequence[int],
    at: dt.datetime,
    *,
    exclude_job_id: int = -1,
) -> EffectiveLimits:
    """A member's `EffectiveLimits` in the window containing `at`, inside the caller's transaction.

    The one loader behind `QuotaLedger.limits`, `reserve`, `top_up` and `grant`. `exclude_job_id`
    leaves one job out of the active-job count.
    """
    start, end = window_bounds(at, policy.window, policy.reset_time)
    settings = await load_guild_settings(conn, policy, guild_id)
    allowance, source = await resolve_allowance(conn, policy, guild_id, user_id, role_ids, settings)
    token = forget.member_token(secret, guild_id, user_id)
    pool_limit: int | None = None
    if settings is not None:
        caps = [c for c in (settings.pool_credits, policy.server_credits_ceiling) if c is not None]
        pool_limit = min(caps) if caps else None
    sums = await ledger.window_sums(
        conn,
        guild_id,
        (user_id, token),
        start,
        end,
        exclude_job_id=exclude_job_id,
        pool_of=settings.guild_id if settings is not None and pool_limit is not None else None,
        bot=policy.bot_budget_credits is not None,
        totals_key=totals.window_key(policy.window, policy.reset_time),
    )
    used, granted, reserved, active = sums.used, sums.granted, sums.reserved, sums.active
    pool_available = None if pool_limit is None or sums.guild_used is None else pool_limit - sums.guild_used
    budget_available = (
        None
        if policy.bot_budget_credits is None or sums.bot_used is None
        else policy.bot_budget_credits - sums.bot_used
    )

    # A member's allowance plus grants never passes the operator's ceiling, whatever managers set
    # and in whichever order (a grant, then a higher limit), or whenever the operator lowered it.
    ceiling = policy.server_credits_ceiling if guild_id is not None else None
    member_available = _at_most(allowance + granted, ceiling) - used
    availables = [a for a in (member_available, pool_available, budget_available) if a is not None]
    return EffectiveLimits(
        allowance=allowance,
        limit_kind=source,
        granted=granted,
        used=used,
        reserved=reserved,
        member_available=member_available,
        pool_limit=pool_limit,
        pool_available=pool_available,
        budget_limit=policy.bot_budget_credits,
        budget_available=budget_available,
        remaining=max(0, min(availables)),
        window_start=start,
        resets_at=end,
        active_jobs=active,
        max_active_jobs=(  # the server's own is at most the operator's (`within_operator`)
            settings.max_active_jobs
            if settings is not None and settings.max_active_jobs is not None
            else policy.max_active_jobs_per_member
        ),
        guild=settings,
    )


class QuotaLedger:
    """Reservations, top-ups, grants, adjustments and reconciliations, as ledger rows; limits and usage, as sums."""

    def __init__(self, db: Database, policy: QuotaPolicy, clock: Clock, secret: bytes) -> None:
        self._db = db
        self._policy = policy
        self._clock = clock
        self._secret = secret
        # The window start this ledger last swept deleted members' tokens for: one sweep per window
        # per process is enough, since tokens only ever hold rows of the window running when made.
        self._swept_for: dt.datetime | None = None
        self._queues: dict[str, asyncio.Lock] = {}
        self._totals_checked = False

    def _queue(self, guild_id: int | None) -> asyncio.Lock:
        """The in-process queue for the database lock a reservation in `guild_id` will wait for."""
        name = BUDGET_LOCK if self._policy.bot_budget_credits is not None else guild_lock(guild_id)
        return self._queues.setdefault(name, asyncio.Lock())

    async def ensure_totals(self) -> bool:
        """Make the running totals count this ledger's windows; return True if they were recounted.

        Checked once per process, before its first reservation: a database whose totals were kept
        for another window rule (the bot's window or reset time changed) is recounted from the
        ledger, in one transaction that holds the ledger lock exclusively. Should another process
        with yet another rule recount them afterwards, reads notice and sum the ledger instead.
        """
        key = totals.window_key(self._policy.window, self._policy.reset_time)

        async def body(conn: Connection) -> bool:
            await conn.lock(LEDGER_LOCK)
            if await totals.current_key(conn) == key:
                return False
            await totals.rebuild(conn, key)
            return True

        if await self._db.read(totals.current_key) == key:
            rebuilt = False
        else:
            rebuilt = await self._db.write(body)
        self._totals_checked = True
        return rebuilt

    @property
    def policy(self) -> QuotaPolicy:
        """The bot-wide defaults this ledger applies."""
        return self._policy

    def window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The current window `[start, end)`; `end` is the next reset, for display."""
        return window_bounds(now or self._clock.now(), self._policy.window, self._policy.reset_time)

    async def limits(self, guild_id: int | None, user_id: int, role_ids: Sequence[int] = ()) -> EffectiveLimits:
        """The member's limits, usage and what they can spend, in the current window.

        `limits(...).refusal_for(estimate)` predicts `reserve`'s answer (barring a race).
        """
        return await self._db.read(
            lambda conn: load_limits(conn, self._policy, self._secret, guild_id, user_id, role_ids, self._clock.now())
        )

    async def reserve(
        self, job_id: int, *, guild_id: int | None, user_id: int, role_ids: Sequence[int], amount: int
    ) -> Reservation | Refusal:
        """Hold `amount` credits for a job if `EffectiveLimits.refusal_for(amount)` allows it.

        One `BEGIN IMMEDIATE` transaction loads the member's limits and writes the reservation, so
        concurrent reservations (in this process or others) can never overspend. `amount` must be
        at least 1 (every job costs at least a frame). A job that already reserved gets its
        existing reservation back (`already_reserved=True`); a finished job raises `JobNotActive`.
        `guild_id` and `user_id` must match the job's. `role_ids` are recorded with the job, so a
        later `top_up` is checked against the same allowance. The first reservation of each window
        (per process) also anonymises deleted members' rows of ended windows (`bot.store.forget`).
        """
        if amount < 1:
            raise ValueError("a reservation must be at least 1 credit")
        policy = self._policy
        swept: list[dt.datetime] = []
        if not self._totals_checked:
            await self.ensure_totals()

        async def body(conn: Connection) -> Reservation | Refusal:
            await lock_limits(conn, policy, guild_id)
            now = self._clock.now()
            job = await load_job(conn, job_id, for_update=True)
            if (job.guild_id, job.user_id) != (guild_id, user_id):
                raise ValueError(f"job {job_id} belongs to member {job.user_id} in server {job.guild_id}")
            if job.terminal:
                raise JobNotActive(job_id, job.state.value)
            start = window_bounds(now, policy.window, policy.reset_time)[0]
            if self._swept_for != start:
                await forget.sweep(conn, start)
                swept.append(start)
            limits = await load_limits(conn, policy, self._secret, guild_id, user_id, role_ids, now)
            existing = await ledger.reservation_row(conn, job_id)
            if existing is not None:
                period = parse_ts(existing["period_at"])
                return Reservation(
                    job_id=job_id,
                    amount=await ledger.held(conn, job_id),
                    reserved_at=parse_ts(existing["at"]),
                    resets_at=window_bounds(period, policy.window, policy.reset_time)[1],
                    remaining=limits.remaining,
                    already_reserved=True,
                )
            refusal = limits.refusal_for(amount, new_job=True)
            if refusal is not None:
                return refusal
            await ledger.hold(
                conn,
                LedgerKind.RESERVE,
                job_id,
                guild_id=guild_id,
                user_id=user_id,
                mode=job.mode.value,
                credits=amount,
                period_at=now,
                now=now,
            )
            await conn.execute(
                "UPDATE jobs SET estimated_credits = ?, role_ids = ?, updated_at = ? WHERE id = ?",
                (amount, _role_text(role_ids), now, job_id),
            )
            return Reservation(
                job_id=job_id,
                amount=amount,
                reserved_at=now,
                resets_at=limits.resets_at,
                remaining=max(0, limits.remaining - amount),
            )

        async with self._queue(guild_id):
            result = await self._db.write(body)
        if swept:  # committed: no need to sweep again in this window
            self._swept_for = swept[-1]
        return result

    async def top_up(
        self, job_id: int, to_amount: int, *, role_ids: Sequence[int] | None = None
    ) -> Reservation | Refusal:
        """Raise a job's open reservation to hold `to_amount` in total, if every credit limit allows.

        For a create answer that costs more than the estimate: the increase is checked with
        `refusal_for(increase, new_job=False)` (the job already holds its active-job slot) against
        the window the reservation counts in, in one `BEGIN IMMEDIATE` transaction, and written as
        a `topup` row. `to_amount` at or below what is held changes nothing and returns the
        reservation (`already_reserved=True`). The allowance is resolved with the roles recorded
        at `reserve` unless `role_ids` is given. Raises `NoReservation` when the job has no open
        reservation and `JobNotActive` for a finished job.
        """
        if to_amount < 0:
            raise ValueError("a reservation cannot be negative")
        policy = self._policy

        async def body(conn: Connection) -> Reservation | Refusal:
            # A job's server never changes: read it to know which limits to lock, then lock the job.
            row = await fetch_one(conn, "SELECT guild_id FROM jobs WHERE id = ?", (job_id,))
            if row is not None:
                await lock_limits(conn, policy, row[0])
            now = self._clock.now()
            job = await load_job(conn, job_id, for_update=True)
            if job.terminal:
                raise JobNotActive(job_id, job.state.value)
            reserve = await ledger.reservation_row(conn, job_id)
            if reserve is None or await ledger.closing_row(conn, job_id) is not None:
                raise NoReservation(job_id)
            if role_ids is None:
                row = await fetch_one(conn, "SELECT role_ids FROM jobs WHERE id = ?", (job_id,))
                roles: Sequence[int] = _role_list(row[0] if row is not None else None)
            else:
                roles = role_ids
            period = parse_ts(reserve["period_at"])
            limits = await load_limits(
                conn, policy, self._secret, job.guild_id, job.user_id, roles, period, exclude_job_id=job_id
            )
            total = await ledger.held(conn, job_id)
            if to_amount <= total:
                return Reservation(job_id, total, parse_ts(reserve["at"]), limits.resets_at, limits.remaining, True)
            increase = to_amount - total
            refusal = limits.refusal_for(increase, new_job=False)
            if refusal is not None:
                return refusal
            await ledger.hold(
                conn,
                LedgerKind.TOPUP,
                job_id,
                guild_id=reserve["guild_id"],
                user_id=reserve["user_id"],
                mode=reserve["mode"],
                credits=increase,
                period_at=period,  # counts in the reservation's window
                now=now,
            )
            await conn.execute(
                "UPDATE jobs SET estimated_credits = ?, updated_at = ? WHERE id = ?", (to_amount, now, job_id)
            )
            return Reservation(
                job_id=job_id,
                amount=to_amount,
                reserved_at=parse_ts(reserve["at"]),
                resets_at=limits.resets_at,
                remaining=max(0, limits.remaining - increase),
            )

        return await self._db.write(body)

    async def grant(
        self,
        guild_id: int | None,
        user_id: int,
        amount: int,
        by_user_id: int | None = None,
        note: str | None = None,
        *,
        role_ids: Sequence[int] = (),
    ) -> LedgerEntry | None:
        """Add `amount` credits to a member's allowance for the current window only.

        A grant raises what the member may use; it does not raise the server pool or bot budget.
        In a server with an operator ceiling, a grant that would take the member's allowance plus
        grants above it raises `AboveCeiling` (requested: the total it would reach). A negative
        amount takes credits back, but never more than the member's allowance plus grants: it is
        clamped to what can be taken, the entry shows what was actually taken, and None means
        there was nothing left to take (nothing written). The allowance is resolved with
        `role_ids`, so pass the member's roles.
        """
        if amount == 0:
            raise ValueError("a grant of 0 credits changes nothing")
        bounds.GRANT.check(amount)
        policy = self._policy

        async def body(conn: Connection) -> LedgerEntry | None:
            await lock_limits(conn, policy, guild_id, budget=False)  # a grant never touches the budget
            now = self._clock.now()
            limits = await load_limits(conn, policy, self._secret, guild_id, user_id, role_ids, now)
            base = limits.allowance + limits.granted
            ceiling = policy.server_credits_ceiling
            if amount > 0:
                if guild_id is not None and ceiling is not None and base + amount > ceiling:
                    raise AboveCeiling(ceiling, base + amount)
                bounds.GRANT_TOTAL.check(base + amount)  # keeps every window's sums far from overflowing
                taken = amount
            else:
                taken = -min(-amount, max(0, base))
                if taken == 0:
                    return None
            return await _insert(conn, LedgerKind.GRANT, guild_id, user_id, taken, by_user_id, note, None, now)

        return await self._db.write(body)

    async def adjust(
        self,
        guild_id: int | None,
        user_id: int,
        amount: int,
        by_user_id: int | None = None,
        note: str | None = None,
        *,
        job_id: int | None = None,
    ) -> LedgerEntry:
        """Correct usage by hand: `+n` gives credits back, `-n` counts `n` more as used.

        Unlike a grant this counts against (or for) the server pool and bot budget too. Counts in
        the current window. A job whose outcome at Magic Hour was unknown is corrected with
        `reconcile`, not here.
        """
        if amount == 0:
            raise ValueError("an adjustment of 0 credits changes nothing")
        bounds.CREDITS.check(abs(amount))

        async def body(conn: Connection) -> LedgerEntry:
            await conn.lock(shared=[LEDGER_LOCK])  # the totals must not interleave with their rebuild
            mode = None if job_id is None else (await load_job(conn, job_id)).mode.value
            return await _insert(
                conn, LedgerKind.ADJUST, guild_id, user_id, amount, by_user_id, note, job_id, self._clock.now(), mode
            )

        return await self._db.write(body)

    async def reconcile(self, job_id: int, charged: int, *, by_user_id: int | None = None) -> Reconciliation:
        """Record what Magic Hour really charged for a job whose outcome there was unknown, once.

        Such a job failed with `UNKNOWN_AT_MAGIC_HOUR` and was settled to what it held; the operator
        has since looked its project up. One write transaction locks the job and its limits, writes
        a `reconcile` row of `counted - charged` (`counted`: what the job's rows added up to), so
        the job's rows now add up to `charged`, and sets the job's `charged_credits` to `charged` and
        `error_data["reconciled_charge"]`. The row counts in the job's own window (its
        reservation's, else the window it was made in), like a settle: the difference goes back to
        (or is counted against) the member, the server and the budget of the window the job spent
        in, never refused. Credits given back for a job of an ended window are not spendable now:
        that window's real spend was lower, not this one's budget higher. Raises `JobNotFound`,
        `NotReconcilable` for any other job, `OutOfBounds` for a charge no job can cost, and
        `AlreadyReconciled` on a second call, which changes nothing; the unique index
        `ledger_one_reconcile` backs that up.
        """
        if charged < 0:
            raise ValueError("charged credits cannot be negative")
        bounds.JOB_CHARGE.check(charged)
        if not bounds.JOB_ID.contains(job_id):
            raise JobNotFound(job_id)
        policy = self._policy

        async def body(conn: Connection) -> Reconciliation:
            # A job's server never changes: read it to know which limits to lock, then lock the job.
            row = await fetch_one(conn, "SELECT guild_id FROM jobs WHERE id = ?", (job_id,))
            if row is None:
                raise JobNotFound(job_id)
            await lock_limits(conn, policy, row[0])
            now = self._clock.now()
            job = await load_job(conn, job_id, for_update=True)
            if job.state is not JobState.FAILED or job.error_code != UNKNOWN_AT_MAGIC_HOUR:
                raise NotReconcilable(job_id, job.state.value, job.error_code)
            done = await ledger.reconcile_row(conn, job_id)
            if done is not None:
                raise AlreadyReconciled(job_id, int(done["charged"]))
            counted = await ledger.net_charge(conn, job_id)
            reserve = await ledger.reservation_row(conn, job_id)
            period = parse_ts(reserve["period_at"]) if reserve is not None else job.created_at
            rows = await fetch_all(
                conn,
                "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, charged, period_at, at, by_user_id)"
                " VALUES ('reconcile', ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                (
                    job_id,
                    job.guild_id,
                    job.user_id,
                    job.mode.value,
                    counted - charged,
                    charged,
                    period,
                    now,
                    by_user_id,
                ),
            )
            await totals.record(conn, [totals.TotalsRow.of(rows[0])])
            data = error_data_text({**(job.error_data or {}), "reconciled_charge": charged})
            await write_fields(conn, job_id, {"charged_credits": charged, "error_data": data}, now)
            return Reconciliation(job_id=job_id, counted=counted, charged=charged, entry=_entry(rows[0]))

        return await self._db.write(body)

    async def entries(self, job_id: int) -> list[LedgerEntry]:
        """Every ledger row of one job, oldest first."""
        rows = await self._db.read(
            lambda conn: fetch_all(conn, "SELECT * FROM ledger WHERE job_id = ? ORDER BY id", (job_id,))
        )
        return [_entry(r) for r in rows]

    async def member_entries(
        self, guild_id: int | None, user_id: int, since: dt.datetime | None = None
    ) -> list[LedgerEntry]:
        """A member's own ledger rows in one server counted at or after `since`, oldest first.

        Rows kept under a deleted member's token are not theirs any more and are not listed.
        """
        after = "" if since is None else " AND period_at >= ?"
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn,
                f"SELECT * FROM ledger WHERE guild_id IS NOT DISTINCT FROM ? AND user_id = ?{after} ORDER BY id",  # noqa: S608
                (guild_id, user_id, *([] if since is None else [since])),
            )
        )
        return [_entry(r) for r in rows]

    async def usage(
        self, guild_id: int | None, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> UsageReport:
        """A server's usage over `[since, until)` (default: the current window), by member and by mode.

        Counted from the ledger, not from jobs, so it stays right after members' data is deleted
        (their usage shows under `by_member[None]`, including rows still kept under a token).
        `uncertain` lists the period's jobs whose create outcome is unknown at Magic Hour.
        `guild_id=None` reports command-line jobs.
        """
        if since is None or until is None:
            start, end = self.window()
            since = since or start
            until = until or end
        since_at, until_at = since, until

        async def body(conn: Connection) -> tuple[list[Row], UsageReport]:
            rows = await fetch_all(
                conn,
                "SELECT r.user_id, r.mode, r.kind, r.amount, r.charged,"
                " (r.kind IN ('reserve', 'topup') AND r.job_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM ledger AS c"
                "   WHERE c.job_id = r.job_id AND c.kind IN ('settle', 'refund'))) AS open"
                " FROM ledger AS r"
                " WHERE r.guild_id IS NOT DISTINCT FROM ? AND r.period_at >= ? AND r.period_at < ?"
                " AND r.kind <> 'grant'",
                (guild_id, since_at, until_at),
            )
            uncertain = await load_uncertain(conn, guild_id, since_at, until_at)
            return rows, UsageReport(guild_id, since_at, until_at, UsageLine(), uncertain=uncertain)

        rows, report = await self._db.read(body)
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


async def _insert(
    conn: Connection,
    kind: LedgerKind,
    guild_id: int | None,
    user_id: int,
    amount: int,
    by_user_id: int | None,
    note: str | None,
    job_id: int | None,
    now: dt.datetime,
    mode: str | None = None,
) -> LedgerEntry:
    rows = await fetch_all(
        conn,
        "INSERT INTO ledger (kind, job_id, guild_id, user_id, mode, amount, period_at, at, by_user_id, note)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
        (kind.value, job_id, guild_id, user_id, mode, amount, now, now, by_user_id, note),
    )
    await totals.record(conn, [totals.TotalsRow.of(rows[0])])
    return _entry(rows[0])


def _add(line: UsageLine, row: Row) -> None:
    kind = LedgerKind(row["kind"])
    amount = int(row["amount"])
    line.used -= amount
    if kind in (LedgerKind.RESERVE, LedgerKind.TOPUP):
        if kind is LedgerKind.RESERVE:
            line.jobs += 1
        if row["open"]:
            line.in_flight -= amount
    elif kind is LedgerKind.SETTLE:
        line.settled += 1
        line.charged += int(row["charged"])
    elif kind is LedgerKind.REFUND:
        line.refunded += 1
    elif kind is LedgerKind.ADJUST:
        line.adjusted -= amount
    elif kind is LedgerKind.RECONCILE:
        line.charged -= amount  # corrects the settle (what the job held) to what Magic Hour charged
