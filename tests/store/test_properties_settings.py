"""Property-based test: no sequence of manager settings widens the operator's.

A hypothesis state machine plays a server's managers against an operator: managers set modes,
the longest clip, jobs at a time, the server's default and pool, member and role limits, and
grants, with numbers drawn from far outside every bound as well as inside; between their steps the
operator changes their own settings (the bot restarts with a narrower or wider policy). After
every step, what applies in the server (the rules `/lipsync` checks, and each member's
`EffectiveLimits`) is within the operator's settings, within what the managers chose, and every
stored number within its `bot.bounds` bound. A refused setting changes nothing.

Settings come from the same profiles as `test_properties.py` (`store-ci` when `CI` is set).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, TypeVar

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from bot import bounds
from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.jobs.admission import rules_for
from bot.jobs.models import GuildRules
from bot.store import AboveCeiling, GuildSettings, LimitKind, QuotaPolicy, Store

from .test_properties import PROFILE

T = TypeVar("T")
GUILD = 1111
ROLE = 7
# Member 1 has a limit of their own (once a manager sets one), member 2 the role, member 3 neither.
MEMBERS = {1: (), 2: (ROLE,), 3: ()}
START = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
REFUSALS = (InvalidInput, AboveCeiling, ValueError)  # `OutOfBounds` is both of the first and last

modes = st.lists(st.sampled_from(list(GenerationMode)), min_size=1, max_size=3, unique=True).map(tuple)
# Credits anywhere: negative, small, around the operator's ceiling, and beyond what can be stored.
credits = st.one_of(
    st.integers(-5, 600),
    st.sampled_from([bounds.MAX_CREDITS, bounds.MAX_CREDITS + 1, 2**63, -(2**63)]),
)
seconds = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0.0, 3 * bounds.MAX_CLIP_SECONDS),
    st.sampled_from([bounds.MIN_CLIP_SECONDS, bounds.MAX_CLIP_SECONDS]),
)
policies = st.builds(
    QuotaPolicy,
    default_member_credits=st.integers(0, 500),
    bot_budget_credits=st.one_of(st.none(), st.integers(0, 2000)),
    max_active_jobs_per_member=st.integers(1, 5),
    server_credits_ceiling=st.one_of(st.none(), st.integers(0, 500)),
    allowed_modes=modes,
    max_clip_seconds=st.floats(bounds.MIN_CLIP_SECONDS, bounds.MAX_CLIP_SECONDS),
)


class SettingsMachine(RuleBasedStateMachine):
    """Managers and an operator taking turns; what applies is checked after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="settings-properties-"))
        self.clock = FakeClock(START)
        self.policy = QuotaPolicy()
        self.store: Store | None = None
        # What managers last set and the store accepted (None: nothing of their own).
        self.chosen: dict[str, Any] = {}

    def teardown(self) -> None:
        try:
            if self.store is not None:
                self.run(self.store.close())
        finally:
            self.loop.close()
            shutil.rmtree(self.folder, ignore_errors=True)

    def run(self, awaitable: Awaitable[T]) -> T:
        return self.loop.run_until_complete(awaitable)

    def open(self, policy: QuotaPolicy) -> None:
        if self.store is not None:
            self.run(self.store.close())
        self.policy = policy
        self.store = self.run(Store.open(self.folder / "store.sqlite3", clock=self.clock, policy=policy))

    @property
    def opened(self) -> Store:
        assert self.store is not None
        return self.store

    def attempt(self, name: str, value: object, call: Awaitable[object]) -> None:
        """A manager's setting: kept in the model if the store accepts it; a refusal changes nothing."""
        before = self.run(self.opened.limits.guild_settings(GUILD))
        try:
            self.run(call)
        except REFUSALS:
            event(f"{name} refused")
            assert self.run(self.opened.limits.guild_settings(GUILD)) == before
            return
        event(f"{name} accepted")
        self.chosen[name] = value

    # Rules

    @initialize(policy=policies)
    def operator_starts(self, policy: QuotaPolicy) -> None:
        self.open(policy)

    @rule(policy=policies)
    def operator_changes_settings(self, policy: QuotaPolicy) -> None:
        """The operator edits `.env` and restarts the bot: narrower or wider than before."""
        self.open(policy)

    @rule(chosen=st.one_of(st.none(), modes))
    def set_modes(self, chosen: tuple[GenerationMode, ...] | None) -> None:
        self.attempt("modes", chosen, self.opened.limits.set_allowed_modes(GUILD, chosen))

    @rule(value=st.one_of(st.none(), seconds))
    def set_clip(self, value: float | None) -> None:
        self.attempt("clip", value, self.opened.limits.set_max_clip_seconds(GUILD, value))

    @rule(count=st.one_of(st.none(), st.integers(-2, 8), st.sampled_from([bounds.MAX_COUNT + 1, 2**63])))
    def set_jobs(self, count: int | None) -> None:
        self.attempt("jobs", count, self.opened.limits.set_max_active_jobs(GUILD, count))

    @rule(amount=st.one_of(st.none(), credits))
    def set_server_default(self, amount: int | None) -> None:
        self.attempt("default", amount, self.opened.limits.set_server_default(GUILD, amount))

    @rule(amount=st.one_of(st.none(), credits))
    def set_pool(self, amount: int | None) -> None:
        self.attempt("pool", amount, self.opened.limits.set_server_pool(GUILD, amount))

    @rule(amount=credits)
    def set_member_limit(self, amount: int) -> None:
        self.attempt("member", amount, self.opened.limits.set_member_limit(GUILD, 1, amount))

    @rule(amount=credits)
    def set_role_limit(self, amount: int) -> None:
        self.attempt("role", amount, self.opened.limits.set_role_limit(GUILD, ROLE, amount))

    @rule(user=st.sampled_from(sorted(MEMBERS)), amount=credits.filter(bool))
    def grant(self, user: int, amount: int) -> None:
        try:
            self.run(self.opened.quota.grant(GUILD, user, amount, role_ids=MEMBERS[user]))
        except REFUSALS:
            event("grant refused")
            return
        event("grant accepted")

    # Invariants

    @invariant()
    def nothing_is_wider_than_the_operator(self) -> None:
        if self.store is None:
            return
        policy, chosen = self.policy, self.chosen
        guild = self.run(self.opened.limits.guild_settings(GUILD))
        defaults = GuildRules(policy.allowed_modes, policy.max_clip_seconds, 1_000)
        rules = rules_for(defaults, guild)
        assert set(rules.allowed_modes) <= set(policy.allowed_modes), (rules, policy)
        if chosen.get("modes") is not None:
            assert set(rules.allowed_modes) <= set(chosen["modes"]), (rules, chosen)
        assert rules.max_clip_seconds <= policy.max_clip_seconds
        if chosen.get("clip") is not None:
            assert rules.max_clip_seconds <= chosen["clip"]
        self.assert_stored_within(guild)
        ceiling = policy.server_credits_ceiling
        for user, roles in MEMBERS.items():
            limits = self.run(self.opened.quota.limits(GUILD, user, roles))
            assert 1 <= limits.max_active_jobs <= policy.max_active_jobs_per_member
            if chosen.get("jobs") is not None:
                assert limits.max_active_jobs <= chosen["jobs"]
            if ceiling is not None:
                # Whatever managers set or granted, and in whichever order: the ceiling holds.
                assert limits.member_available + limits.used <= ceiling, (limits, policy)
                assert limits.pool_limit is not None and limits.pool_limit <= ceiling
                if limits.limit_kind is not LimitKind.GLOBAL_DEFAULT:
                    assert limits.allowance <= ceiling
            if chosen.get("pool") is not None:
                assert limits.pool_limit is not None and limits.pool_limit <= chosen["pool"]

    def assert_stored_within(self, guild: GuildSettings) -> None:
        for amount in (guild.default_member_credits, guild.pool_credits):
            assert amount is None or bounds.CREDITS.contains(amount)
        assert guild.max_clip_seconds is None or bounds.CLIP_SECONDS.contains(guild.max_clip_seconds)
        assert guild.max_active_jobs is None or bounds.JOBS_AT_ONCE.contains(guild.max_active_jobs)


TestManagersNarrowNeverWiden = SettingsMachine.TestCase
TestManagersNarrowNeverWiden.settings = settings.get_profile(PROFILE)
