"""One poller for every job that is rendering at Magic Hour.

Each job is polled on a backoff (`initial` seconds, growing by `growth` to `maximum`, jittered),
or at its forecast's planned moments (`bot.jobs.forecast`) until the plan runs out; with webhooks,
a verified event asks at once and polls are a safety net. A 429 or 5xx pushes every job back,
never sooner than a 429's Retry-After. A wait ends only on a read that shows the project ended
with its charge; any other answer is temporary until the job's deadline (docs/design-notes.md,
"The engine"). The poller's client must not retry on its own: this backoff governs.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

from bot.clock import Clock
from bot.jobs.forecast import Expectation
from bot.magichour import MagicHourError, NotOnPlan, RateLimited, Unauthorized, Unavailable, VideoProject

log = logging.getLogger(__name__)

ProjectListener = Callable[[VideoProject], Awaitable[None]]
WaitObserver = Callable[[int], None]
"""Told how many status requests a wait took, when it ends (metrics)."""

_EARLY_POKE_SECONDS = 600.0


class ProjectSource(Protocol):
    """What the poller needs from the API client."""

    async def get_video_project(self, project_id: str) -> VideoProject:
        """The project's current state."""
        ...


class PollDeadlineExceeded(Exception):
    """The job did not finish before its deadline."""


@dataclass
class _Watch:
    project_id: str
    deadline: float
    next_at: float
    interval: float
    listener: ProjectListener | None
    future: asyncio.Future[VideoProject] = field(repr=False)
    polls: int = 0
    busy: bool = False  # a poll of this project is in progress
    oddities: set[str] = field(default_factory=set)  # kinds of odd answers already logged
    expect: Expectation | None = None
    plan: list[float] = field(default_factory=list)  # forecast poll moments still ahead (monotonic)
    planned: bool = False  # following a forecast plan (not yet the backoff)
    context: contextvars.Context = field(default_factory=contextvars.copy_context, repr=False)


@dataclass(frozen=True)
class PollPolicy:
    """How often to ask: from `initial` seconds, growing by `growth` to `maximum` (±`jitter`), and
    after a 429 or 5xx at most `error_maximum`; at most `concurrency` reads at a time.

    With `webhooks`, Magic Hour says when a render ends (a verified event pokes the poller), so
    polling is only the safety net for an event that never arrives: a job without a forecast, or
    one that outlasted its plan, is asked about every `safety_interval` seconds instead of the backoff.
    """

    initial: float = 5.0
    maximum: float = 20.0
    growth: float = 1.5
    jitter: float = 0.1
    error_maximum: float = 120.0
    concurrency: int = 8
    webhooks: bool = False
    safety_interval: float = 60.0


