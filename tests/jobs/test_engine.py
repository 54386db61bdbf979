"""The engine against the sandbox over real HTTP: success, every failure's refund, cancel, limits."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path

import av
import pytest

from bot import words
from bot.clock import FakeClock
from bot.config import GenerationMode, Settings
from bot.errors import InvalidInput, NotAllowed, QuotaExceeded
from bot.jobs.models import InputSource, JobHooks, JobRequest, JobUpdate
from bot.services import Services
from bot.store import JobState
from tests.conftest import KeepFile, RecordingSink, make_settings

GUILD = 1
USER = 42


class StateWaiter(RecordingSink):
    """A sink that can wait until the job reaches a state."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = asyncio.Condition()

    async def update(self, update: JobUpdate) -> None:
        await super().update(update)
        async with self._changed:
            self._changed.notify_all()

    async def reached(self, state: JobState) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: any(u.job.state is state for u in self.updates))


def file_request(media: Path, video: str = "face.mp4", audio: str = "voice.mp3", **kw: object) -> JobRequest:
    values: dict[str, object] = {
        "user_id": USER,
        "guild_id": GUILD,
        "channel_id": 7,
        "video": InputSource(filename=video, path=media / video, size=(media / video).stat().st_size),
        "audio": InputSource(filename=audio, path=media / audio, size=(media / audio).stat().st_size),
    }
    values.update(kw)
    return JobRequest(**values)  # type: ignore[arg-type]


async def run_job(services: Services, request: JobRequest, out: Path) -> tuple[RecordingSink, KeepFile, int]:
    sink, keeper = RecordingSink(), KeepFile(out)
    record = await services.engine.submit(request, JobHooks(sink=sink, deliverer=keeper))
    final = await services.engine.wait(record.id)
    return sink, keeper, final.id


def work_dir_is_empty(settings: Settings) -> bool:
    return not any(settings.work_dir.iterdir()) if settings.work_dir.exists() else True


async def test_success_delivers_the_clip_and_settles(open_services, media_dir: Path, tmp_path: Path, sandbox) -> None:
    """A file job renders, is delivered once as a valid MP4 with the given audio, and settles."""
    services = await open_services()
    sink, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE, job
    assert sink.states[0] == "received" and sink.states[-1] == "done"
    assert [s for s in sink.states if s in ("fetching", "uploading", "submitted")] == [
        "fetching",
        "uploading",
        "submitted",
    ]
    assert len(keeper.delivered) == 1
    with av.open(str(keeper.delivered[0])) as container:
        assert container.streams.video and container.streams.audio
        duration = float(container.duration or 0) / av.time_base
    # The window defaults to the audio's length (1.5 s) within the 2 s video.
    assert abs(duration - 1.5) < 0.2
    assert job.estimated_credits == 45  # ceil(1.5 s * 30 fps) * 1
    assert job.charged_credits is not None and job.charged_credits <= 45
    balance = await services.store.quota.limits(GUILD, USER, ())
    assert balance.used == job.charged_credits and balance.reserved == 0
    assert sandbox.counters.jobs_created == 1
    assert work_dir_is_empty(services.settings)
    # The status shows what the member has: before the reservation, then after it, with the reset.
    first, last = sink.updates[0], sink.updates[-1]
    assert (first.remaining_credits, first.credits_reserved) == (10_000, False)
    assert (last.remaining_credits, last.credits_reserved) == (10_000 - 45, True)
    assert last.resets_at is not None and last.resets_at > job.created_at


