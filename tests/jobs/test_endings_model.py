"""A model of how jobs end: random histories against the real engine and the sandbox over HTTP.

A hypothesis state machine drives the bot's real services (`bot.services.Services`: engine, store,
client) and the real sandbox, both on one fake clock (`endings_harness.World`), through random
sequences of what members, Magic Hour, Discord and the operator do:

- members submit file jobs (lite or pro, capped or not) and YouTube jobs (capped at 24 or 60, or
  not), run finished jobs again from their uploaded files, and press Cancel;
- Magic Hour renders each job for a time the step picks (at once, soon, minutes, past the
  deadline), answers status reads oddly for a few requests (401, 403, 404, 409, 429, a 5xx storm,
  half a body, JSON of another shape, an unknown status, no `credits_charged`, a lost answer),
  fails DELETEs a few times (5xx, dropped, lost), is slow or odd at create (held open, 503 or 502
  with or without a project made, dropped, lost, 429), ends a job in error, or charges more at
  create than it documents;
- Discord is down for a few deliveries; the bot restarts (on the same database) and resumes;
- time passes: a few seconds, minutes, or past the jobs' deadline.

After every step the money and results invariants of `endings_invariants` must hold (the ledger
mirrors Magic Hour job by job, every paid render reaches its member once, no DELETE destroys a
finished render, no limit is exceeded in real spend); at the end of each example the world
settles (Magic Hour and Discord behave, the clock runs on, the bot restarts and resumes) and they
must hold in full, with every job ended.

Examples: a fixed, derandomized set (`EXAMPLES`, 30 by default, about a minute on two cores);
`LIPSYNC_MODEL_EXAMPLES=2000` explores that many random ones instead, `LIPSYNC_MODEL_STEPS`
lengthens each, `LIPSYNC_MODEL_WITHOUT` leaves families of steps out (see `FAMILIES`), and
`LIPSYNC_MODEL_VERBOSE=1` prints every example's steps. A failure prints the
shortest sequence of steps hypothesis could find.
"""

from __future__ import annotations

import asyncio
import collections
import os
import shutil
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import pytest
from hypothesis import HealthCheck, Verbosity, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, initialize, invariant, rule

from bot.config import GenerationMode
from bot.jobs.rerun import Again
from tests.jobs.endings_harness import DEADLINE_MINUTES, MEMBERS, Limits, World, counting_requests, quiet_logs
from tests.jobs.endings_invariants import Violation, check, reached

T = TypeVar("T")

# Families of steps that can be left out of a run (`LIPSYNC_MODEL_WITHOUT=auth_on_reads,delete_fails`):
# on code that breaks an invariant one way, leaving that way out lets the model look for the next
# one. Every family is taken unless named.
FAMILIES = frozenset(
    {"auth_on_reads", "read_without_charge", "delete_fails", "create_503_after_effect", "youtube_over_30_fps"}
)
WITHOUT = frozenset(name for name in os.environ.get("LIPSYNC_MODEL_WITHOUT", "").split(",") if name)
if WITHOUT - FAMILIES:
    raise ValueError(f"LIPSYNC_MODEL_WITHOUT names no family of steps: {sorted(WITHOUT - FAMILIES)}")


def left_out(family: str) -> bool:
    """True when the run leaves this family of steps out."""
    assert family in FAMILIES
    return family in WITHOUT


EXPLORING = "LIPSYNC_MODEL_EXAMPLES" in os.environ
EXAMPLES = int(os.environ.get("LIPSYNC_MODEL_EXAMPLES", "30"))
STEPS = int(os.environ.get("LIPSYNC_MODEL_STEPS", "12"))
MODEL = settings(
    max_examples=EXAMPLES,
    stateful_step_count=STEPS,
    deadline=None,
    derandomize=not EXPLORING,
    database=None,
    print_blob=True,
    verbosity=Verbosity.verbose if os.environ.get("LIPSYNC_MODEL_VERBOSE") else Verbosity.normal,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much, HealthCheck.data_too_large],
)

# Paths the fixed examples (CI's) must take: stops, deliveries, links, deadlines, lost creates, restarts.
FIXED_SET_REACHES = frozenset(
    {
        "a DELETE reached a project",
        "a render was delivered",
        "a render was offered as a link",
        "ended canceled",
        "ended failed deadline",
        "ended failed unknown_at_magic_hour",
        "the bot restarted mid-example",
    }
)
# How many examples took each path (`endings_invariants.reached`), printed at the end of a run.
REACHED: collections.Counter[str] = collections.Counter()

