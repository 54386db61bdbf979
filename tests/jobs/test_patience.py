"""How long the bot waits on Magic Hour, and which layer retries, against the sandbox over HTTP.

A 429 with a far `Retry-After` must not hold a member's slot and reservation for a day; the poller
asks once per poll (its own schedule decides when to ask again), never retrying inside its gate.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.models import Delivery, JobHooks, LinkProvider
from bot.jobs.submit import create_project, create_round_pause
from bot.magichour import CreatedJob, MagicHourClient, RateLimited, RetryPolicy
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import SANDBOX_KEY, KeepFile, RecordingSink, make_settings, move_clock_until
from tests.jobs.test_engine import file_request, run_job
from tests.jobs.test_results import lip_sync_request


@dataclass
class _Context:
    """The two things `create_project` uses of a job's run context."""

    client: MagicHourClient
    clock: FakeClock


class FailsTwice(KeepFile):
    """A deliverer whose first two deliveries fail (Discord down for a while), then work."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.attempts = 0

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Fail the first two calls, then deliver as `KeepFile` does."""
        self.attempts += 1
        if self.attempts <= 2:
            raise ConnectionError("Discord is unreachable")
        return await super().deliver(job, result, sandbox=sandbox, link=link)


@pytest.mark.parametrize(("retry_after", "pause"), [(None, 10.0), (5.0, 10.0), (45.0, 45.0), (86_400.0, 60.0)])
def test_a_create_round_pause_honours_retry_after_up_to_a_minute(retry_after: float | None, pause: float) -> None:
    """The pause between create rounds grows, follows Retry-After, and never exceeds the cap."""
    assert create_round_pause(1, retry_after) == pause


async def test_a_day_long_retry_after_on_create_holds_the_job_minutes_not_a_day(
    sandbox: Sandbox, media_dir: Path
) -> None:
    """Magic Hour says "come back tomorrow" to every create: the job gives up after a few capped pauses."""
    clock = FakeClock()
    policy = RetryPolicy(max_attempts=2, base_delay=1.0, max_delay=1.0, jitter=0.0, max_retry_after=1.0)
    async with MagicHourClient(SecretStr(SANDBOX_KEY), sandbox.base_url, retry=policy, clock=clock) as client:
        body = await lip_sync_request(client, media_dir)
        sandbox.faults.fail("create", status=429, times=1000, retry_after="86400")
        task = asyncio.ensure_future(create_project(_Context(client, clock), body, lambda: False))  # type: ignore[arg-type]
        await move_clock_until(clock, task.done)
        with pytest.raises(RateLimited):
            await task
    assert sandbox.counters.jobs_created == 0
    assert sandbox.counters.requests["create"] == 5 * 2  # five rounds of the client's two attempts
    assert max(clock.sleep_calls) == 60.0
    assert sum(clock.sleep_calls) < 600


async def test_the_poller_asks_once_per_poll(open_services, media_dir: Path, tmp_path: Path, sandbox: Sandbox) -> None:
    """A 429 with Retry-After while polling is one request: the poller backs off itself, outside its gate."""
    services = await open_services()
    sandbox.faults.fail("get_project", status=429, times=3, retry_after="1")
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    assert (await services.engine.job(job_id)).state is JobState.DONE and len(keeper.delivered) == 1
    polls = services.metrics.polls_per_job.collect()[0]
    total_polls = next(s.value for s in polls.samples if s.name.endswith("_sum"))
    # Every get_project the sandbox saw was one of the poller's polls (the 3 refused ones included).
    assert sandbox.counters.requests["get_project"] == total_polls
    assert sandbox.counters.faults_injected["get_project:429"] == 3


async def test_a_delivery_that_fails_twice_is_retried_and_the_file_arrives(
    tmp_path: Path, sandbox: Sandbox, media_dir: Path
) -> None:
    """With the default patience, a paid render is retried with backoff and delivered as the file, not a link."""
    clock = FakeClock()
    settings = make_settings(tmp_path, sandbox.base_url, delivery_retry_minutes=30)
    services = await Services.open(settings, clock=clock)
    try:
        keeper = FailsTwice(tmp_path / "out")
        record = await services.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keeper))
        final: list[JobRecord] = []

        async def ended() -> None:
            while not (job := await services.engine.job(record.id)).state.terminal:
                await asyncio.sleep(0.005)
            final.append(job)

        waiter = asyncio.ensure_future(ended())
        await move_clock_until(clock, waiter.done)
        job = final[0]
        assert job.state is JobState.DONE and job.delivery_kind == "local"  # KeepFile: the file itself
        assert keeper.attempts == 3 and len(keeper.delivered) == 1 and keeper.links == []
        assert sandbox.counters.jobs_created == 1
    finally:
        await services.aclose()


class _CancelsAsItAnswers:
    """A stand-in for the client whose create answers in the very turn the job is cancelled.

    The race can't be timed against a real server: the cancel has to land between the answer and
    the job seeing it. Everything else about creating is tested against the sandbox.
    """

    def __init__(self) -> None:
        self.job: asyncio.Task[object] | None = None

    async def create_lip_sync(self, body: object) -> CreatedJob:
        """Cancel the job's task, then answer: both land in the same turn."""
        await asyncio.sleep(0)
        assert self.job is not None
        self.job.cancel()
        return CreatedJob(id="made-and-billed", credits_charged=45)


async def test_a_cancel_in_the_turn_the_create_answers_keeps_the_project() -> None:
    """The project Magic Hour made is returned (and the cancel reported), never dropped as if nothing was made."""
    client = _CancelsAsItAnswers()
    task = asyncio.ensure_future(create_project(_Context(client, FakeClock()), None, lambda: False))  # type: ignore[arg-type]
    client.job = task
    created, cancelled = await task
    assert created.id == "made-and-billed" and cancelled


class _StoppedWhileBusy:
    """A stand-in client whose first create answers 429 while the job's task is being stopped
    (a shutdown, or a lost lease: not the owner's cancel); a second create would succeed."""

    def __init__(self, *, in_flight: bool) -> None:
        self.in_flight = in_flight
        self.job: asyncio.Task[object] | None = None
        self.calls = 0

    async def create_lip_sync(self, body: object) -> CreatedJob:
        """Stop the job, answer 429 (at once, or a moment later); any later call succeeds."""
        self.calls += 1
        if self.calls > 1:
            return CreatedJob(id="made-after-the-stop", credits_charged=45)
        await asyncio.sleep(0)
        assert self.job is not None
        self.job.cancel()
        if self.in_flight:
            await asyncio.sleep(0)  # the answer comes a turn after the stop
        raise RateLimited("busy")


@pytest.mark.parametrize("in_flight", [False, True], ids=["same-turn", "in-flight"])
async def test_a_job_stopped_during_a_busy_create_makes_no_second_project(in_flight: bool) -> None:
    """A shutdown or a lost lease during a 429 ends the attempts: no project nobody would record."""
    client = _StoppedWhileBusy(in_flight=in_flight)
    task = asyncio.ensure_future(create_project(_Context(client, FakeClock()), None, lambda: False))  # type: ignore[arg-type]
    client.job = task
    with pytest.raises(asyncio.CancelledError):
        await task
    assert client.calls == 1