async def test_pro_mode_and_fps_cap_change_the_estimate(open_services, media_dir: Path, tmp_path: Path) -> None:
    """pro doubles credits per frame; max_fps lowers the frames counted."""
    services = await open_services()
    request = file_request(media_dir, mode=GenerationMode.PRO, max_fps=10.0, end=1.0)
    _, keeper, job_id = await run_job(services, request, tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE
    assert job.estimated_credits == 20  # 1 s * 10 fps * 2
    with av.open(str(keeper.delivered[0])) as container:
        assert float(container.streams.video[0].average_rate or 0) <= 10.5


@pytest.mark.parametrize(
    ("video", "audio", "code"),
    [
        pytest.param("liar.mp4", "voice.mp3", "name_mismatch", id="text-named-mp4"),
        pytest.param("face.mp4", "silent.mp4", "audio_is_video", id="video-in-audio-slot"),
    ],
)
async def test_bad_media_fails_free(open_services, media_dir, tmp_path, sandbox, video, audio, code) -> None:
    """Media that isn't what it claims fails before anything is spent or sent to Magic Hour."""
    services = await open_services()
    request = file_request(media_dir, video=video, audio=audio)
    try:
        _, keeper, job_id = await run_job(services, request, tmp_path / "out")
    except InvalidInput as exc:  # caught by the cheap checks before a job existed
        assert exc.code == code
        assert await services.store.jobs.recent_for_member(GUILD, USER) == []
    else:
        job = await services.store.jobs.get(job_id)
        assert job is not None and job.state is JobState.FAILED
        assert job.error_code == code
        assert job.error_data is not None and job.error_data.get("filename") in (video, audio)
        assert keeper.delivered == []
    assert sandbox.counters.jobs_created == 0
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 0
    assert work_dir_is_empty(services.settings)


def failure_text(job) -> str:
    """What the member reads about a failed job (plain text)."""
    return words.describe(job.error_code or "error", job.error_data or {})


async def assert_failed_and_refunded(services: Services, job_id: int, *, fragment: str) -> None:
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.FAILED, job
    assert job.error_code is not None and fragment in failure_text(job), failure_text(job)
    balance = await services.store.quota.limits(GUILD, USER, ())
    assert balance.used == 0 and balance.reserved == 0
    assert work_dir_is_empty(services.settings)


async def test_upload_failure_refunds(open_services, media_dir, tmp_path, sandbox) -> None:
    """Storage that keeps failing fails the job with a full refund and no create."""
    services = await open_services()
    sandbox.faults.fail("storage_put", status=500, times=50)
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    await assert_failed_and_refunded(services, job_id, fragment="")
    assert sandbox.counters.jobs_created == 0 and keeper.delivered == []


async def test_payment_required_refunds(open_services, media_dir, tmp_path, sandbox) -> None:
    """A 402 from Magic Hour fails the job with a refund and a message for the operator."""
    services = await open_services()
    sandbox.config.credits = 1
    _, _, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    await assert_failed_and_refunded(services, job_id, fragment="credits")
    assert sandbox.counters.requests["create"] == 1


async def test_job_error_refunds_with_a_useful_message(open_services, media_dir, tmp_path, sandbox) -> None:
    """A render that ends in `no_source_face` refunds and says what to change."""
    services = await open_services()
    sandbox.faults.job_error(code="no_source_face")
    _, _, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    await assert_failed_and_refunded(services, job_id, fragment="face")


async def test_uncertain_create_is_never_resent_nor_called_free(open_services, media_dir, tmp_path, sandbox) -> None:
    """A create whose answer is lost is not sent again, and what was set aside counts as spent."""
    services = await open_services()
    sandbox.faults.disconnect("create", times=1, after_effect=True)
    _, _, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.error_code == "unknown_at_magic_hour"
    assert job.charged_credits == 45 and "45 credits" in failure_text(job)
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 45
    assert sandbox.counters.requests["create"] == 1
    assert sandbox.counters.jobs_created == 1
    # The managers' report lists it by job, so the operator can find the project by its name.
    report = await services.store.quota.usage(GUILD)
    assert [j.id for j in report.uncertain] == [job_id]


async def test_a_rendered_result_that_cant_be_delivered_keeps_its_charge(open_services, media_dir, tmp_path) -> None:
    """Delivery retries, then a link, then it is given up: never refunded, since Magic Hour charged."""
    services = await open_services()
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    keeper.fail_with = RuntimeError("discord is down")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await services.engine.wait(record.id)
    job = await services.store.jobs.get(record.id)
    assert job is not None and job.state is JobState.FAILED and job.error_code == "delivery_failed"
    assert job.charged_credits == 45
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 45
    assert await services.store.check_invariants() == []


async def test_a_result_that_cant_be_downloaded_is_sent_as_a_link(open_services, media_dir, tmp_path, sandbox) -> None:
    """A download that keeps failing falls back to a link; the job is done and charged."""
    services = await open_services()
    sandbox.faults.fail("download", status=500, times=100)
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE and job.delivery_kind == "link"
    assert keeper.delivered == [] and len(keeper.links) == 1 and "/download/" in keeper.links[0]
    assert job.charged_credits == 45


async def test_cancel_after_submission_deletes_and_refunds(open_services, media_dir, tmp_path, sandbox) -> None:
    """Cancel while rendering: the project is deleted at Magic Hour and nothing is charged."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    sink, keeper = StateWaiter(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await sink.reached(JobState.SUBMITTED)
    with pytest.raises(NotAllowed):
        await services.engine.cancel(record.id, by_user_id=USER + 1)
    final = await services.engine.cancel(record.id, by_user_id=USER)
    assert final.state is JobState.CANCELED
    assert final.project_id is not None
    assert sandbox.projects[final.project_id].status == "canceled"
    assert sandbox.counters.requests["delete_project"] == 1
    balance = await services.store.quota.limits(GUILD, USER, ())
    assert balance.used == 0 and balance.reserved == 0
    assert keeper.delivered == [] and work_dir_is_empty(services.settings)


async def test_queue_positions_and_cancel_while_queued(open_services, media_dir, tmp_path, sandbox) -> None:
    """With one slot, later jobs wait in FIFO order with visible positions; a queued cancel is free."""
    services = await open_services(max_jobs_in_flight=1)
    sandbox.config.render_seconds = 3600
    first_sink = StateWaiter()
    first = await services.engine.submit(
        file_request(media_dir, user_id=1), JobHooks(sink=first_sink, deliverer=KeepFile(tmp_path / "a"))
    )
    await first_sink.reached(JobState.SUBMITTED)
    waiting = []
    for user in (2, 3, 4):
        sink = RecordingSink()
        record = await services.engine.submit(
            file_request(media_dir, user_id=user), JobHooks(sink=sink, deliverer=KeepFile(tmp_path / str(user)))
        )
        waiting.append((record, sink))
    assert [services.engine.queue_position(r.id) for r, _ in waiting] == [1, 2, 3]
    canceled = await services.engine.cancel(waiting[0][0].id, by_user_id=2)
    assert canceled.state is JobState.CANCELED
    assert [services.engine.queue_position(r.id) for r, _ in waiting[1:]] == [1, 2]
    await asyncio.sleep(0)  # let the position listeners run
    assert waiting[2][1].updates[-1].queue_position == 2
    assert sandbox.counters.jobs_created == 1
    await services.engine.cancel(first.id, by_user_id=1)


async def test_member_active_job_limit(open_services, media_dir, tmp_path, sandbox) -> None:
    """A member with a running job can't start another (default limit 1); it costs nothing."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    sink = StateWaiter()
    first = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=KeepFile(tmp_path)))
    with pytest.raises(QuotaExceeded) as refused:
        await services.engine.submit(
            file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path))
        )
    assert refused.value.code == "active_jobs" and "cancel" in refused.value.user_message
    assert len(await services.store.jobs.recent_for_member(GUILD, USER)) == 1
    await sink.reached(JobState.SUBMITTED)
    await services.engine.cancel(first.id, by_user_id=USER)