RENDERS = st.sampled_from([0.0, 40.0, 250.0, 900.0])  # at once, soon, minutes, past the deadline
WAITS = st.sampled_from([5.0, 30.0, 120.0, 400.0])
TIMES = st.sampled_from([1, 3, 12])
STATUS_ANSWERS = [
    "401",
    "403",
    "404",
    "409",
    "429",
    "5xx",
    "malformed",
    "odd_json",
    "unknown_status",
    "no_charge",
    "lost",
]
DELETE_FAILURES = ["500", "502", "503", "disconnect", "lost"]
CREATE_ANSWERS = ["hang", "503", "503-after-effect", "502", "500-after-effect", "disconnect", "lost", "429"]
# A submit's own create answer, as often as not the documented one: a fault queued by a rule of its
# own reaches a create only when a submit happens to follow it.
CREATES = st.none() | st.sampled_from(CREATE_ANSWERS)


class EndingsModel(RuleBasedStateMachine):
    """Random histories of jobs, faults, restarts and time; see the module docstring."""

    media: Path  # set by the test: the session's generated media
    scratch: Path  # set by the test: where each example's files go

    # Every submit adds to the bundle, a refused one as None (a no-op for later steps): what a step
    # may draw never depends on how the bot answered, which hypothesis needs to replay a sequence.
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.root = Path(tempfile.mkdtemp(dir=self.scratch))
        self._world: World | None = None

    @property
    def world(self) -> World:
        assert self._world is not None
        return self._world

    def run(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run one step's work on this example's event loop (background tasks run with it)."""

        async def step() -> T:
            return await work()

        return self.loop.run_until_complete(step())

    # ------------------------------------------------------------------ the example's operator

    @initialize(
        target=jobs,
        member=st.sampled_from([None, 100, 200]),
        pool=st.sampled_from([None, 150, 400]),
        budget=st.sampled_from([None, 250]),
        max_active=st.sampled_from([1, 2]),
        youtube_fps=st.sampled_from([30.0, 60.0]),
        first=st.tuples(st.sampled_from(MEMBERS), st.sampled_from([GenerationMode.LITE, GenerationMode.PRO]), RENDERS),
    )
    def open_world(
        self,
        member: int | None,
        pool: int | None,
        budget: int | None,
        max_active: int,
        youtube_fps: float,
        first: tuple[int, GenerationMode, float],
    ) -> int | None:
        """The operator's limits and Magic Hour's YouTube rate; and a first job, so that every
        example has one to stop, fault and end (rules are drawn evenly, most of them aren't submits)."""
        self._world = World(self.root, self.media, Limits(member, pool, budget, max_active))
        if not left_out("youtube_over_30_fps"):
            self.world.sandbox.config.youtube_fps = youtube_fps
        self.run(self.world.open)
        who, mode, render = first
        request = self.world.file_request(who, mode, None)
        return self.run(lambda: self.world.submit(request, render))

    # ------------------------------------------------------------------ members

    @rule(
        target=jobs,
        member=st.sampled_from(MEMBERS),
        mode=st.sampled_from([GenerationMode.LITE, GenerationMode.PRO]),
        max_fps=st.sampled_from([None, 24.0]),
        render=RENDERS,
        create=CREATES,
    )
    def submit_file(
        self, member: int, mode: GenerationMode, max_fps: float | None, render: float, create: str | None
    ) -> int | None:
        self.create_answers(create)
        request = self.world.file_request(member, mode, max_fps)
        return self.run(lambda: self.world.submit(request, render))

    @rule(
        target=jobs,
        member=st.sampled_from(MEMBERS),
        max_fps=st.sampled_from([None, 24.0, 60.0]),
        render=RENDERS,
        create=CREATES,
    )
    def submit_youtube(self, member: int, max_fps: float | None, render: float, create: str | None) -> int | None:
        self.create_answers(create)
        request = self.world.youtube_request(member, max_fps)
        return self.run(lambda: self.world.submit(request, render))

    @rule(target=jobs, job=jobs, how=st.sampled_from(list(Again)), render=RENDERS)
    def run_again(self, job: int | None, how: Again, render: float) -> int | None:
        async def again() -> int | None:
            request = None if job is None else await self.world.rerun_request(job, how)
            return None if request is None else await self.world.submit(request, render)

        return self.run(again)

    @rule(job=jobs)
    def cancel(self, job: int | None) -> None:
        if job is None:
            return

        async def press() -> None:
            record = await self.world.services.store.jobs.get(job)
            assert record is not None
            self.world.cancel(job, record.user_id)
            await self.world.quiet()

        self.run(press)

    # ------------------------------------------------------------------ Magic Hour

    @rule(answer=st.sampled_from(STATUS_ANSWERS), times=TIMES)
    def status_answers(self, answer: str, times: int) -> None:
        faults = self.world.sandbox.faults
        if answer in ("401", "403") and left_out("auth_on_reads"):
            return
        if answer == "no_charge" and left_out("read_without_charge"):
            return
        if answer.isdigit():
            faults.fail("get_project", status=int(answer), times=times)
        elif answer == "5xx":
            faults.storm("get_project", times=times)
        elif answer == "malformed":
            faults.malformed("get_project", times=times)
        elif answer == "odd_json":
            faults.odd_json("get_project", times=times)
        elif answer == "unknown_status":
            faults.unknown_status(times=times)
        elif answer == "no_charge":
            faults.no_charge(times=times)
        else:
            faults.disconnect("get_project", times=times, after_effect=True)

    @rule(failure=st.sampled_from(DELETE_FAILURES), times=TIMES)
    def delete_fails(self, failure: str, times: int) -> None:
        if left_out("delete_fails"):
            return
        faults = self.world.sandbox.faults
        if failure.isdigit():
            faults.fail("delete_project", status=int(failure), times=times)
        else:
            faults.disconnect("delete_project", times=times, after_effect=failure == "lost")

    @rule(answer=st.sampled_from(CREATE_ANSWERS))
    def create_answers(self, answer: str | None) -> None:
        """How Magic Hour answers the next create (None: as documented)."""
        faults = self.world.sandbox.faults
        if answer is None:
            return
        if answer == "hang":
            faults.hang("create")
        elif answer == "503-after-effect":
            if not left_out("create_503_after_effect"):
                faults.fail("create", status=503, after_effect=True)
        elif answer == "500-after-effect":
            faults.fail("create", status=500, after_effect=True)
        elif answer.isdigit():
            faults.fail("create", status=int(answer))
        else:
            faults.disconnect("create", after_effect=answer == "lost")

    @rule()
    def answer_held_requests(self) -> None:
        self.world.sandbox.faults.release()
        self.run(self.world.quiet)

    @rule()
    def next_job_errors(self) -> None:
        self.world.sandbox.faults.job_error()

    @rule(surcharge=st.sampled_from([1.0, 2.0]))
    def create_charges(self, surcharge: float) -> None:
        self.world.sandbox.config.create_surcharge = surcharge

    # ------------------------------------------------------------------ Discord, the process, time

    @rule(times=st.sampled_from([1, 3]))
    def discord_down(self, times: int) -> None:
        self.world.recorder.discord_down_for = times

    @rule()
    def discord_refuses_files(self) -> None:
        """Files fail for longer than delivery's patience (links still go): the member gets a link."""
        self.world.recorder.files_refused_for = 20

    @rule()
    def restart(self) -> None:
        self.run(self.world.restart)

    @rule(seconds=WAITS)
    def wait(self, seconds: float) -> None:
        self.run(lambda: self.world.advance(seconds))

    @rule()
    def past_the_deadline(self) -> None:
        self.run(lambda: self.world.advance(DEADLINE_MINUTES * 60 + 1))

    # ------------------------------------------------------------------ invariants

    def violations(self, *, final: bool) -> list[Violation]:
        return self.run(lambda: check(self.world, final=final))

    @invariant()
    def money_and_results_hold(self) -> None:
        if self._world is None:
            return
        broken = self.violations(final=False)
        assert not broken, "\n".join(map(str, broken))

    def teardown(self) -> None:
        try:
            if self._world is not None:
                self.run(self.world.settle)
                broken = self.violations(final=True)
                assert not broken, "after settling:\n" + "\n".join(map(str, broken))
                REACHED.update(self.run(lambda: reached(self.world)))
        finally:
            try:
                if self._world is not None:
                    self.run(self.world.close)
            finally:
                self.loop.close()
                shutil.rmtree(self.root, ignore_errors=True)


@pytest.mark.slow
@pytest.mark.timeout(240 + (EXAMPLES * STEPS + 600 if EXPLORING else 0))  # exploring: time to shrink too
def test_money_and_results_hold_through_random_histories(
    media_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Random histories of jobs, faults, restarts and time never break a money or results invariant."""
    # Every client here speaks plain HTTP to the sandbox; an empty CA directory spares loading the
    # CA bundle for each of the hundreds of HTTP clients a run opens (a tenth of a second each).
    (tmp_path / "no-cas").mkdir()
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-cas"))
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    EndingsModel.media = media_dir
    EndingsModel.scratch = tmp_path
    REACHED.clear()
    with quiet_logs(), counting_requests():
        run_state_machine(EndingsModel)
    print(f"\nexamples that took each path ({EXAMPLES} examples of up to {STEPS} steps):")
    for path, examples in sorted(REACHED.items()):
        print(f"  {examples:5d}  {path}")
    if not EXPLORING and not WITHOUT:
        # The fixed examples replay the same way every time: they must keep reaching the paths
        # where money and results are at stake, or a change to the model (or the bot) has made
        # it check less than it claims.
        missed = FIXED_SET_REACHES - set(REACHED)
        assert not missed, f"the fixed examples no longer reach: {sorted(missed)}"


def run_state_machine(machine: type[RuleBasedStateMachine]) -> None:
    """`run_state_machine_as_test` with this module's settings."""
    from hypothesis.stateful import run_state_machine_as_test

    run_state_machine_as_test(machine, settings=MODEL)
