"""A stop (cancel, deadline, over budget) ends a job only on a read that says how the render ended.

Against the sandbox over HTTP, on a fake clock: a DELETE that fails leaves the job following its
project, never ended on a read that still says rendering; a DELETE is sent only right after a read
that asked for it, so a render that completed meanwhile is delivered, never destroyed; a project
that can't be read is never deleted.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.clock import FakeClock
from bot.jobs.models import JobHooks
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobState
from tests.conftest import KeepFile, move_clock_until
from tests.jobs.test_engine import USER, StateWaiter, file_request
from tests.jobs.test_money import ledger_matches_sandbox


async def _rendering_job(services: Services, sandbox: Sandbox, media: Path, out: Path) -> tuple[int, KeepFile]:
    sandbox.config.render_seconds = 3600
    sink, keeper = StateWaiter(), KeepFile(out)
    record = await services.engine.submit(file_request(media), JobHooks(sink=sink, deliverer=keeper))
    async with asyncio.timeout(30):
        await sink.reached(JobState.SUBMITTED)
    return record.id, keeper


async def _finish_render(sandbox: Sandbox) -> None:
    """Move the sandbox's own clock past the render: Magic Hour has finished it, and billed it."""
    assert isinstance(sandbox.clock, FakeClock)
    await sandbox.clock.advance(3601)


async def _until(condition: object) -> None:
    async with asyncio.timeout(30):
        while not condition():  # type: ignore[operator]
            await asyncio.sleep(0.005)


async def test_a_cancel_whose_delete_fails_follows_the_render_and_delivers_it(
    on_fake_clock: Services, fake_clock: FakeClock, sandbox: Sandbox, media_dir: Path, tmp_path: Path
) -> None:
    """Every DELETE fails: the member hears it is still stopping; the render completes and is delivered, charged."""
    services = on_fake_clock
    job_id, keeper = await _rendering_job(services, sandbox, media_dir, tmp_path / "out")
    sandbox.faults.fail("delete_project", status=500, times=10_000)
    cancel = asyncio.ensure_future(services.engine.cancel(job_id, by_user_id=USER))
    await move_clock_until(fake_clock, cancel.done)
    answer = cancel.result()
    assert not answer.state.terminal  # not ended on a read that still says rendering
    assert sandbox.counters.deletes >= 1
    await _finish_render(sandbox)  # Magic Hour finished it anyway, and billed it
    waiter = asyncio.ensure_future(services.engine.wait(job_id))
    await move_clock_until(fake_clock, waiter.done)
    final = waiter.result()
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45


async def test_a_cancel_whose_delete_takes_later_ends_canceled_at_magic_hours_charge(
    on_fake_clock: Services, fake_clock: FakeClock, sandbox: Sandbox, media_dir: Path, tmp_path: Path
) -> None:
    """Two DELETEs fail, the third takes: the job ends canceled, charged what Magic Hour charged (0)."""
    services = on_fake_clock
    job_id, keeper = await _rendering_job(services, sandbox, media_dir, tmp_path / "out")
    sandbox.faults.fail("delete_project", status=503, times=2)
    cancel = asyncio.ensure_future(services.engine.cancel(job_id, by_user_id=USER))
    await move_clock_until(fake_clock, cancel.done)
    final = cancel.result()
    assert final.state is JobState.CANCELED and keeper.delivered == []
    assert sandbox.counters.deletes == 3
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 0


async def test_a_delete_is_never_resent_without_reading_first(
    on_fake_clock: Services, fake_clock: FakeClock, sandbox: Sandbox, media_dir: Path, tmp_path: Path
) -> None:
    """A DELETE answered 503; the render completes before anyone asks again: it is delivered, not deleted."""
    services = on_fake_clock
    job_id, keeper = await _rendering_job(services, sandbox, media_dir, tmp_path / "out")
    sandbox.faults.fail("delete_project", status=503, times=1)
    cancel = asyncio.ensure_future(services.engine.cancel(job_id, by_user_id=USER))
    await _until(lambda: sandbox.counters.deletes == 1)  # the first DELETE has failed
    await _finish_render(sandbox)  # and the render completes before the bot asks again
    await move_clock_until(fake_clock, cancel.done)
    waiter = asyncio.ensure_future(services.engine.wait(job_id))
    await move_clock_until(fake_clock, waiter.done)
    final = waiter.result()
    assert sandbox.counters.deletes == 1  # never resent: the next read found it complete
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45


async def test_a_cancel_never_deletes_what_it_couldnt_read(
    on_fake_clock: Services, fake_clock: FakeClock, sandbox: Sandbox, media_dir: Path, tmp_path: Path
) -> None:
    """Reads fail while the member cancels: no DELETE; once a read works and shows it complete, it is delivered."""
    services = on_fake_clock
    job_id, keeper = await _rendering_job(services, sandbox, media_dir, tmp_path / "out")
    sandbox.faults.storm("get_project", times=100_000)
    cancel = asyncio.ensure_future(services.engine.cancel(job_id, by_user_id=USER))
    await move_clock_until(fake_clock, cancel.done)
    assert not cancel.result().state.terminal
    assert sandbox.counters.deletes == 0
    sandbox.faults.clear()
    await _finish_render(sandbox)
    waiter = asyncio.ensure_future(services.engine.wait(job_id))
    await move_clock_until(fake_clock, waiter.done)
    final = waiter.result()
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert sandbox.counters.deletes == 0
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45
