"""Property-based tests: random histories against a plain-Python model of the ledger.

A hypothesis state machine drives the store through random interleavings of reservations,
top-ups, transitions that settle or refund (a completed render with a charge, failures, cancels
with and without a charge, creates whose outcome is unknown), the operator's reconciliations of
those with Magic Hour's real charge (and repeats, refused), grants either way, adjustments,
member limits, deletions of members' data and window roll-overs on a fake clock, for several
members with different roles in two servers (one with a pool, one capped only by the operator's
ceiling) and on the command line, under a bot budget. The model is a list of ledger rows kept in
plain Python; after every step the store must agree with it:

- every reservation and top-up is granted exactly when the model says every limit can cover it,
  and refused naming the limit and numbers the model names, so none ever pushes an `available`
  below 0 (a settle above what was held may: it mirrors Magic Hour);
- each job is closed at most once, and its ledger rows add up to the Magic Hour charge the test
  passed in (0 when refunded, what was held when the outcome is unknown, until the operator
  reconciles it to the charge the test passes then);
- every member's `EffectiveLimits` matches the model, and `check_invariants()` is empty;
- the running totals (every member's, both servers' and the bot's, in every window the model
  has rows in) equal the model's sums, read from the totals table itself.

The same machine runs on one `Store` and on two `Store`s opened on one database (each step through
either), on SQLite and on PostgreSQL (a fresh database of the session's server per example).
Settings come from a profile: `store-ci` (derandomized, modest) when `CI` is set, `store-dev`
otherwise; `STORE_HYPOTHESIS_PROFILE=store-thorough` runs many more examples.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import (
    UNKNOWN_AT_MAGIC_HOUR,
    AboveCeiling,
    AlreadyReconciled,
    JobState,
    LedgerKind,
    LimitKind,
    MemberHasActiveJobs,
    NewJob,
    NoReservation,
    QuotaPolicy,
    Refusal,
    Reservation,
    Store,
)
from bot.store.db import parse_ts
from bot.store.forget import member_token
from tests.store.pgserver import TempPostgres, create_database, drop_database

from .conftest import raw_read

T = TypeVar("T")
S = JobState

_COMMON = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
settings.register_profile("store-ci", _COMMON, max_examples=12, stateful_step_count=25, derandomize=True, database=None)
settings.register_profile("store-dev", _COMMON, max_examples=12, stateful_step_count=25)
settings.register_profile("store-thorough", _COMMON, max_examples=400, stateful_step_count=60)
PROFILE = os.environ.get("STORE_HYPOTHESIS_PROFILE") or ("store-ci" if os.environ.get("CI") else "store-dev")

G1, G2 = 1111, 2222
START = dt.datetime(2026, 3, 10, 21, 0, tzinfo=dt.UTC)  # three hours before a reset
GLOBAL_DEFAULT = 100
CEILING = 250
BUDGET = 450
POOL = {G1: 200}  # G2 has no pool of its own: the ceiling caps it
MAX_ACTIVE = {G2: 1}  # G2 overrides the bot's 2
ROLE_LIMITS = {(G1, 10): 150, (G1, 11): 60, (G2, 10): 80}
ROLES = {1: (10,), 2: (11,), 3: ()}
MEMBERS: list[tuple[int | None, int]] = [(G1, 1), (G1, 2), (G1, 3), (G2, 1), (G2, 3), (None, 1)]
POLICY = QuotaPolicy(
    default_member_credits=GLOBAL_DEFAULT,
    bot_budget_credits=BUDGET,
    max_active_jobs_per_member=2,
    server_credits_ceiling=CEILING,
)
LIVE = [s for s in JobState if not s.terminal]


@dataclass
class Row:
    """One ledger row as the model sees it."""

    kind: LedgerKind
    guild: int | None
    member: tuple[int | None, int] | None  # None once anonymised
    amount: int
    window: int  # the day the row counts in
    job: int | None = None
    token: bool = False  # kept under a deleted member's token


@dataclass
class Job:
    """One job as the model sees it."""

    id: int
    guild: int | None
    user: int
    state: JobState = JobState.RECEIVED
    window: int | None = None  # the reservation's window
    created: int = 0  # the window the job was made in
    held: int = 0
    closed: LedgerKind | None = None
    charge: int = 0  # what Magic Hour charged, as the test told the store
    forgotten: bool = False
    unknown: bool = False  # failed with its outcome at Magic Hour unknown
    reconciled: bool = False  # the operator has since recorded what Magic Hour charged

    @property
    def counts_in(self) -> int:
        """The window whose spend this job is: its reservation's, else the one it was made in."""
        return self.window if self.window is not None else self.created

    @property
    def spent(self) -> int:
        """What this job really costs, from the job's side alone (no ledger rows).

        Magic Hour's charge once known (settled, or reconciled by the operator); what it holds
        while open, or while its outcome is unknown and not yet reconciled; nothing once refunded.
        """
        if self.reconciled or self.closed is LedgerKind.SETTLE:
            return self.charge
        if self.closed is LedgerKind.REFUND:
            return 0
        return self.held if self.window is not None else 0