async def test_quota_refusal_names_limit_and_reset(open_services, media_dir, tmp_path, sandbox) -> None:
    """A job over the member's allowance fails free, naming the allowance and when it resets."""
    services = await open_services(default_member_credits=10)
    _, _, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.FAILED
    assert job.error_code == "quota_global_default"
    assert job.error_data is not None and job.error_data["resets_at"] and job.error_data["requested"] == 45
    assert sandbox.counters.requests["upload_urls"] == 0


async def test_restart_resumes_submitted_job_once(tmp_path, sandbox, media_dir) -> None:
    """An engine stopped after submission is followed by one that delivers once and settles once."""
    settings = make_settings(tmp_path, sandbox.base_url)
    sandbox.config.render_seconds = 3600
    first = await Services.open(settings)
    sink = StateWaiter()
    record = await first.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=KeepFile(tmp_path / "x")))
    await sink.reached(JobState.SUBMITTED)
    await first.aclose()
    stored = await _reopen_get(settings, record.id)
    assert stored.state is JobState.SUBMITTED

    # The render finishes while the bot is down.
    await sandbox.clock.advance(3601)
    second = await Services.open(settings)
    try:
        keeper = KeepFile(tmp_path / "after")
        resumed = await second.engine.resume(lambda job: JobHooks(sink=RecordingSink(), deliverer=keeper))
        assert [job.id for job in resumed] == [record.id]
        final = await second.engine.wait(record.id)
        assert final.state is JobState.DONE
        assert len(keeper.delivered) == 1
        again = await second.engine.resume(lambda job: JobHooks(sink=RecordingSink(), deliverer=keeper))
        assert again == [] and len(keeper.delivered) == 1
        balance = await second.store.quota.limits(GUILD, USER, ())
        assert balance.used == final.charged_credits and balance.reserved == 0
        assert sandbox.counters.jobs_created == 1
    finally:
        await second.aclose()