class Poller:
    """Polls every watched project from one loop; `wait` returns its terminal state."""

    def __init__(
        self,
        source: ProjectSource,
        clock: Clock,
        policy: PollPolicy | None = None,
        *,
        rng: random.Random | None = None,
        on_wait_end: WaitObserver | None = None,
        on_key_refused: Callable[[], None] | None = None,
    ) -> None:
        self._source = source
        self._on_wait_end = on_wait_end
        self._on_key_refused = on_key_refused
        self._clock = clock
        self._policy = policy or PollPolicy()
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not cryptography
        self._watches: dict[str, _Watch] = {}
        self._wakeup = asyncio.Event()
        self._penalty = 0.0
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._gate = asyncio.Semaphore(self._policy.concurrency)
        # Projects a webhook named before anyone waited for them (the event can beat the create
        # answer's bookkeeping): their first poll is immediate. Kept for `_EARLY_POKE_SECONDS`.
        self._early: dict[str, float] = {}
        self.requests = 0

    @property
    def watching(self) -> int:
        """How many projects are being polled."""
        return len(self._watches)

    @property
    def polling(self) -> bool:
        """True while a status request is in progress (tests wait for it before moving fake time)."""
        return bool(self._inflight)

    def polls_for(self, project_id: str) -> int | None:
        """How many status requests this project has had so far (None if not watched)."""
        watch = self._watches.get(project_id)
        return None if watch is None else watch.polls

    def alive(self, *, grace: float = 60.0) -> bool:
        """False when the loop has died, or a due poll has waited more than `grace` seconds (health)."""
        if self._task is not None and self._task.done():
            return False
        if self._task is None:
            return not self._watches
        now = self._clock.monotonic()
        return not any(not w.busy and min(w.next_at, w.deadline) < now - grace for w in self._watches.values())

    def start(self) -> None:
        """Start the polling loop (idempotent)."""
        if self._task is None or self._task.done():
            # A context of its own: the loop must not carry the first waiter's (its job number in logs).
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._run(), name="magic-hour-poller", context=contextvars.Context())

    async def aclose(self) -> None:
        """Stop polling; waiters get `CancelledError`."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._inflight):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for watch in self._watches.values():
            watch.future.cancel()
        self._watches.clear()

    async def wait(
        self,
        project_id: str,
        *,
        within: float,
        listener: ProjectListener | None = None,
        poll_now: bool = False,
        expect: Expectation | None = None,
    ) -> VideoProject:
        """Wait until the project is complete, errored or canceled; raise at the deadline.

        `poll_now` asks at once (a resumed job may have finished while the bot was down). With
        `expect` carrying a poll plan, polls follow it; every read is noted on it either way.
        """
        self.start()
        now = self._clock.monotonic()
        future: asyncio.Future[VideoProject] = asyncio.get_running_loop().create_future()
        poked_early = self._early.pop(project_id, None) is not None
        watch = _Watch(project_id, now + within, now, self._policy.initial, listener, future, expect=expect)
        if expect is not None and expect.polls:
            watch.plan, watch.planned = sorted(expect.polls), True
        if not (poll_now or poked_early):
            self._schedule_next(watch, first=True)
        self._watches[project_id] = watch
        self._wakeup.set()
        try:
            return await future
        finally:
            if self._watches.get(project_id) is watch:
                del self._watches[project_id]
            if self._on_wait_end is not None:
                self._on_wait_end(watch.polls)

    def poke(self, project_id: str) -> bool:
        """Ask for a project's status now (a verified webhook said it changed).

        False if nobody waits for it yet; its first poll is then immediate if a wait starts soon.
        """
        watch = self._watches.get(project_id)
        if watch is None or watch.future.done():
            now = self._clock.monotonic()
            self._early = {p: at for p, at in self._early.items() if now - at < _EARLY_POKE_SECONDS}
            self._early[project_id] = now
            return False
        watch.next_at = self._clock.monotonic()
        if watch.expect is not None:
            watch.expect.heard(watch.next_at)
        self._wakeup.set()
        return True

    def forget(self, project_id: str) -> None:
        """Stop polling a project; its waiter gets `CancelledError`."""
        watch = self._watches.pop(project_id, None)
        if watch is not None:
            watch.future.cancel()

    def _jittered(self, seconds: float) -> float:
        spread = self._policy.jitter
        return seconds * self._rng.uniform(1 - spread, 1 + spread)

    async def _run(self) -> None:
        while True:
            # Cleared before looking, so a poll that ends while we decide still wakes us.
            self._wakeup.clear()
            now = self._clock.monotonic()
            for watch in list(self._watches.values()):
                if not watch.busy and (watch.next_at <= now or watch.deadline <= now):
                    # Each poll runs on its own: a slow answer (or a slow status edit) for one job
                    # never holds up the others' polls or deadlines.
                    watch.busy = True
                    # In the waiter's context, so the poll's log lines carry its job number.
                    task = asyncio.get_running_loop().create_task(self._poll_and_release(watch), context=watch.context)
                    self._inflight.add(task)
                    task.add_done_callback(self._inflight.discard)
            moments = [min(w.next_at, w.deadline) for w in self._watches.values() if not w.busy]
            delay = (min(moments) - now) if moments else None
            await self._sleep_or_wake(delay)

    async def _poll_and_release(self, watch: _Watch) -> None:
        try:
            await self._poll(watch)
        finally:
            watch.busy = False
            self._wakeup.set()

    async def _sleep_or_wake(self, delay: float | None) -> None:
        waits: set[asyncio.Task[object]] = {asyncio.ensure_future(self._wakeup.wait())}
        if delay is not None:
            waits.add(asyncio.ensure_future(self._clock.sleep(delay)))
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in waits:
                task.cancel()

    async def _poll(self, watch: _Watch) -> None:
        if watch.future.done():
            self._watches.pop(watch.project_id, None)
            return
        if self._clock.monotonic() >= watch.deadline and watch.polls > 0:
            # Expire only after asking at least once: a resumed job may have finished meanwhile.
            watch.future.set_exception(PollDeadlineExceeded(watch.project_id))
            return
        answer = await self._ask(watch)
        if answer is not None:
            await self._heard(watch, *answer)

    async def _ask(self, watch: _Watch) -> tuple[VideoProject, float] | None:
        """One status read: the project and when the read was sent, or None for an answer dealt with here."""
        async with self._gate:
            watch.polls += 1
            self.requests += 1
            sent = self._clock.monotonic()
            try:
                return await self._source.get_video_project(watch.project_id), sent
            except (Unauthorized, NotOnPlan) as exc:
                # 401/403: the key is refused. Only the operator can fix it, so say so loudly; the
                # render goes on at Magic Hour (and is billed), so its job waits, as for any odd answer.
                if self._on_key_refused is not None:
                    self._on_key_refused()
                self._odd(watch, exc, level=logging.ERROR, note="Magic Hour refuses the bot's API key")
            except (RateLimited, Unavailable) as exc:
                self._slow_down(watch, exc)
            except MagicHourError as exc:
                # 404, 409, a body that doesn't parse, a status we don't know: temporary until the
                # deadline. The render may well be going on; failing here would lose a paid result.
                self._odd(watch, exc)
            except Exception as exc:
                # A bug, not an answer: end this job's wait (its runner decides); the loop itself
                # must survive, or every other job would stop being polled.
                if not watch.future.done():
                    watch.future.set_exception(exc)
            return None

    def _slow_down(self, watch: _Watch, exc: RateLimited | Unavailable) -> None:
        """The API wants us to slow down: back off every job, not just this one."""
        self._penalty = min(max(self._penalty * 2, self._policy.maximum), self._policy.error_maximum)
        hint = exc.retry_after if isinstance(exc, RateLimited) and exc.retry_after is not None else 0.0
        pause = min(max(self._penalty, hint), self._policy.error_maximum)
        log.warning("status poll for %s failed (%s); backing off %.0f s", watch.project_id, exc, pause)
        self._push_back_all(pause)

    async def _heard(self, watch: _Watch, project: VideoProject, sent: float) -> None:
        """A read that came back whole: end the wait on a settled project, else ask again later."""
        self._penalty = 0.0
        if watch.expect is not None:
            watch.expect.saw(sent, self._clock.monotonic(), ended=project.is_terminal)
        if watch.listener is not None:
            try:
                await watch.listener(project)
            except Exception:
                log.exception("progress listener failed for project %s", watch.project_id)
        if project.is_settled:
            if not watch.future.done():
                watch.future.set_result(project)
            return
        if project.is_terminal:  # ended, but without what it charged: a missing charge is not zero
            self._odd(watch, f"{project.status.value} without credits_charged")
            return
        self._schedule_next(watch)

    def _odd(self, watch: _Watch, what: object, *, level: int = logging.WARNING, note: str = "odd answer") -> None:
        """An answer that can't end the wait: log its kind once per project, and ask again later."""
        kind = f"{type(what).__name__}:{getattr(what, 'status_code', what)}"
        if kind not in watch.oddities:
            watch.oddities.add(kind)
            log.log(level, "status poll for %s: %s (%s); still waiting", watch.project_id, note, what)
        self._schedule_next(watch)

    def _schedule_next(self, watch: _Watch, *, first: bool = False) -> None:
        now = self._clock.monotonic()
        while watch.plan and watch.plan[0] <= now:
            watch.plan.pop(0)  # moments missed (a push-back, a slow answer): the next one still stands
        if watch.plan:
            watch.next_at = watch.plan.pop(0)
            return
        if self._policy.webhooks:
            watch.planned = False  # a webhook will say when it ends: ask now and then, in case it is lost
            watch.interval = self._policy.safety_interval
        elif watch.planned:
            watch.planned = False  # the render outlasted its forecast: back off from the start
            watch.interval = self._policy.initial
        elif not first:
            watch.interval = min(watch.interval * self._policy.growth, self._policy.maximum)
        watch.next_at = now + self._jittered(watch.interval)

    def _push_back_all(self, seconds: float) -> None:
        at = self._clock.monotonic()
        for watch in self._watches.values():
            watch.next_at = max(watch.next_at, at + self._jittered(seconds))
