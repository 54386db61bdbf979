"""A world for the model of how jobs end (`test_endings_model.py`): the bot's real services and the
real sandbox over HTTP, on one fake clock that moves only when nothing else can.

Everything sleeps on one `FakeClock`: the engine, its client's back-off, the poller, lease renewals,
and the sandbox, whose renders finish when its clock says. `World.advance` wakes one sleeper at a
time (`FakeClock.wake_next`), and only once the world is quiet: no request in flight at the sandbox (but
those a `hang` holds), no job fetching or probing its files, no database transaction open, and
nothing else changing over a few turns of the event loop. So a render finishes, a poll fires or a
back-off ends at a moment the model chose, and a sequence of steps replays the same way (what
hypothesis needs to shrink a failure to its shortest form).

`Recorder` is every job's deliverer and progress sink, across restarts: it counts what members got,
by Magic Hour project, and can play Discord being down for a few deliveries.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import dataclasses
import logging
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx

from bot.clock import FakeClock
from bot.config import GenerationMode, QuotaWindow
from bot.errors import LipsyncError
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
from bot.jobs.rerun import Again, rerun_request
from bot.sandbox import Sandbox, SandboxConfig
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import SANDBOX_KEY, make_settings

T = TypeVar("T")

GUILD = 1
MEMBERS = (42, 43, 44)
YOUTUBE = "https://www.youtube.com/watch?v=dQw4w9WgXcQ"

# The bot's timings in the model: short enough that a deadline and its grace fit in a few steps,
# long enough that polls, back-offs and renders interleave.
DEADLINE_MINUTES = 10.0  # grace: 5 min, asked every 30 s
DELIVERY_MINUTES = 2.0
POLL_INITIAL = 10.0
POLL_MAX = 60.0
LEASE_SECONDS = 3600.0  # one process: renewals only add wake-ups
# What `settle` waits through: a deadline, its grace, a cancel's patience, delivery's patience, margin.
SETTLE_SECONDS = DEADLINE_MINUTES * 60 * 1.5 + 60 + DELIVERY_MINUTES * 60 + 600

_TURN = 0.002  # real seconds between two looks at the world
_STABLE_TURNS = 3  # looks in a row that must find nothing changed
_QUIET_LIMIT = 60.0  # real seconds: a world that never goes quiet is a bug in itself
_MAX_WAKEUPS = 20_000  # per `advance`: a component sleeping in a tight loop on fake time is a bug


class Flights:
    """How many HTTP requests the bot's clients have sent and not finished reading (see `counting_requests`)."""

    def __init__(self) -> None:
        self.in_flight = 0


REQUESTS = Flights()


@contextlib.contextmanager
def counting_requests() -> Iterator[None]:
    """Count every request an `httpx.AsyncClient` sends while inside, until its answer is read (or,
    streamed, closed). The requests still go over real HTTP; this only counts them, so the world
    can tell a request about to reach the sandbox from one that never will."""
    original = httpx.AsyncClient.send

    async def send(client: httpx.AsyncClient, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        REQUESTS.in_flight += 1
        try:
            response = await original(client, request, **kwargs)
        except BaseException:
            REQUESTS.in_flight -= 1
            raise
        if not kwargs.get("stream"):
            REQUESTS.in_flight -= 1
            return response
        close, closed = response.aclose, False

        async def aclose() -> None:
            nonlocal closed
            try:
                await close()
            finally:
                if not closed:
                    closed = True
                    REQUESTS.in_flight -= 1

        response.aclose = aclose  # type: ignore[method-assign]
        return response

    httpx.AsyncClient.send = send  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        httpx.AsyncClient.send = original  # type: ignore[method-assign]


class CountingExecutor(concurrent.futures.ThreadPoolExecutor):
    """The event loop's default executor (`asyncio.to_thread`), counting the work not yet done."""

    def __init__(self) -> None:
        super().__init__(max_workers=4, thread_name_prefix="model")
        self._lock = threading.Lock()
        self._pending = 0

    @property
    def pending(self) -> int:
        """Calls submitted and not yet finished."""
        with self._lock:
            return self._pending

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[T]:
        """Run `fn` on a thread, counted until it returns."""
        with self._lock:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: object) -> None:
        with self._lock:
            self._pending -= 1