@dataclass
class Model:
    """The ledger in plain Python, and the rules the store must follow."""

    rows: list[Row] = field(default_factory=list)
    jobs: dict[int, Job] = field(default_factory=dict)
    member_limits: dict[tuple[int, int], int] = field(default_factory=dict)
    # Windows where Magic Hour charged more than was set aside (a settle above what a job held, a
    # reconciliation above what it counted) or the operator counted more by hand: the ledger
    # mirrors those, so only there may real spend pass a limit.
    overcharged: set[int] = field(default_factory=set)

    def allowance(self, guild: int | None, user: int) -> tuple[int, LimitKind]:
        if guild is not None:
            if (guild, user) in self.member_limits:
                return self.member_limits[(guild, user)], LimitKind.MEMBER
            roles = [ROLE_LIMITS[(guild, r)] for r in ROLES[user] if (guild, r) in ROLE_LIMITS]
            if roles:
                return max(roles), LimitKind.ROLE
        return GLOBAL_DEFAULT, LimitKind.GLOBAL_DEFAULT

    def used(self, rows: list[Row]) -> int:
        return -sum(r.amount for r in rows if r.kind is not LedgerKind.GRANT)

    def member_rows(self, guild: int | None, user: int, window: int) -> list[Row]:
        return [r for r in self.rows if r.member == (guild, user) and r.window == window]

    def availables(self, guild: int | None, user: int, window: int) -> dict[str, Any]:
        allowance, kind = self.allowance(guild, user)
        mine = self.member_rows(guild, user, window)
        granted = sum(r.amount for r in mine if r.kind is LedgerKind.GRANT)
        used = self.used(mine)
        pool_limit = None if guild is None else min(POOL.get(guild, CEILING), CEILING)
        pool = None
        if pool_limit is not None:
            pool = pool_limit - self.used([r for r in self.rows if r.guild == guild and r.window == window])
        budget = BUDGET - self.used([r for r in self.rows if r.window == window])
        return {
            "allowance": allowance,
            "limit_kind": kind,
            "granted": granted,
            "used": used,
            # Allowance plus grants stop at the operator's ceiling, whatever managers set in between.
            "member_available": (allowance + granted if guild is None else min(allowance + granted, CEILING)) - used,
            "pool_limit": pool_limit,
            "pool_available": pool,
            "budget_available": budget,
        }

    def active(self, guild: int | None, user: int) -> int:
        return sum(
            1
            for j in self.jobs.values()
            if (j.guild, j.user) == (guild, user) and not j.forgotten and not j.state.terminal and j.window is not None
        )

    def expected(self, guild: int | None, user: int, window: int, amount: int, *, new_job: bool) -> Refusal | None:
        """The refusal the store must give, written out independently of `refusal_for`."""
        max_active = MAX_ACTIVE.get(guild, 2) if guild is not None else 2
        if new_job and self.active(guild, user) >= max_active:
            return Refusal(LimitKind.ACTIVE_JOBS, 0, 1, None, max_active=max_active)
        a = self.availables(guild, user, window)
        limits = [(a["limit_kind"], a["member_available"])]
        if a["pool_available"] is not None:
            limits.append((LimitKind.SERVER_POOL, a["pool_available"]))
        limits.append((LimitKind.BOT_BUDGET, a["budget_available"]))
        worst: tuple[LimitKind, int] | None = None
        for limit in limits:
            if amount > limit[1] and (worst is None or limit[1] < worst[1]):
                worst = limit
        if worst is None:
            return None
        return Refusal(worst[0], max(0, worst[1]), amount, reset_after(window))

    def sweep(self, window: int) -> int:
        changed = 0
        for row in list(self.rows):
            if row.token and row.window < window:
                changed += 1
                if row.kind is LedgerKind.GRANT:
                    self.rows.remove(row)
                else:
                    row.member, row.token = None, False
        return changed


