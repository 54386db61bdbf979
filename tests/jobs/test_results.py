"""No paid result is lost: a submitted job ends only on what Magic Hour says, read back.

Odd answers while polling, a 5xx storm at the deadline, and a storm of faults over many jobs, all
against the sandbox over HTTP.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.jobs.models import Delivery, JobHooks, LinkProvider
from bot.magichour import (
    LipSyncAssets,
    LipSyncRequest,
    LipSyncStyle,
    MagicHourClient,
    UploadItem,
)
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobRecord, JobState
from tests.conftest import KeepFile, RecordingSink, make_settings, move_clock_until
from tests.jobs.test_engine import StateWaiter, file_request, run_job
from tests.jobs.test_money import ledger_matches_sandbox


@pytest.mark.parametrize(
    "fault",
    ["409", "404", "malformed", "unknown_status", "storm"],
)
async def test_odd_status_answers_are_temporary(open_services, media_dir, tmp_path, sandbox, fault, caplog) -> None:
    """A 409, a 404, a body that doesn't parse, a status the bot doesn't know, a 5xx run: it keeps asking."""
    services = await open_services()
    if fault in ("409", "404"):
        sandbox.faults.fail("get_project", status=int(fault), times=3)
    elif fault == "malformed":
        sandbox.faults.malformed("get_project", times=3)
    elif fault == "unknown_status":
        sandbox.faults.unknown_status(times=3)
    else:
        sandbox.faults.storm("get_project", times=6)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.poller"):
        _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    final = await services.engine.job(job_id)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45
    assert sandbox.counters.requests["delete_project"] == 0
    if fault != "storm":  # one line per kind of odd answer, not one per poll, and no traceback
        odd = [r for r in caplog.records if "odd answer" in r.getMessage()]
        assert len(odd) == 1 and odd[0].exc_info is None


async def lip_sync_request(client: MagicHourClient, media: Path) -> LipSyncRequest:
    """A create body for a one-second clip whose files are uploaded to the sandbox."""
    video, audio = await client.create_upload_urls(
        [UploadItem(type="video", extension="mp4"), UploadItem(type="audio", extension="mp3")]
    )
    await client.upload_file(video.upload_url, media / "face.mp4")
    await client.upload_file(audio.upload_url, media / "voice.mp3")
    assets = LipSyncAssets(video_source="file", video_file_path=video.file_path, audio_file_path=audio.file_path)
    return LipSyncRequest(
        start_seconds=0.0, end_seconds=1.0, assets=assets, style=LipSyncStyle(generation_mode=GenerationMode.LITE)
    )


async def test_a_storm_at_the_deadline_doesnt_lose_a_finished_render(
    open_services, media_dir, tmp_path, sandbox
) -> None:
    """Reads fail from before the deadline; once one succeeds and shows it complete, it is delivered."""
    services = await open_services(job_deadline_minutes=0.01)
    sandbox.config.render_seconds = 10
    sink, keeper = StateWaiter(), KeepFile(tmp_path / "out")
    sandbox.faults.storm("get_project", seconds=5)  # every read fails until the sandbox clock moves 5 s
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await sink.reached(JobState.SUBMITTED)
    # The poller lets go of the job at its deadline; the engine is then asking, read after read.
    async with asyncio.timeout(30):
        while services.engine.poller.polls_for((await services.engine.job(record.id)).project_id or "") is not None:
            await asyncio.sleep(0.01)
    await sandbox.clock.advance(11)  # the storm passes, and the render has finished
    final = await services.engine.wait(record.id)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert sandbox.counters.requests["delete_project"] == 0
    assert await ledger_matches_sandbox(services, sandbox, record.id) == 45


@pytest.mark.slow
async def test_fault_storm_every_job_delivered_once(tmp_path: Path, sandbox: Sandbox, media_dir: Path) -> None:
    """50 jobs while 20 % of status reads and 30 % of creates misbehave: all delivered, no duplicates."""
    from tests.conftest import make_settings

    sandbox.faults.randomly("get_project", rate=0.2, kinds=[409, 500, 503, "malformed", "unknown_status"], seed=1)
    sandbox.faults.randomly("create", rate=0.3, kinds=[429], seed=2)
    settings = make_settings(tmp_path, sandbox.base_url, max_jobs_in_flight=8, max_concurrent_transfers=8)
    services = await Services.open(settings)
    try:
        keepers = {user: KeepFile(tmp_path / f"out-{user}") for user in range(1000, 1050)}
        records = [
            await services.engine.submit(
                file_request(media_dir, user_id=user), JobHooks(sink=RecordingSink(), deliverer=keeper)
            )
            for user, keeper in keepers.items()
        ]
        finals = await asyncio.gather(*(services.engine.wait(r.id) for r in records))
        assert [f.state for f in finals] == [JobState.DONE] * 50
        assert all(len(k.delivered) == 1 for k in keepers.values())
        assert sandbox.counters.jobs_created == 50  # zero duplicate creates
        for final in finals:
            assert final.project_id is not None
            assert final.charged_credits == sandbox.charged(final.project_id)
        assert sum(f.charged_credits or 0 for f in finals) == sandbox.charged_total
        assert await services.store.check_invariants() == []
        injected = sandbox.counters.faults_injected
        assert injected.get("create:429", 0) > 0 and sum(v for k, v in injected.items() if "get_project" in k) > 0
        print(f"fault storm: {dict(itertools.islice(sorted(injected.items()), 20))}")
    finally:
        await services.aclose()


@pytest.mark.parametrize("status", [401, 403])
async def test_a_refused_key_while_following_is_waited_out_and_the_operator_alerted(
    open_services, media_dir, tmp_path, sandbox, status, caplog
) -> None:
    """The key is refused for a few reads (the operator is rotating it): the paid render is still delivered,
    the refusals are counted, and the log says so at error level, once."""
    services = await open_services()
    sandbox.faults.fail("get_project", status=status, times=3)
    with caplog.at_level(logging.WARNING, logger="bot.jobs.poller"):
        _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    final = await services.engine.job(job_id)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45
    assert services.metrics.key_refusals._value.get() == 3
    alerts = [r for r in caplog.records if "refuses the bot's API key" in r.getMessage()]
    assert len(alerts) == 1 and alerts[0].levelno == logging.ERROR


async def test_a_read_without_its_charge_is_an_odd_answer_not_zero(open_services, media_dir, tmp_path, sandbox) -> None:
    """Magic Hour says complete but leaves out credits_charged a few times: the job waits for the charge,
    and settles to it (a missing money field is never read as 0)."""
    services = await open_services()
    sandbox.faults.no_charge(times=3)
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    final = await services.engine.job(job_id)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45
    assert sandbox.counters.faults_injected["get_project:no_charge"] == 3


class LinkAfterARefusedRead(KeepFile):
    """Discord refuses every file; the first link is asked for while Magic Hour refuses one read."""

    def __init__(self, folder: Path, sandbox: Sandbox, refusal: int, times: int) -> None:
        super().__init__(folder)
        self.sandbox, self.refusal, self.times, self.link_tries = sandbox, refusal, times, 0

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        if result is not None:
            raise ConnectionError("Discord refused the file")
        self.link_tries += 1
        if self.link_tries == 1:
            self.sandbox.faults.fail("get_project", status=self.refusal, times=self.times)
        return await super().deliver(job, result, sandbox=sandbox, link=link)


@pytest.mark.parametrize(("refusal", "times"), [(403, 1), (503, 10)])  # 10: past the client's own retries
async def test_a_link_is_retried_when_a_read_of_the_project_fails(
    tmp_path: Path, sandbox: Sandbox, fake_clock: FakeClock, media_dir: Path, refusal: int, times: int
) -> None:
    """Files keep failing, then the read behind the link is refused: the link is asked for again
    (a paid render is never given up on one failed attempt), and the job is done, charged 45."""
    settings = make_settings(tmp_path, sandbox.base_url, delivery_retry_minutes=1.0)
    services = await Services.open(settings, clock=fake_clock)
    try:
        keeper = LinkAfterARefusedRead(tmp_path / "out", sandbox, refusal, times)
        record = await services.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=keeper))
        waiter = asyncio.ensure_future(services.engine.wait(record.id))
        await move_clock_until(fake_clock, waiter.done)
        job = waiter.result()
        assert job.state is JobState.DONE and job.delivery_kind == "link"
        assert keeper.link_tries >= 2 and len(keeper.links) == 1
        assert await ledger_matches_sandbox(services, sandbox, record.id) == 45
    finally:
        await services.aclose()
