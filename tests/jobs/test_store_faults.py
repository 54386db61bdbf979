"""A database hiccup at any step of a job never loses a paid result nor delivers it twice.

The store refuses one write (as a locked SQLite file or a dropped PostgreSQL connection would)
on the transition into each state in turn, against the sandbox over HTTP. Whatever the step, the
job ends; its charge is what Magic Hour charged; a render Magic Hour completed is delivered
exactly once; a render it didn't complete was never left running.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.jobs.models import Delivery, JobHooks, LinkProvider
from bot.jobs.run import JobRun
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import KeepFile, RecordingSink, make_settings, move_clock_until
from tests.jobs.test_engine import USER, file_request

AFTER_ACCEPTED = [
    JobState.FETCHING,
    JobState.UPLOADING,
    JobState.CREATING,
    JobState.SUBMITTED,
    # RENDERING is left out: it is recorded from the poller's progress listener, whose failures
    # are logged and never end a wait (the sandbox here renders before a poll sees it running).
    JobState.DOWNLOADING,
    JobState.DELIVERING,
    JobState.DONE,
]


def refuse_once(services: Services, state: JobState, times: int = 1) -> list[JobState]:
    """Make the store refuse the first `times` transitions into `state`; returns the refusals made."""
    jobs = services.store.jobs
    real = jobs.transition
    refused: list[JobState] = []

    async def transition(job_id: int, to: JobState, *args: Any, **kwargs: Any) -> Any:
        if to is state and len(refused) < times:
            refused.append(to)
            raise sqlite3.OperationalError("database is locked")
        return await real(job_id, to, *args, **kwargs)

    jobs.transition = transition  # type: ignore[method-assign]
    return refused


@pytest.mark.parametrize("state", AFTER_ACCEPTED, ids=lambda s: s.value)
async def test_one_refused_write_at_any_step_loses_nothing(
    open_services, media_dir: Path, tmp_path: Path, sandbox: Sandbox, state: JobState
) -> None:
    """The family: recording any step fails once; money and result still follow Magic Hour."""
    services = await open_services()
    refused = refuse_once(services, state)
    keeper = KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keeper))
    final = await services.engine.wait(record.id)
    assert refused == [state]
    assert final.state.terminal
    if final.project_id is None:
        # Nothing reached Magic Hour (or nothing could be recorded of it): nothing made, nothing kept.
        assert sandbox.counters.jobs_created == 0 and not final.charged_credits
        assert keeper.delivered == [] and keeper.links == []
    else:
        project = sandbox.projects[final.project_id]
        assert final.charged_credits == sandbox.charged(final.project_id)
        if project.status == "complete":
            # Once: as the file, or (this test's settings give delivery no patience) as a link.
            assert final.state is JobState.DONE and len(keeper.delivered) + len(keeper.links) == 1
        else:
            assert project.status == "canceled" and keeper.delivered == [] and keeper.links == []
    assert sandbox.counters.jobs_created <= 1
    assert (await services.store.quota.limits(final.guild_id, final.user_id, ())).used == (final.charged_credits or 0)
    assert await services.store.check_invariants() == []


class HeldOpen(KeepFile):
    """A deliverer that waits, once it is called, until the test lets it go on."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.called = asyncio.Event()
        self.go_on = asyncio.Event()

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Say it was called, wait for the test, then deliver as `KeepFile` does."""
        self.called.set()
        await self.go_on.wait()
        return await super().deliver(job, result, sandbox=sandbox, link=link)


async def test_a_job_ended_after_its_runner_crashed_is_not_resumed_twice(
    open_services, media_dir: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    """Two refused writes make the runner and its first rescue crash; while the rescue delivers, a
    takeover round (or a resume) must leave the job alone, or the render would be posted twice."""
    services = await open_services()
    refused = refuse_once(services, JobState.DOWNLOADING, times=2)
    keeper = HeldOpen(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keeper))
    async with asyncio.timeout(30):
        await keeper.called.wait()
    assert refused == [JobState.DOWNLOADING, JobState.DOWNLOADING]
    # The takeover loop's round: this process's own unfinished job, but one it is still ending.
    assert await services.engine.resume(lambda r: JobHooks(sink=RecordingSink(), deliverer=keeper)) == []
    keeper.go_on.set()
    final = await services.engine.wait(record.id)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert final.charged_credits == sandbox.charged(str(final.project_id))
    assert await services.store.check_invariants() == []


async def test_a_cancel_while_a_crashed_job_is_being_ended_keeps_it_the_engine_s(
    media_dir: Path, tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner crashed and its rescue is reading Magic Hour; the member cancels: the job stays one of
    the engine's running jobs until the cancel has ended it, so no takeover round starts a second runner."""
    clock = FakeClock()
    services = await Services.open(make_settings(tmp_path, sandbox.base_url, job_deadline_minutes=2), clock=clock)
    try:
        engine = services.engine
        sandbox.config.render_seconds = 3600
        real_failed = JobRun.failed
        calls: list[BaseException] = []

        async def failed(self: JobRun, exc: BaseException) -> None:
            calls.append(exc)
            if len(calls) == 1:
                raise sqlite3.OperationalError("database is locked")  # ending it crashed too
            await real_failed(self, exc)  # the rescue

        async def broken_top_up(*_: Any, **__: Any) -> Any:
            raise RuntimeError("the runner's first failure")

        sandbox.config.create_surcharge = 2.0  # so the create is topped up, and that fails
        monkeypatch.setattr(engine.admission, "top_up", broken_top_up)
        monkeypatch.setattr(JobRun, "failed", failed)
        sandbox.faults.storm("get_project", times=10_000)  # the rescue's and the cancel's reads take a while
        keeper = KeepFile(tmp_path / "out")
        record = await engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keeper))
        await move_clock_until(clock, lambda: len(calls) == 2)
        canceling = asyncio.ensure_future(engine.cancel(record.id, by_user_id=USER))
        await move_clock_until(clock, lambda: engine._runs[record.id].cancel_requested)
        await clock.advance(5)  # the cancel is reading Magic Hour now
        assert record.id in engine._tasks
        assert await engine.resume(lambda r: JobHooks(sink=RecordingSink(), deliverer=keeper)) == []
        await move_clock_until(clock, canceling.done)
        assert not canceling.result().state.terminal  # Magic Hour can't say yet: still stopping
        assert record.id in engine._tasks
        assert await engine.resume(lambda r: JobHooks(sink=RecordingSink(), deliverer=keeper)) == []
        ending = asyncio.ensure_future(engine.wait(record.id))
        await move_clock_until(clock, ending.done)  # out of time, never read: unknown, counted
        final = ending.result()
        assert final.state is JobState.FAILED and final.error_code == "unknown_at_magic_hour"
        assert final.error_data is not None and final.error_data["reason"] == "canceled_unreadable"
        assert keeper.delivered == [] and await services.store.check_invariants() == []
    finally:
        await services.aclose()


async def test_a_cancel_whose_ending_write_fails_answers_with_how_the_job_ended(
    open_services, media_dir: Path, tmp_path: Path, sandbox: Sandbox
) -> None:
    """Recording the cancel fails once: the member still gets the job's ending (from its rescue), not the error."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    refused = refuse_once(services, JobState.CANCELED)
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    async with asyncio.timeout(30):
        while not any(u.job.state is JobState.SUBMITTED for u in sink.updates):
            await asyncio.sleep(0.01)  # real time: the job is at the sandbox
    final = await services.engine.cancel(record.id, by_user_id=USER)
    assert refused == [JobState.CANCELED]
    assert final.state.terminal and keeper.delivered == []
    assert final.project_id is not None and sandbox.projects[final.project_id].status == "canceled"
    assert final.charged_credits in (0, None) and await services.store.check_invariants() == []
