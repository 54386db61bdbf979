"""The credit ledger's writes and reads: `QuotaLedger`, reached as `store.quota`.

Reservations, top-ups, grants, adjustments and reconciliations are ledger rows, each checked
against the member's `EffectiveLimits` (`bot.store.effective`) in the same write transaction, so
concurrent requests never overspend. Credits are closed (settled or refunded) only by
`JobStore.transition`. Each public method runs one transaction whose steps are named methods
below it; the SQL is in `bot.store.queries`; signs and windows are in `bot.store.models`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Sequence

from bot import bounds
from bot.clock import Clock
from bot.store import forget, ledger, queries, totals
from bot.store.db import BUDGET_LOCK, LEDGER_LOCK, Connection, Database, Row, fetch_all, fetch_one, guild_lock, parse_ts
from bot.store.effective import LimitsReader, LoadedLimits, Member
from bot.store.errors import AboveCeiling, AlreadyReconciled, JobNotActive, JobNotFound, NoReservation, NotReconcilable
from bot.store.jobs import error_data_text, load_job, write_fields
from bot.store.models import (
    UNKNOWN_AT_MAGIC_HOUR,
    EffectiveLimits,
    JobRecord,
    JobState,
    LedgerEntry,
    LedgerKind,
    QuotaPolicy,
    Reconciliation,
    Refusal,
    Reservation,
    UsageReport,
)
from bot.store.usage import usage_report
from bot.store.windows import window_bounds


def _role_text(role_ids: Sequence[int]) -> str:
    return ",".join(str(int(r)) for r in role_ids)


def _role_list(text: str | None) -> list[int]:
    return [int(part) for part in text.split(",") if part] if text else []


async def _write_row(
    conn: Connection,
    kind: LedgerKind,
    member: Member,
    amount: int,
    *,
    at: dt.datetime,
    period_at: dt.datetime | None = None,
    job: JobRecord | None = None,
    charged: int | None = None,
    by_user_id: int | None = None,
    note: str | None = None,
) -> LedgerEntry:
    """Insert one ledger row (grant, adjust or reconcile) and add it to the running totals."""
    mode = None if job is None else job.mode.value
    params = (kind.value, None if job is None else job.id, member.guild_id, member.user_id, mode, amount, charged)
    rows = await fetch_all(conn, queries.INSERT_LEDGER_ROW, (*params, period_at or at, at, by_user_id, note))
    await totals.record(conn, [totals.TotalsRow.of(rows[0])])
    return ledger.entry(rows[0])


class QuotaLedger:
    """Reservations, top-ups, grants, adjustments and reconciliations, as ledger rows; limits and usage, as sums."""

    def __init__(self, db: Database, policy: QuotaPolicy, clock: Clock, secret: bytes) -> None:
        self._db = db
        self._policy = policy
        self._clock = clock
        self._reader = LimitsReader(policy, secret)
        # The window start this ledger last swept deleted members' tokens for: one sweep per window
        # per process is enough, since tokens only ever hold rows of the window running when made.
        self._swept_for: dt.datetime | None = None
        # Reservations that would wait for the same database lock queue here first (per server, or
        # one for the bot budget): one waiter per process at the database is about three times
        # faster under contention than one per task. Correctness comes from the database's locks.
        self._queues: dict[str, asyncio.Lock] = {}
        self._totals_checked = False

    @property
    def policy(self) -> QuotaPolicy:
        """The bot-wide defaults this ledger applies."""
        return self._policy

    def window(self, now: dt.datetime | None = None) -> tuple[dt.datetime, dt.datetime]:
        """The current window `[start, end)`; `end` is the next reset, for display."""
        return window_bounds(now or self._clock.now(), self._policy.window, self._policy.reset_time)

    async def ensure_totals(self) -> bool:
        """Make the running totals count this ledger's windows; return True if they were recounted.

        Checked once per process, before its first reservation: totals kept for another window
        rule (the bot's window or reset time changed) are recounted from the ledger, in one
        transaction holding the ledger lock exclusively. Should another process with yet another
        rule recount them afterwards, this one's reads notice and sum the ledger instead.
        """
        key = totals.window_key(self._policy.window, self._policy.reset_time)

        async def recount(conn: Connection) -> bool:
            await conn.lock(LEDGER_LOCK)
            if await totals.current_key(conn) == key:
                return False
            await totals.rebuild(conn, key)
            return True

        rebuilt = await self._db.read(totals.current_key) != key and await self._db.write(recount)
        self._totals_checked = True
        return rebuilt

    async def limits(self, guild_id: int | None, user_id: int, role_ids: Sequence[int] = ()) -> EffectiveLimits:
        """The member's limits, usage and what they can spend, in the current window.

        `limits(...).refusal_for(estimate)` predicts `reserve`'s answer (barring a race).
        """
        member = Member(guild_id, user_id, role_ids)
        loaded = await self._db.read(lambda conn: self._reader.load(conn, member, self._clock.now()))
        return loaded.limits

    # Reservations

    async def reserve(
        self, job_id: int, *, guild_id: int | None, user_id: int, role_ids: Sequence[int], amount: int
    ) -> Reservation | Refusal:
        """Hold `amount` credits for a job if every limit allows; return the `Reservation` or the `Refusal`.

        One write transaction locks the member's limits, loads them and writes the reservation,
        so concurrent reservations (in this process or others) never overspend. A job that already
        reserved gets its reservation back (`already_reserved=True`), nothing written. `role_ids`
        are recorded with the job, so a later `top_up` is checked against the same allowance. The
        first reservation of each window (per process) also anonymises deleted members' rows of
        ended windows (`bot.store.forget`). Raises `ValueError` for an `amount` below 1 (every job
        costs at least a frame) or a member who is not the job's, `JobNotFound`, and
        `JobNotActive` for a finished job.
        """
        if amount < 1:
            raise ValueError("a reservation must be at least 1 credit")
        if not self._totals_checked:
            await self.ensure_totals()
        member = Member(guild_id, user_id, role_ids)
        swept: list[dt.datetime] = []

        async def body(conn: Connection) -> Reservation | Refusal:
            await self._reader.lock(conn, guild_id)
            now = self._clock.now()
            job = await self._active_job(conn, job_id, owner=member)
            swept.extend(await self._sweep_once(conn, now))
            loaded = await self._reader.load(conn, member, now, of_job=job_id)
            if loaded.reserve_id is not None:
                return await self._existing_reservation(conn, job_id, loaded.limits)
            return await self._hold_new(conn, job, member, amount, loaded, now)

        async with self._queue(guild_id):
            result = await self._db.write(body)
        if swept:  # committed: no need to sweep again in this window
            self._swept_for = swept[-1]
        return result

    def _queue(self, guild_id: int | None) -> asyncio.Lock:
        """The in-process queue for the database lock a reservation in `guild_id` will wait for."""
        name = BUDGET_LOCK if self._policy.bot_budget_credits is not None else guild_lock(guild_id)
        return self._queues.setdefault(name, asyncio.Lock())

    @staticmethod
    async def _active_job(conn: Connection, job_id: int, owner: Member | None = None) -> JobRecord:
        """The job, locked for this transaction; `ValueError` if it is not `owner`'s, `JobNotActive` if finished."""
        job = await load_job(conn, job_id, for_update=True)
        if owner is not None and (job.guild_id, job.user_id) != (owner.guild_id, owner.user_id):
            raise ValueError(f"job {job_id} belongs to member {job.user_id} in server {job.guild_id}")
        if job.terminal:
            raise JobNotActive(job_id, job.state.value)
        return job

    async def _sweep_once(self, conn: Connection, now: dt.datetime) -> list[dt.datetime]:
        """Anonymise deleted members' rows of ended windows, once per window; the window swept for."""
        start = window_bounds(now, self._policy.window, self._policy.reset_time)[0]
        if self._swept_for == start:
            return []
        await forget.sweep(conn, start)
        return [start]

    async def _existing_reservation(self, conn: Connection, job_id: int, limits: EffectiveLimits) -> Reservation:
        """A repeated `reserve`: the job's reservation as it stands (nothing written)."""
        row = await ledger.reservation_row(conn, job_id)
        assert row is not None  # the caller saw its id in this transaction
        resets_at = window_bounds(parse_ts(row["period_at"]), self._policy.window, self._policy.reset_time)[1]
        held = await ledger.held(conn, job_id)
        return Reservation(job_id, held, parse_ts(row["at"]), resets_at, limits.remaining, already_reserved=True)

    @staticmethod
    async def _hold_new(
        conn: Connection, job: JobRecord, member: Member, amount: int, loaded: LoadedLimits, now: dt.datetime
    ) -> Reservation | Refusal:
        """Write the job's reservation if the limits allow it, and record its estimate and roles."""
        limits = loaded.limits
        refusal = limits.refusal_for(amount, new_job=True)
        if refusal is not None:
            return refusal
        hold = ledger.Hold(LedgerKind.RESERVE, job.id, member.guild_id, member.user_id, job.mode.value, amount, now)
        await ledger.hold(conn, hold, now=now, totals_key=loaded.totals_key)
        await conn.execute(queries.RECORD_RESERVATION, (amount, _role_text(member.role_ids), now, job.id))
        return Reservation(job.id, amount, now, limits.resets_at, max(0, limits.remaining - amount))

    async def top_up(
        self, job_id: int, to_amount: int, *, role_ids: Sequence[int] | None = None
    ) -> Reservation | Refusal:
        """Raise a job's open reservation to hold `to_amount` in total; return the `Reservation` or the `Refusal`.

        For a create answer that costs more than the estimate: the increase is checked with
        `refusal_for(increase, new_job=False)` (the job already holds its active-job slot) against
        the window the reservation counts in, and written as a `topup` row, in one transaction.
        `to_amount` at or below what is held changes nothing and returns the reservation
        (`already_reserved=True`). The allowance is resolved with the roles recorded at `reserve`
        unless `role_ids` is given. Raises `ValueError` for a negative `to_amount`,
        `JobNotFound`, `NoReservation` when the job has no open reservation, and `JobNotActive`
        for a finished job.
        """
        if to_amount < 0:
            raise ValueError("a reservation cannot be negative")

        async def body(conn: Connection) -> Reservation | Refusal:
            row = await fetch_one(conn, queries.JOB_GUILD, (job_id,))
            if row is not None:  # a job's server never changes: lock its limits, then the job
                await self._reader.lock(conn, row[0])
            job = await self._active_job(conn, job_id)
            reserve = await ledger.reservation_row(conn, job_id)
            if reserve is None or await ledger.closing_row(conn, job_id) is not None:
                raise NoReservation(job_id)
            member = Member(job.guild_id, job.user_id, await self._recorded_roles(conn, job_id, role_ids))
            period = parse_ts(reserve["period_at"])  # a top-up counts in the reservation's window
            loaded = await self._reader.load(conn, member, period, exclude_job_id=job_id)
            return await self._hold_more(conn, job, reserve, to_amount, loaded)

        return await self._db.write(body)

    @staticmethod
    async def _recorded_roles(conn: Connection, job_id: int, given: Sequence[int] | None) -> Sequence[int]:
        """`given` if the caller passed roles, else the roles recorded at `reserve`."""
        if given is not None:
            return given
        row = await fetch_one(conn, queries.JOB_ROLE_IDS, (job_id,))
        return _role_list(row[0] if row is not None else None)

    async def _hold_more(
        self, conn: Connection, job: JobRecord, reserve: Row, to_amount: int, loaded: LoadedLimits
    ) -> Reservation | Refusal:
        """Write a top-up to `to_amount` if the limits allow the increase, and record the estimate."""
        limits, now = loaded.limits, self._clock.now()
        total = await ledger.held(conn, job.id)
        reserved_at = parse_ts(reserve["at"])
        if to_amount <= total:
            return Reservation(job.id, total, reserved_at, limits.resets_at, limits.remaining, already_reserved=True)
        increase = to_amount - total
        refusal = limits.refusal_for(increase, new_job=False)
        if refusal is not None:
            return refusal
        period = parse_ts(reserve["period_at"])
        hold = ledger.Hold(
            LedgerKind.TOPUP, job.id, reserve["guild_id"], reserve["user_id"], reserve["mode"], increase, period
        )
        await ledger.hold(conn, hold, now=now, totals_key=loaded.totals_key)
        await conn.execute(queries.RECORD_TOP_UP, (to_amount, now, job.id))
        return Reservation(job.id, to_amount, reserved_at, limits.resets_at, max(0, limits.remaining - increase))

    # Managers' and the operator's corrections

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
        """Add `amount` credits to a member's allowance for the current window only; return the entry.

        A grant raises what the member may use; it does not raise the server pool or bot budget.
        In a server with an operator ceiling, a grant that would take the member's allowance plus
        grants above it raises `AboveCeiling` (requested: the total it would reach). A negative
        amount takes credits back, but never more than the member's allowance plus grants: it is
        clamped to what can be taken, the entry shows what was actually taken, and None means
        there was nothing left to take (nothing written). The allowance is resolved with
        `role_ids`, so pass the member's roles. Raises `ValueError` for 0, `OutOfBounds` past
        the bounds a grant may have.
        """
        if amount == 0:
            raise ValueError("a grant of 0 credits changes nothing")
        bounds.GRANT.check(amount)
        member = Member(guild_id, user_id, role_ids)

        async def body(conn: Connection) -> LedgerEntry | None:
            await self._reader.lock(conn, guild_id, budget=False)  # a grant never touches the budget
            now = self._clock.now()
            limits = (await self._reader.load(conn, member, now)).limits
            taken = self._grantable(guild_id, amount, limits.allowance + limits.granted)
            if taken == 0:
                return None
            return await _write_row(conn, LedgerKind.GRANT, member, taken, at=now, by_user_id=by_user_id, note=note)

        return await self._db.write(body)

    def _grantable(self, guild_id: int | None, amount: int, base: int) -> int:
        """What a grant of `amount` on top of `base` (allowance plus grants) may really add or take."""
        if amount < 0:
            return -min(-amount, max(0, base))
        ceiling = self._policy.server_credits_ceiling
        if guild_id is not None and ceiling is not None and base + amount > ceiling:
            raise AboveCeiling(ceiling, base + amount)
        bounds.GRANT_TOTAL.check(base + amount)  # keeps every window's sums far from overflowing
        return amount

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
        """Correct usage by hand: `+n` gives credits back, `-n` counts `n` more as used; return the entry.

        Unlike a grant this counts against (or for) the server pool and bot budget too. Counts in
        the current window. A job whose outcome at Magic Hour was unknown is corrected with
        `reconcile`, not here. Raises `ValueError` for 0, `OutOfBounds` past the credit bounds.
        """
        if amount == 0:
            raise ValueError("an adjustment of 0 credits changes nothing")
        bounds.CREDITS.check(abs(amount))
        member = Member(guild_id, user_id)

        async def body(conn: Connection) -> LedgerEntry:
            await conn.lock(shared=[LEDGER_LOCK])  # the totals must not interleave with their recount
            job = None if job_id is None else await load_job(conn, job_id)
            now = self._clock.now()
            return await _write_row(
                conn, LedgerKind.ADJUST, member, amount, at=now, job=job, by_user_id=by_user_id, note=note
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
        that window's real spend was lower, not this one's budget higher.

        Returns the `Reconciliation` (counted, charged, the row written). Raises `ValueError` for
        a negative charge, `JobNotFound`, `NotReconcilable` for any other job, `OutOfBounds` for a
        charge no job can cost, and `AlreadyReconciled` on a second call, which changes nothing;
        the unique index `ledger_one_reconcile` backs that up.
        """
        if charged < 0:
            raise ValueError("charged credits cannot be negative")
        bounds.JOB_CHARGE.check(charged)
        if not bounds.JOB_ID.contains(job_id):
            raise JobNotFound(job_id)

        async def body(conn: Connection) -> Reconciliation:
            row = await fetch_one(conn, queries.JOB_GUILD, (job_id,))
            if row is None:
                raise JobNotFound(job_id)
            await self._reader.lock(conn, row[0])  # a job's server never changes: its limits, then the job
            now = self._clock.now()
            job = await self._unknown_job(conn, job_id)
            counted = await ledger.net_charge(conn, job_id)
            reserve = await ledger.reservation_row(conn, job_id)
            entry = await _write_row(
                conn,
                LedgerKind.RECONCILE,
                Member(job.guild_id, job.user_id),
                counted - charged,
                at=now,
                period_at=parse_ts(reserve["period_at"]) if reserve is not None else job.created_at,
                job=job,
                charged=charged,
                by_user_id=by_user_id,
            )
            data = error_data_text({**(job.error_data or {}), "reconciled_charge": charged})
            await write_fields(conn, job_id, {"charged_credits": charged, "error_data": data}, now)
            return Reconciliation(job_id=job_id, counted=counted, charged=charged, entry=entry)

        return await self._db.write(body)

    @staticmethod
    async def _unknown_job(conn: Connection, job_id: int) -> JobRecord:
        """The job, locked, if it failed unknown at Magic Hour and was not reconciled yet."""
        job = await load_job(conn, job_id, for_update=True)
        if job.state is not JobState.FAILED or job.error_code != UNKNOWN_AT_MAGIC_HOUR:
            raise NotReconcilable(job_id, job.state.value, job.error_code)
        done = await ledger.reconcile_row(conn, job_id)
        if done is not None:
            raise AlreadyReconciled(job_id, int(done["charged"]))
        return job

    # Reading

    async def entries(self, job_id: int) -> list[LedgerEntry]:
        """Every ledger row of one job, oldest first."""
        rows = await self._db.read(lambda conn: fetch_all(conn, queries.JOB_ENTRIES, (job_id,)))
        return [ledger.entry(r) for r in rows]

    async def member_entries(
        self, guild_id: int | None, user_id: int, since: dt.datetime | None = None
    ) -> list[LedgerEntry]:
        """A member's own ledger rows in one server counted at or after `since`, oldest first.

        Rows kept under a deleted member's token are not theirs any more and are not listed.
        """
        sql = queries.MEMBER_ENTRIES.format(since="" if since is None else queries.MEMBER_ENTRIES_SINCE)
        params = (guild_id, user_id, *([] if since is None else [since]))
        rows = await self._db.read(lambda conn: fetch_all(conn, sql, params))
        return [ledger.entry(r) for r in rows]

    async def usage(
        self, guild_id: int | None, since: dt.datetime | None = None, until: dt.datetime | None = None
    ) -> UsageReport:
        """A server's usage over `[since, until)` (default: the current window), by member and by mode.

        Counted from the ledger, not from jobs (`bot.store.usage`). `uncertain` lists the period's
        jobs whose create outcome is unknown at Magic Hour. `guild_id=None` reports command-line jobs.
        """
        start, end = self.window()
        since_at, until_at = since or start, until or end
        return await self._db.read(lambda conn: usage_report(conn, guild_id, since_at, until_at))