async def _reopen_get(settings: Settings, job_id: int):
    services = await Services.open(settings)
    try:
        job = await services.store.jobs.get(job_id)
        assert job is not None
        return job
    finally:
        await services.aclose()


async def test_restart_fails_unsubmitted_job_with_refund(tmp_path, sandbox, media_dir) -> None:
    """A job that hadn't reached Magic Hour when the bot stopped fails, refunded, with a message."""
    settings = make_settings(tmp_path, sandbox.base_url, max_jobs_in_flight=1)
    sandbox.config.render_seconds = 3600
    first = await Services.open(settings)
    blocker_sink = StateWaiter()
    await first.engine.submit(
        file_request(media_dir, user_id=1), JobHooks(sink=blocker_sink, deliverer=KeepFile(tmp_path))
    )
    await blocker_sink.reached(JobState.SUBMITTED)
    queued = await first.engine.submit(
        file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path))
    )
    await first.aclose()

    second = await Services.open(settings)
    try:
        sinks: dict[int, RecordingSink] = {}

        def hooks(job):
            sinks[job.id] = RecordingSink()
            return JobHooks(sink=sinks[job.id], deliverer=KeepFile(tmp_path / "late"))

        await second.engine.resume(hooks)
        job = await second.store.jobs.get(queued.id)
        assert job is not None and job.state is JobState.FAILED and job.error_code == "interrupted"
        assert sinks[queued.id].updates[-1].job.state is JobState.FAILED
        assert (await second.store.quota.limits(GUILD, USER, ())).used == 0
    finally:
        await second.aclose()


async def test_deadline_stops_the_render_and_charges_what_magic_hour_did(
    open_services, media_dir, tmp_path, sandbox
) -> None:
    """A render that outlives the job deadline is stopped at Magic Hour; it costs what Magic Hour charged (0)."""
    services = await open_services(job_deadline_minutes=0.01)
    sandbox.config.render_seconds = 3600
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.error_code == "deadline" and job.project_id
    assert job.charged_credits == sandbox.charged(job.project_id) == 0
    await assert_failed_and_refunded(services, job_id, fragment="the bot stopped it")
    assert keeper.delivered == []
    # The render was stopped at Magic Hour, so it doesn't go on costing the operator.
    assert sandbox.counters.requests["delete_project"] == 1
    assert sandbox.projects[job.project_id].status == "canceled"


class BlockingDeliverer(KeepFile):
    """Never finishes delivering: stands in for a bot that dies mid-delivery."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.entered = asyncio.Event()

    async def deliver(self, job, result, *, sandbox, link):
        self.entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


async def test_restart_during_delivery_delivers_once(tmp_path, sandbox, media_dir) -> None:
    """A bot stopped while delivering re-downloads and delivers on restart, settling once."""
    settings = make_settings(tmp_path, sandbox.base_url)
    first = await Services.open(settings)
    stuck = BlockingDeliverer(tmp_path / "never")
    record = await first.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=stuck))
    await stuck.entered.wait()
    await first.aclose()

    second = await Services.open(settings)
    try:
        keeper = KeepFile(tmp_path / "after")
        await second.engine.resume(lambda job: JobHooks(sink=RecordingSink(), deliverer=keeper))
        final = await second.engine.wait(record.id)
        assert final.state is JobState.DONE and len(keeper.delivered) == 1 and stuck.delivered == []
        entries = await second.store.quota.entries(record.id)
        assert [e.kind.value for e in entries] == ["reserve", "settle"]
        assert sandbox.counters.jobs_created == 1
    finally:
        await second.aclose()


async def test_many_jobs_queue_in_order(open_services, media_dir, tmp_path, sandbox) -> None:
    """Twelve members' jobs with two slots: positions are 1..10, and all finish in FIFO order."""
    services = await open_services(max_jobs_in_flight=2)
    sandbox.config.render_seconds = 30
    sinks, records = [], []
    started: list[int] = []  # jobs in the order they left the queue (began fetching)

    class StartOrder(RecordingSink):
        async def update(self, update: JobUpdate) -> None:
            await super().update(update)
            if update.job.state is JobState.FETCHING and update.job.id not in started:
                started.append(update.job.id)

    for user in range(100, 112):
        sink = StartOrder()
        records.append(
            await services.engine.submit(
                file_request(media_dir, user_id=user), JobHooks(sink=sink, deliverer=KeepFile(tmp_path / str(user)))
            )
        )
        sinks.append(sink)
    assert [services.engine.queue_position(r.id) for r in records] == [None, None, *range(1, 11)]
    # Finish renders as they arrive, until every job is done.
    pending = list(records)
    while pending:
        await sandbox.clock.advance(31)
        done = [r for r in pending if (await services.engine.job(r.id)).state.terminal]
        pending = [r for r in pending if r not in done]
        await asyncio.sleep(0.02)
    finals = [await services.engine.job(r.id) for r in records]
    assert all(f.state is JobState.DONE for f in finals)
    # They left the queue in the order the members asked. (Two jobs in the two slots run side by
    # side, so which of them reaches Magic Hour first is theirs to race.)
    ids = [r.id for r in records]
    assert set(started[:2]) == set(ids[:2]) and started[2:] == ids[2:]
    # Each waiting job saw its position count down to the front.
    last_positions = [[u.queue_position for u in s.updates if u.queue_position] for s in sinks[2:]]
    assert all(p and p[-1] == 1 for p in last_positions)