def day(moment: dt.datetime) -> int:
    return moment.date().toordinal()


def reset_after(window: int) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromordinal(window + 1), dt.time(0), tzinfo=dt.UTC)


# The session's PostgreSQL server, handed over by `_postgres_for_machines` for the PostgreSQL cases.
_SERVER: list[TempPostgres] = []


@pytest.fixture(autouse=True)
def _postgres_for_machines(request: pytest.FixtureRequest) -> None:
    if getattr(request.cls, "backend", None) == "postgresql" and not _SERVER:
        _SERVER.append(request.getfixturevalue("postgres_server"))


class LedgerMachine(RuleBasedStateMachine):
    """Random store histories, checked against `Model` after every step."""

    stores_count = 1
    backend = "sqlite"

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="store-properties-"))
        self.clock = FakeClock(START)
        self.target: Path | str = self.folder / "store.sqlite3"
        if self.backend == "postgresql":
            self.target = self.run(create_database(_SERVER[0]))
        self.stores = [
            self.run(Store.open(self.target, clock=self.clock, policy=POLICY)) for _ in range(self.stores_count)
        ]
        self.model = Model()
        self.run(self.stores[0].limits.set_server_pool(G1, POOL[G1]))
        for (guild, role), credits in ROLE_LIMITS.items():
            self.run(self.stores[0].limits.set_role_limit(guild, role, credits))
        self.run(self.stores[0].limits.set_max_active_jobs(G2, MAX_ACTIVE[G2]))

    def teardown(self) -> None:
        try:
            for store in self.stores:
                self.run(store.close())
            if isinstance(self.target, str):
                self.run(drop_database(_SERVER[0], self.target))
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def store(self, via: int) -> Store:
        return self.stores[via % len(self.stores)]

    @property
    def window(self) -> int:
        return day(self.clock.now())

    def jobs_in(self, states: Sequence[JobState], *, reserved: bool | None = None) -> list[Job]:
        return [
            j
            for j in self.model.jobs.values()
            if not j.forgotten and j.state in states and (reserved is None or (j.window is not None) == reserved)
        ]

    def move(self, job: Job, via: int, *states: JobState) -> None:
        for state in states:
            self.run(self.store(via).jobs.transition(job.id, state))
            job.state = state

    def close(self, job: Job, kind: LedgerKind, charge: int) -> None:
        assert job.window is not None and job.closed is None
        amount = job.held - charge if kind is LedgerKind.SETTLE else job.held
        if amount < 0:
            self.model.overcharged.add(job.window)
        self.model.rows.append(Row(kind, job.guild, (job.guild, job.user), amount, job.window, job.id))
        job.closed, job.charge = kind, charge if kind is LedgerKind.SETTLE else 0

    # Rules

    @initialize(
        requests=st.lists(st.tuples(st.sampled_from(MEMBERS), st.integers(1, 70)), min_size=3, max_size=8),
        via=st.integers(0, 1),
    )
    def busy_server(self, requests: list[tuple[tuple[int | None, int], int]], via: int) -> None:
        """Every history starts with a few requests, so even the simplest one has credits in play."""
        for member, amount in requests:
            self.request(member, amount, via)

    @rule(member=st.sampled_from(MEMBERS), amount=st.integers(1, 70), via=st.integers(0, 1))
    def request(self, member: tuple[int | None, int], amount: int, via: int) -> None:
        """A member asks for a job: it is recorded, then reserves (as the engine does)."""
        guild, user = member
        record = self.run(self.store(via).jobs.create(NewJob(user_id=user, guild_id=guild, mode=GenerationMode.LITE)))
        job = self.model.jobs[record.id] = Job(record.id, guild, user, created=self.window)
        self.reserve_for(job, amount, via)

    @precondition(lambda self: self.jobs_in([S.RECEIVED], reserved=False))
    @rule(data=st.data(), amount=st.integers(1, 70), via=st.integers(0, 1))
    def reserve_again(self, data: st.DataObject, amount: int, via: int) -> None:
        """A job that was refused (or never reserved) tries again."""
        self.reserve_for(data.draw(st.sampled_from(self.jobs_in([S.RECEIVED], reserved=False))), amount, via)

    def reserve_for(self, job: Job, amount: int, via: int) -> None:
        expected = self.model.expected(job.guild, job.user, self.window, amount, new_job=True)
        result = self.run(
            self.store(via).quota.reserve(
                job.id, guild_id=job.guild, user_id=job.user, role_ids=list(ROLES[job.user]), amount=amount
            )
        )
        if expected is not None:
            assert result == expected, (result, expected)
            event(f"reserve refused: {expected.limit.value}")
            return
        event("reserve granted")
        assert isinstance(result, Reservation) and result.amount == amount, result
        job.window, job.held = self.window, amount
        self.model.rows.append(Row(LedgerKind.RESERVE, job.guild, (job.guild, job.user), -amount, self.window, job.id))
        self.assert_nothing_overdrawn(job)
        self.move(job, via, S.UPLOADING, S.CREATING)

    @precondition(lambda self: self.jobs_in([S.CREATING], reserved=True))
    @rule(data=st.data(), extra=st.integers(-20, 100), via=st.integers(0, 1))
    def top_up(self, data: st.DataObject, extra: int, via: int) -> None:
        job = data.draw(st.sampled_from(self.jobs_in([S.CREATING], reserved=True)))
        assert job.window is not None
        to = max(0, job.held + extra)
        result = self.run(self.store(via).quota.top_up(job.id, to))
        if to <= job.held:
            assert isinstance(result, Reservation) and result.already_reserved and result.amount == job.held
            return
        expected = self.model.expected(job.guild, job.user, job.window, to - job.held, new_job=False)
        if expected is not None:
            assert result == expected, (result, expected)
            event(f"top-up refused: {expected.limit.value}")
            return
        event("top-up granted" + (" in an ended window" if job.window != self.window else ""))
        assert isinstance(result, Reservation) and (result.amount, result.already_reserved) == (to, False)
        self.model.rows.append(
            Row(LedgerKind.TOPUP, job.guild, (job.guild, job.user), job.held - to, job.window, job.id)
        )
        job.held = to
        self.assert_nothing_overdrawn(job)

    @precondition(lambda self: self.jobs_in([S.CREATING, S.SUBMITTED, S.DOWNLOADING, S.DELIVERING], reserved=True))
    @rule(
        data=st.data(),
        charge=st.integers(0, 150),
        done_charge=st.one_of(st.none(), st.integers(0, 150)),
        via=st.integers(0, 1),
    )
    def advance(self, data: st.DataObject, charge: int, done_charge: int | None, via: int) -> None:
        """A job moves one step on: created, rendered (settled to `charge`), delivering, done."""
        job = data.draw(
            st.sampled_from(self.jobs_in([S.CREATING, S.SUBMITTED, S.DOWNLOADING, S.DELIVERING], reserved=True))
        )
        store = self.store(via)
        if job.state is S.CREATING:
            self.move(job, via, S.SUBMITTED)
        elif job.state is S.SUBMITTED:
            record = self.run(store.jobs.transition(job.id, S.DOWNLOADING, charged=charge))
            job.state = S.DOWNLOADING
            self.close(job, LedgerKind.SETTLE, charge)
            assert record.charged_credits == charge
            event("settled above what was held" if charge > job.held else "settled")
        elif job.state is S.DOWNLOADING:
            self.move(job, via, S.DELIVERING)
        else:
            record = self.run(store.jobs.transition(job.id, S.DONE, charged=done_charge))  # already settled
            job.state = S.DONE
            assert record.charged_credits == job.charge

    @precondition(lambda self: self.jobs_in(LIVE))
    @rule(
        data=st.data(),
        to=st.sampled_from([S.FAILED, S.CANCELED]),
        how=st.sampled_from(["plain", "charged", "unknown"]),
        charge=st.integers(0, 200),
        via=st.integers(0, 1),
    )
    def end(self, data: st.DataObject, to: JobState, how: str, charge: int, via: int) -> None:
        job = data.draw(st.sampled_from(self.jobs_in(LIVE)))
        store = self.store(via)
        if how == "charged" and job.window is None:
            try:
                self.run(store.jobs.transition(job.id, to, charged=charge))
            except NoReservation:
                return  # a charge with nothing to settle is refused, and nothing changed
            raise AssertionError("a charge for a job that never reserved was accepted")
        fields: dict[str, Any] = {}
        given = charge if how == "charged" else None
        if how == "unknown" and to is S.FAILED:
            fields["error_code"] = UNKNOWN_AT_MAGIC_HOUR
            if job.window is not None:
                given = job.held  # the engine counts what the job held (the store guesses no charge)
        record = self.run(store.jobs.transition(job.id, to, charged=given, **fields))
        job.state, job.unknown = to, bool(fields)
        if job.window is not None and job.closed is None:
            if how == "charged":
                self.close(job, LedgerKind.SETTLE, charge)
            elif fields:
                self.close(job, LedgerKind.SETTLE, job.held)
            else:
                self.close(job, LedgerKind.REFUND, 0)
        expected_charged = job.charge if job.closed is LedgerKind.SETTLE else None
        assert record.charged_credits == expected_charged

    @precondition(lambda self: self.unknown_jobs())
    @rule(data=st.data(), charge=st.integers(0, 200), via=st.integers(0, 1))
    def reconcile(self, data: st.DataObject, charge: int, via: int) -> None:
        """The operator records what Magic Hour charged for a job whose outcome was unknown: once."""
        job = data.draw(st.sampled_from(self.unknown_jobs()))
        store = self.store(via)
        if job.reconciled:
            with pytest.raises(AlreadyReconciled) as refused:
                self.run(store.quota.reconcile(job.id, charge))
            assert refused.value.charged == job.charge
            event("reconcile refused: already reconciled")
            return
        counted = -sum(r.amount for r in self.model.rows if r.job == job.id)
        done = self.run(store.quota.reconcile(job.id, charge))
        assert (done.counted, done.charged, done.entry.amount) == (counted, charge, counted - charge)
        # It counts in the job's own window, whenever it is written (`test_budgets_hold_in_real_spend`).
        self.model.rows.append(
            Row(LedgerKind.RECONCILE, job.guild, (job.guild, job.user), counted - charge, job.counts_in, job.id)
        )
        job.charge, job.reconciled = charge, True
        if charge > counted:
            self.model.overcharged.add(job.counts_in)
        event("reconciled" + (" without a reservation" if job.window is None else ""))

    def unknown_jobs(self) -> list[Job]:
        return [j for j in self.model.jobs.values() if j.unknown and not j.forgotten]

    @rule(member=st.sampled_from(MEMBERS), amount=st.integers(-200, 200).filter(bool), via=st.integers(0, 1))
    def grant(self, member: tuple[int | None, int], amount: int, via: int) -> None:
        guild, user = member
        a = self.model.availables(guild, user, self.window)
        base = a["allowance"] + a["granted"]
        store = self.store(via)
        if amount > 0 and guild is not None and base + amount > CEILING:
            try:
                self.run(store.quota.grant(guild, user, amount, role_ids=ROLES[user]))
            except AboveCeiling as exc:
                assert (exc.ceiling, exc.requested) == (CEILING, base + amount)
                return
            raise AssertionError("a grant above the ceiling was accepted")
        entry = self.run(store.quota.grant(guild, user, amount, by_user_id=99, role_ids=ROLES[user]))
        taken = amount if amount > 0 else -min(-amount, max(0, base))
        if taken == 0:
            assert entry is None
            return
        assert entry is not None and entry.amount == taken
        self.model.rows.append(Row(LedgerKind.GRANT, guild, member, taken, self.window))
        assert taken > 0 or base + taken >= 0  # taking back never goes below an allowance of 0

    @rule(member=st.sampled_from(MEMBERS), amount=st.integers(-60, 60).filter(bool), via=st.integers(0, 1))
    def adjust(self, member: tuple[int | None, int], amount: int, via: int) -> None:
        guild, user = member
        self.run(self.store(via).quota.adjust(guild, user, amount, by_user_id=99))
        self.model.rows.append(Row(LedgerKind.ADJUST, guild, member, amount, self.window))
        if amount < 0:
            self.model.overcharged.add(self.window)

    @rule(member=st.sampled_from([m for m in MEMBERS if m[0] is not None]), credits=st.integers(0, 400))
    def set_member_limit(self, member: tuple[int, int], credits: int) -> None:
        guild, user = member
        if credits > CEILING:
            try:
                self.run(self.stores[0].limits.set_member_limit(guild, user, credits))
            except AboveCeiling:
                return
            raise AssertionError("a member limit above the ceiling was accepted")
        self.run(self.stores[0].limits.set_member_limit(guild, user, credits))
        self.model.member_limits[member] = credits

    @rule(member=st.sampled_from(MEMBERS), everywhere=st.booleans(), via=st.integers(0, 1))
    def forget(self, member: tuple[int | None, int], everywhere: bool, via: int) -> None:
        guild, user = member
        everywhere = everywhere or guild is None  # the API's None means every server and the command line
        scope = None if everywhere else guild

        def in_scope(g: int | None, u: int) -> bool:
            return u == user and (everywhere or g == guild)

        running = sorted(
            j.id
            for j in self.model.jobs.values()
            if in_scope(j.guild, j.user) and not j.forgotten and not j.state.terminal
        )
        store = self.store(via)
        if running:
            try:
                self.run(store.delete_member_data(scope, user))
            except MemberHasActiveJobs as exc:
                assert list(exc.job_ids) == running
                event("forget refused: running jobs")
                return
            raise AssertionError("a member with running jobs was deleted")
        report = self.run(store.delete_member_data(scope, user))
        event("forget kept usage" if any(r.member and in_scope(*r.member) for r in self.model.rows) else "forget")
        self.model.sweep(self.window)
        anonymised = kept = grants = 0
        for row in list(self.model.rows):
            if row.token or row.member is None or not in_scope(*row.member):
                continue
            if row.window == self.window:
                row.token, row.job = True, None
                kept += 1
            elif row.kind is LedgerKind.GRANT:
                self.model.rows.remove(row)
                grants += 1
            else:
                row.member, row.job = None, None
                anonymised += 1
        deleted = [j for j in self.model.jobs.values() if in_scope(j.guild, j.user) and not j.forgotten]
        for job in deleted:
            job.forgotten = True
        limits_kept = sum(1 for (g, u) in self.model.member_limits if in_scope(g, u))
        assert (report.jobs_deleted, report.ledger_rows_kept) == (len(deleted), kept), report
        assert (report.ledger_rows_anonymised, report.grants_deleted, report.limits_kept) == (
            anonymised,
            grants,
            limits_kept,
        ), report
        assert report.usage_kept_until == (reset_after(self.window) if kept else None)

    @rule(minutes=st.integers(30, 36 * 60), via=st.integers(0, 1))
    def time_passes(self, minutes: int, via: int) -> None:
        self.run(self.clock.advance(minutes * 60))
        swept = self.run(self.store(via).sweep_forgotten())
        assert swept == self.model.sweep(self.window)
        if swept:
            event("swept a deleted member's tokens")

    # Invariants

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        store = self.stores[-1]
        assert self.run(store.check_invariants()) == []
        for guild, user in MEMBERS:
            limits = self.run(store.quota.limits(guild, user, ROLES[user]))
            want = self.model.availables(guild, user, self.window)
            got = {name: getattr(limits, name) for name in want}
            assert got == want, (guild, user, got, want)
            assert limits.active_jobs == self.model.active(guild, user)
            assert limits.reserved == sum(
                j.held
                for j in self.model.jobs.values()
                if (j.guild, j.user) == (guild, user)
                and j.window == self.window
                and j.closed is None
                and not j.forgotten
            )
        self.check_job_ledgers(store)

    @invariant()
    def running_totals_agree_with_the_model(self) -> None:
        store = self.stores[-1]
        rows = self.run(raw_read(store, "SELECT scope, window_start, used, granted, reserved FROM ledger_totals"))
        kept: dict[tuple[str, int], tuple[int, int, int]] = {}
        for scope, start, used, granted, reserved in rows:
            kept[(str(scope), day(parse_ts(start)))] = (int(used), int(granted), int(reserved))

        def total(scope: str, window: int) -> tuple[int, int, int]:
            return kept.get((scope, window), (0, 0, 0))

        for window in {r.window for r in self.model.rows}:
            in_window = [r for r in self.model.rows if r.window == window]
            assert total("bot", window)[0] == self.model.used(in_window), window
            for pool_of in (G1, G2):
                want = self.model.used([r for r in in_window if r.guild == pool_of])
                assert total(f"guild:{pool_of}", window)[0] == want, (pool_of, window)
            for guild, user in MEMBERS:
                scope = "-" if guild is None else str(guild)
                token = member_token(store._secret, guild, user)
                mine, theirs = total(f"member:{scope}:{user}", window), total(f"member:{scope}:{token}", window)
                got = tuple(a + b for a, b in zip(mine, theirs, strict=True))
                member_rows = self.model.member_rows(guild, user, window)
                held = sum(
                    j.held
                    for j in self.model.jobs.values()
                    if (j.guild, j.user) == (guild, user) and j.window == window and j.closed is None
                )
                granted = sum(r.amount for r in member_rows if r.kind is LedgerKind.GRANT)
                assert got == (self.model.used(member_rows), granted, held), (guild, user, window, got)

    def check_job_ledgers(self, store: Store) -> None:
        async def read() -> tuple[dict[int, list[tuple[str, int]]], dict[int, str]]:
            rows = await raw_read(store, "SELECT job_id, kind, amount FROM ledger WHERE job_id IS NOT NULL ORDER BY id")
            out: dict[int, list[tuple[str, int]]] = {}
            for job_id, kind, amount in rows:
                out.setdefault(int(job_id), []).append((str(kind), int(amount)))
            states = {int(r[0]): str(r[1]) for r in await raw_read(store, "SELECT id, state FROM jobs")}
            return out, states

        ledger, states = self.run(read())
        for job in self.model.jobs.values():
            rows = ledger.get(job.id, [])
            assert states.get(job.id) == (None if job.forgotten else job.state.value), job
            if job.forgotten or (job.window is None and not job.reconciled):
                assert rows == [], (job, rows)
                continue
            closes = [kind for kind, _ in rows if kind in ("settle", "refund")]
            assert len(closes) == (0 if job.closed is None else 1), (job, rows)
            assert sum(1 for kind, _ in rows if kind == "reconcile") == job.reconciled, (job, rows)
            total = -sum(amount for _, amount in rows)
            # Open: what is held. Closed or reconciled: exactly what Magic Hour charged (0 for a refund).
            assert total == (job.held if job.closed is None and not job.reconciled else job.charge), (job, rows)

    def assert_nothing_overdrawn(self, job: Job) -> None:
        """Right after a reservation or top-up, no limit of its window is below zero.

        Counted twice: from the model's ledger rows, and from the jobs' real spend alone (what
        each job of the window really cost, reconciliations included), so a rule that moved spend
        to another window, or let anything give it back, fails here even if the rows agreed.
        """
        assert job.window is not None
        a = self.model.availables(job.guild, job.user, job.window)
        for name in ("member_available", "pool_available", "budget_available"):
            assert a[name] is None or a[name] >= 0, (name, a)
        assert self.real_spend(job.window) <= BUDGET
        if job.guild is not None:
            assert self.real_spend(job.window, job.guild) <= min(POOL.get(job.guild, CEILING), CEILING)

    def real_spend(self, window: int, guild: int | Literal["all"] | None = "all") -> int:
        """A window's spend from the jobs' side: each job's real cost in its window, plus adjustments."""
        jobs = sum(
            j.spent for j in self.model.jobs.values() if j.counts_in == window and (guild == "all" or j.guild == guild)
        )
        adjusted = -sum(
            r.amount
            for r in self.model.rows
            if r.kind is LedgerKind.ADJUST and r.window == window and (guild == "all" or r.guild == guild)
        )
        return jobs + adjusted

    @invariant()
    def budgets_hold_in_real_spend(self) -> None:
        """What the store says the budget and each pool have left is the limit less real spend.

        Real spend is counted from the jobs alone: settles above what was held and reconciliations
        count in their job's window; grants, limits and deleted members' data change nothing.
        """
        store = self.stores[-1]
        limits = self.run(store.quota.limits(G1, 1, ROLES[1]))
        assert limits.budget_available == BUDGET - self.real_spend(self.window)
        assert limits.pool_available == min(POOL[G1], CEILING) - self.real_spend(self.window, G1)
        g2 = self.run(store.quota.limits(G2, 1, ROLES[1]))
        assert g2.pool_available == CEILING - self.real_spend(self.window, G2)

    @invariant()
    def no_window_spends_past_its_budget(self) -> None:
        """Every window's real spend, counted from its jobs, is within the budget and each pool.

        Past windows too: a reconciliation written days later counts in its job's window, so
        credits it gives back never become spendable again in another. Jobs whose outcome is
        unknown count what they hold until reconciled. Only where Magic Hour charged more than was
        set aside (the ledger mirrors it) may a window pass a limit.
        """
        windows = {j.counts_in for j in self.model.jobs.values()} | {r.window for r in self.model.rows}
        for window in windows - self.model.overcharged:
            assert self.real_spend(window) <= BUDGET, window
            for guild in (G1, G2):
                assert self.real_spend(window, guild) <= min(POOL.get(guild, CEILING), CEILING), (window, guild)


class TwoStoresMachine(LedgerMachine):
    """The same histories with each step going through one of two `Store`s on one database."""

    stores_count = 2


class PostgresMachine(LedgerMachine):
    """The histories on PostgreSQL."""

    backend = "postgresql"


class PostgresTwoStoresMachine(LedgerMachine):
    """Two `Store`s (two connection pools, as two processes would have) on one PostgreSQL database."""

    stores_count = 2
    backend = "postgresql"


TestOneStore = LedgerMachine.TestCase
TestOneStore.settings = settings.get_profile(PROFILE)
TestTwoStores = TwoStoresMachine.TestCase
TestTwoStores.settings = settings.get_profile(PROFILE)
TestOneStorePostgres = PostgresMachine.TestCase
TestOneStorePostgres.settings = settings.get_profile(PROFILE)
TestOneStorePostgres.backend = "postgresql"  # type: ignore[attr-defined]
TestTwoStoresPostgres = PostgresTwoStoresMachine.TestCase
TestTwoStoresPostgres.settings = settings.get_profile(PROFILE)
TestTwoStoresPostgres.backend = "postgresql"  # type: ignore[attr-defined]