@dataclass(frozen=True)
class Limits:
    """What an example's operator and managers set: every member's allowance, the server's pool,
    the bot's budget (None: the default of 10,000 credits a member, no pool, no budget), and how
    many jobs a member may run at once."""

    member: int | None = None
    pool: int | None = None
    budget: int | None = None
    max_active: int = 2


class Recorder:
    """What members got: results delivered as files and links offered, by Magic Hour project."""

    def __init__(self) -> None:
        self.files: collections.Counter[str] = collections.Counter()
        self.links: collections.Counter[str] = collections.Counter()
        self.discord_down_for = 0  # deliveries that fail, as if Discord were unreachable
        self.files_refused_for = 0  # deliveries of a file that fail (a link still goes)
        self.events = 0  # every call the engine made here: a sign of life for `World.quiet`

    def hooks(self, record: JobRecord | None = None) -> JobHooks:
        """The same sink and deliverer for every job, new or resumed."""
        return JobHooks(sink=self, deliverer=self)

    async def update(self, update: JobUpdate) -> None:
        """Progress is only counted: the model reads states from the store."""
        self.events += 1

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Count the result as delivered (or the link as offered) for the job's project, or fail."""
        self.events += 1
        if self.discord_down_for > 0:
            self.discord_down_for -= 1
            raise ConnectionError("Discord is unreachable")
        project = job.project_id or f"job-{job.id}-without-a-project"
        if result is not None and self.files_refused_for > 0:
            self.files_refused_for -= 1
            raise ConnectionError("Discord refused the file")
        if result is None:
            await link()
            self.links[project] += 1
            return Delivery(kind="link")
        result.unlink(missing_ok=True)  # counted; the file itself isn't needed
        self.files[project] += 1
        return Delivery(kind="local")