async def test_cancel_right_after_submit_frees_the_slot(open_services, media_dir, tmp_path, sandbox) -> None:
    """A job canceled before its task first runs is canceled and its slot goes to the next job."""
    services = await open_services(max_jobs_in_flight=1)
    first = await services.engine.submit(
        file_request(media_dir, user_id=1), JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path / "a"))
    )
    canceled = await services.engine.cancel(first.id, by_user_id=1)
    assert canceled.state is JobState.CANCELED
    _, keeper, second_id = await run_job(services, file_request(media_dir, user_id=2), tmp_path / "b")
    assert (await services.engine.job(second_id)).state is JobState.DONE
    assert len(keeper.delivered) == 1 and sandbox.counters.jobs_created == 1


async def test_spent_allowance_is_refused_before_any_download(open_services, media_dir, tmp_path, sandbox) -> None:
    """With nothing left, the cheap check refuses at once, naming the reset, and no job is created."""
    services = await open_services(default_member_credits=45)
    await run_job(services, file_request(media_dir), tmp_path / "first")  # uses all 45 credits
    with pytest.raises(QuotaExceeded) as refused:
        await services.engine.precheck(file_request(media_dir))
    assert refused.value.code == "quota_global_default_spent" and "no credits left today" in refused.value.user_message
    assert isinstance(refused.value.data["resets_at"], dt.datetime)
    assert len(await services.store.jobs.recent_for_member(GUILD, USER)) == 1


async def test_cancel_is_refused_once_the_result_is_being_delivered(tmp_path, sandbox, media_dir) -> None:
    """Once rendered and downloading/delivering, a cancel is refused: the result is on its way."""
    settings = make_settings(tmp_path, sandbox.base_url)
    services = await Services.open(settings)
    try:
        stuck = BlockingDeliverer(tmp_path / "x")
        record = await services.engine.submit(file_request(media_dir), JobHooks(sink=RecordingSink(), deliverer=stuck))
        await stuck.entered.wait()
        with pytest.raises(InvalidInput) as refused:
            await services.engine.cancel(record.id, by_user_id=USER)
        assert refused.value.code == "too_late"
    finally:
        await services.aclose()


async def test_two_cancels_at_once_cancel_once(open_services, media_dir, tmp_path, sandbox) -> None:
    """A double-click on Cancel: both calls end with the job canceled, and the project is deleted once."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    sink = StateWaiter()
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=KeepFile(tmp_path)))
    await sink.reached(JobState.SUBMITTED)
    first, second = await asyncio.gather(
        services.engine.cancel(record.id, by_user_id=USER), services.engine.cancel(record.id, by_user_id=USER)
    )
    assert first.state is JobState.CANCELED and second.state is JobState.CANCELED
    assert sandbox.counters.requests["delete_project"] == 1


async def test_cancel_after_the_render_finished_delivers_it(open_services, media_dir, tmp_path, sandbox) -> None:
    """A cancel that arrives after Magic Hour finished (before the bot noticed) delivers the paid-for result."""
    services = await open_services(poll_initial_seconds=3600, poll_max_seconds=3600)
    sandbox.config.render_seconds = 60
    sink, keeper = StateWaiter(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await sink.reached(JobState.SUBMITTED)
    await sandbox.clock.advance(61)  # finished at Magic Hour; the bot's next poll is an hour away
    final = await services.engine.cancel(record.id, by_user_id=USER)
    assert final.state is JobState.DONE and len(keeper.delivered) == 1
    assert sandbox.counters.requests["delete_project"] == 0
    balance = await services.store.quota.limits(GUILD, USER, ())
    assert balance.used == final.charged_credits and balance.reserved == 0


async def test_resume_past_the_deadline_asks_before_giving_up(tmp_path, sandbox, media_dir) -> None:
    """A job whose deadline passed while the bot was down, but which finished meanwhile, is delivered."""
    settings = make_settings(tmp_path, sandbox.base_url)
    sandbox.config.render_seconds = 3600
    first = await Services.open(settings)
    sink = StateWaiter()
    record = await first.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=KeepFile(tmp_path)))
    await sink.reached(JobState.SUBMITTED)
    await first.aclose()
    await sandbox.clock.advance(3601)

    late = make_settings(tmp_path, sandbox.base_url, job_deadline_minutes=0.0001)
    second = await Services.open(late)
    try:
        keeper = KeepFile(tmp_path / "after")
        await second.engine.resume(lambda job: JobHooks(sink=RecordingSink(), deliverer=keeper))
        final = await second.engine.wait(record.id)
        assert final.state is JobState.DONE and len(keeper.delivered) == 1
    finally:
        await second.aclose()


async def test_operator_default_fps_cap_applies_when_the_member_sets_none(open_services, media_dir, tmp_path) -> None:
    """DEFAULT_MAX_FPS caps a job that names no cap (fewer frames, fewer credits); a member's own cap wins."""
    services = await open_services(default_max_fps=10.0)
    _, _, job_id = await run_job(services, file_request(media_dir, end=1.0), tmp_path / "a")
    job = await services.engine.job(job_id)
    assert (job.max_fps, job.estimated_credits) == (10.0, 10)
    _, _, own_id = await run_job(services, file_request(media_dir, end=1.0, max_fps=20.0, user_id=7), tmp_path / "b")
    own = await services.engine.job(own_id)
    assert (own.max_fps, own.estimated_credits) == (20.0, 20)


async def test_only_a_canonical_youtube_link_reaches_magic_hour(open_services, media_dir, tmp_path, sandbox) -> None:
    """A share link with tracking goes on as https://www.youtube.com/watch?v=<id>, nothing else."""
    services = await open_services()
    audio = InputSource(filename="voice.mp3", path=media_dir / "voice.mp3")
    request = JobRequest(
        user_id=USER, guild_id=GUILD, audio=audio, youtube_url="https://youtu.be/dQw4w9WgXcQ?si=tracking", end=1.0
    )
    _, _, job_id = await run_job(services, request, tmp_path / "out")
    job = await services.engine.job(job_id)
    assert job.state is JobState.DONE and job.project_id is not None
    assert job.youtube_url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert sandbox.projects[job.project_id].youtube_url == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"


@pytest.mark.parametrize(("name", "expected"), [(None, "#{id} · lipsync-bot"), ("My clip", "#{id} · My clip")])
async def test_the_project_at_magic_hour_is_named_for_its_job(
    open_services, media_dir: Path, tmp_path: Path, sandbox, name: str | None, expected: str
) -> None:
    """The operator can match any project in Magic Hour's dashboard to its job, even one whose id was never recorded."""
    services = await open_services()
    _, _, job_id = await run_job(services, file_request(media_dir, name=name), tmp_path / "out")
    job = await services.engine.job(job_id)
    assert job.project_id is not None
    assert sandbox.projects[job.project_id].name == expected.format(id=job_id)


async def test_the_link_cooldown_remembers_only_recent_clicks(tmp_path: Path, media_dir: Path, sandbox) -> None:
    """Each fresh link is remembered for the cooldown, then forgotten: the memory stays as small as recent clicks."""
    clock = FakeClock()
    services = await Services.open(make_settings(tmp_path, sandbox.base_url), clock=clock)
    try:
        engine = services.engine
        jobs = [await services.store.jobs.create(file_request(media_dir).new_job()) for _ in range(3)]
        for record in jobs[:2]:
            await engine.allow_link(record.id, by_user_id=USER)
        with pytest.raises(NotAllowed):
            await engine.allow_link(jobs[0].id, by_user_id=USER)  # within the cooldown
        await clock.advance(engine.config.link_cooldown_seconds + 1)
        await engine.allow_link(jobs[2].id, by_user_id=USER)
        assert set(engine._links_made) == {jobs[2].id}
        await engine.allow_link(jobs[0].id, by_user_id=USER)  # its cooldown is over
    finally:
        await services.aclose()