class World:
    """One example's sandbox, services, clock and recorder; see the module docstring."""

    def __init__(self, root: Path, media: Path, limits: Limits) -> None:
        self.root = root
        self.media = media
        self.limits = limits
        self.clock = FakeClock()
        self.recorder = Recorder()
        self.sandbox = Sandbox(SandboxConfig(api_key=SANDBOX_KEY), data_dir=root / "sandbox", clock=self.clock)
        self._services: Services | None = None
        self.threads = CountingExecutor()
        self.cancels: dict[int, asyncio.Task[str]] = {}
        self.cancel_outcomes: dict[int, list[str]] = collections.defaultdict(list)
        # Projects delivered while a restart stopped the job before it recorded the delivery: the
        # documented window where a result may arrive twice (a duplicate, never a loss).
        self.may_repeat: set[str] = set()
        self.restarts = 0

    @property
    def services(self) -> Services:
        """The services now running (a restart replaces them)."""
        assert self._services is not None, "the world is not open"
        return self._services

    async def open(self) -> None:
        """Start the sandbox and the bot, and set the example's limits."""
        asyncio.get_running_loop().set_default_executor(self.threads)
        await self.sandbox.start()
        self._services = await self._open_services()
        store = self.services.store
        if self.limits.pool is not None:
            await store.limits.set_server_pool(GUILD, self.limits.pool)
        if self.limits.member is not None:
            for member in MEMBERS:
                await store.limits.set_member_limit(GUILD, member, self.limits.member)

    async def _open_services(self) -> Services:
        settings = make_settings(
            self.root,
            self.sandbox.base_url,
            job_deadline_minutes=DEADLINE_MINUTES,
            delivery_retry_minutes=DELIVERY_MINUTES,
            poll_initial_seconds=POLL_INITIAL,
            poll_max_seconds=POLL_MAX,
            job_lease_seconds=LEASE_SECONDS,
            max_active_jobs_per_member=self.limits.max_active,
            bot_budget_credits=self.limits.budget,
            quota_window=QuotaWindow.MONTHLY,  # an example spans hours, never a reset
        )
        services = await Services.open(settings, clock=self.clock)
        # Jitter from seeded generators: the same steps give the same fake timings on every replay.
        client = services.client
        client._retry = dataclasses.replace(client._retry, rng=random.Random(self.restarts))
        services.engine.poller._rng = random.Random(self.restarts)
        return services

    async def close(self) -> None:
        """Stop everything the world started (after a failure too)."""
        with contextlib.suppress(Exception):
            self.sandbox.faults.clear()
        if self._services is not None:
            self.sandbox.faults.release()
            with contextlib.suppress(AssertionError):
                await self.moving_time(self._services.aclose(), within=SETTLE_SECONDS)
            self._services = None
        for task in self.cancels.values():
            task.cancel()
        await asyncio.gather(*self.cancels.values(), return_exceptions=True)
        await self.sandbox.close()

    # ------------------------------------------------------------------ what members do

    def file_request(self, member: int, mode: GenerationMode, max_fps: float | None) -> JobRequest:
        """A 1.5 s voice over the 2 s face, from local files (45 credits in lite at 30 fps)."""
        video, audio = self.media / "face.mp4", self.media / "voice.mp3"
        return JobRequest(
            user_id=member,
            guild_id=GUILD,
            channel_id=7,
            video=InputSource(filename=video.name, path=video, size=video.stat().st_size),
            audio=InputSource(filename=audio.name, path=audio, size=audio.stat().st_size),
            mode=mode,
            max_fps=max_fps,
        )

    def youtube_request(self, member: int, max_fps: float | None) -> JobRequest:
        """One second of a YouTube video under the voice."""
        audio = self.media / "voice.mp3"
        return JobRequest(
            user_id=member,
            guild_id=GUILD,
            channel_id=7,
            audio=InputSource(filename=audio.name, path=audio, size=audio.stat().st_size),
            youtube_url=YOUTUBE,
            end=1.0,
            max_fps=max_fps,
        )

    async def rerun_request(self, job_id: int, how: Again) -> JobRequest | None:
        """The request that runs a job again, or None when the bot refuses to (as a member would be told)."""
        job = await self.services.store.jobs.get(job_id)
        assert job is not None
        try:
            return rerun_request(job, how, by_user_id=job.user_id, guild_id=GUILD, now=self.clock.now())
        except LipsyncError:
            return None

    async def submit(self, request: JobRequest, render_seconds: float) -> int | None:
        """Submit a job whose render takes `render_seconds` at Magic Hour; None when it is refused."""
        self.sandbox.config.render_seconds = render_seconds
        try:
            record = await self.services.engine.submit(request, self.recorder.hooks())
        except LipsyncError:
            return None
        finally:
            await self.quiet()
        return record.id

    def cancel(self, job_id: int, user_id: int) -> None:
        """Press Cancel: the answer comes when it comes (it may need Magic Hour and time)."""
        if job_id in self.cancels and not self.cancels[job_id].done():
            return  # a second press while the first is answered changes nothing
        engine = self.services.engine

        async def press() -> str:
            try:
                final = await engine.cancel(job_id, by_user_id=user_id)
            except LipsyncError as exc:
                return exc.code
            except Exception as exc:  # a restart closed the store under it: pressed again later, or not
                return type(exc).__name__
            return f"{final.state.value}:{final.error_code or ''}"

        task = asyncio.get_running_loop().create_task(press())
        task.add_done_callback(lambda done: self.cancel_outcomes[job_id].append(done.result()))
        self.cancels[job_id] = task

    # ------------------------------------------------------------------ time

    async def quiet(self, done: asyncio.Future[Any] | None = None) -> None:
        """Wait (in real time) until nothing in the world can move without the clock, or `done` is."""
        stable, last = 0, None
        started = time.monotonic()
        while stable < _STABLE_TURNS and not (done is not None and done.done()):
            await asyncio.sleep(_TURN)
            now = self._fingerprint()
            stable = stable + 1 if now == last and not self._busy() else 0
            last = now
            if time.monotonic() - started > _QUIET_LIMIT:
                raise AssertionError(f"the world never went quiet: {now}")

    def _busy(self) -> bool:
        counters = self.sandbox.counters
        if counters.in_flight > counters.held or REQUESTS.in_flight > counters.held or self.threads.pending:
            return True
        engine = self.services.engine
        states = engine.states()
        # Fetching and probing happen on threads and in ffmpeg: nothing else shows they are going on.
        if states.get(JobState.FETCHING.value, 0) > 0:
            return True
        if states.get(JobState.RECEIVED.value, 0) > engine.queue_snapshot().waiting:
            return True
        lock = getattr(self.services.store._db, "_lock", None)  # SQLite's transaction lock
        return isinstance(lock, asyncio.Lock) and lock.locked()

    def _fingerprint(self) -> tuple[object, ...]:
        counters = self.sandbox.counters
        return (
            counters.requests.total(),
            counters.in_flight,
            counters.held,
            REQUESTS.in_flight,
            self.clock.sleepers,
            self.clock.next_deadline(),
            self.recorder.events,
            tuple(sorted(self.services.engine.states().items())),
            len(asyncio.all_tasks()),
        )

    async def advance(self, seconds: float) -> None:
        """Move the clock `seconds` on, one wake-up at a time, each once the world is quiet."""
        target = self.clock.monotonic() + seconds
        for _ in range(_MAX_WAKEUPS):
            await self.quiet()
            if not await self.clock.wake_next(until=target):
                await self.clock.advance(max(0.0, target - self.clock.monotonic()))  # nothing left to wake
                await self.quiet()
                return
        raise AssertionError(f"more than {_MAX_WAKEUPS} wake-ups in {seconds} s of fake time")

    async def moving_time(self, work: Awaitable[T], *, within: float) -> T:
        """Await `work` while moving the clock one wake-up at a time, for `within` seconds at most:
        what it waits for may be a back-off or a pause on the clock (a shutdown waits for a create
        whose 429 is being retried)."""
        task: asyncio.Future[T] = asyncio.ensure_future(work)
        give_up_at = self.clock.monotonic() + within
        stalled_since: float | None = None
        while not task.done():
            await self.quiet(task)
            if task.done() or await self.clock.wake_next(until=give_up_at):
                stalled_since = None
                continue
            # Nothing to wake on the clock: what it waits for takes real time (a thread, a socket).
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > _QUIET_LIMIT:
                task.cancel()
                raise AssertionError(f"{work!r} never finished, and nothing is left to wake within {within} s")
            await asyncio.sleep(_TURN)
        return task.result()

    # ------------------------------------------------------------------ the process

    async def restart(self) -> None:
        """Stop the bot (its jobs stay unfinished) and start it again on the same database: resume."""
        # A shutdown waits for a create's answer (never abandoned half-way): let held answers come.
        self.sandbox.faults.release()
        await self.quiet()
        await self.moving_time(self.services.aclose(), within=SETTLE_SECONDS)
        pending = [task for task in self.cancels.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=10)
        self._services = None
        self.restarts += 1
        self._services = await self._open_services()
        for project in self.recorder.files:
            job = await self._job_of(project)
            if job is not None and job.state is not JobState.DONE:
                self.may_repeat.add(project)
        await self.services.engine.resume(self.recorder.hooks)
        await self.quiet()

    async def _job_of(self, project_id: str) -> JobRecord | None:
        for job in await self.services.store.jobs.for_guild(GUILD, limit=10_000):
            if job.project_id == project_id:
                return job
        return None

    async def settle(self) -> None:
        """The end of an example: Magic Hour and Discord behave, the clock runs on, the bot restarts
        and resumes, and the clock runs on again; then every render still going is finished."""
        self.sandbox.faults.clear()
        self.recorder.discord_down_for = 0
        self.recorder.files_refused_for = 0
        await self.advance(SETTLE_SECONDS)
        await self.restart()
        await self.advance(SETTLE_SECONDS)
        pending = [task for task in self.cancels.values() if not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=10)
        await self.sandbox.finish_due()


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Only errors from the bot while inside: it logs every odd answer as a warning, and thousands
    of steps would fill the captured output (and memory) with them."""
    loggers = [logging.getLogger(name) for name in ("bot", "aiohttp", "httpx")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)
