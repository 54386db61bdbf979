"""Cost integrity at the engine, against the sandbox over HTTP: the ledger mirrors Magic Hour.

Each test is one way a member (or an odd endpoint) could make the bot spend credits nobody
budgeted; each checks that the ledger's charge equals what the sandbox charged, and that the
store's invariants hold.
"""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.config import GenerationMode
from bot.errors import QuotaExceeded
from bot.jobs.models import InputSource, JobHooks, JobRequest
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobState, LedgerKind
from bot.testmedia import make_audio, make_sparse_video, make_vfr_video
from tests.conftest import KeepFile, RecordingSink, make_settings, move_clock_until
from tests.jobs.test_engine import GUILD, USER, StateWaiter, file_request, run_job


async def ledger_matches_sandbox(services: Services, sandbox: Sandbox, job_id: int) -> int:
    """The job's final charge, after checking it is exactly what the sandbox charged for its project."""
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.project_id is not None
    assert job.charged_credits == sandbox.charged(job.project_id), (job.charged_credits, job.project_id)
    assert await services.store.check_invariants() == []
    return job.charged_credits


async def test_create_charging_more_is_topped_up_and_settled_to_the_real_charge(
    open_services, media_dir, tmp_path, sandbox
) -> None:
    """A create answer above the reservation tops it up (within the limits); it settles to Magic Hour's charge."""
    services = await open_services()
    sandbox.config.create_surcharge = 2.0  # 45 estimated, 90 held at create
    _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE and len(keeper.delivered) == 1
    kinds = [e.kind for e in await services.store.quota.entries(job_id)]
    assert kinds == [LedgerKind.RESERVE, LedgerKind.TOPUP, LedgerKind.SETTLE]
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 45


async def test_create_charging_beyond_the_limits_is_stopped_at_once(
    open_services, media_dir, tmp_path, sandbox, caplog
) -> None:
    """When the limits can't cover what Magic Hour charged at create, the render is stopped and the member told."""
    services = await open_services()
    await services.store.limits.set_member_limit(GUILD, USER, 60)  # 45 fits; 90 doesn't
    sandbox.config.create_surcharge = 2.0
    sandbox.config.render_seconds = 3600
    with caplog.at_level(logging.WARNING, logger="bot.jobs.run"):
        _, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.FAILED and job.error_code == "over_budget_at_create"
    assert job.error_data == {"charged": 90, "reserved": 45}
    assert job.project_id is not None and sandbox.projects[job.project_id].status == "canceled"
    assert sandbox.counters.requests["delete_project"] == 1 and keeper.delivered == []
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 0
    assert any("can't cover the rest" in r.getMessage() for r in caplog.records)
    limits = await services.store.quota.limits(GUILD, USER, ())
    assert limits.used == 0 and limits.reserved == 0


async def test_cancel_while_rendering_costs_what_magic_hour_charged(
    open_services, media_dir, tmp_path, sandbox
) -> None:
    """Cancel after submission settles to the charge read back from Magic Hour (0 for a stopped render)."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    sink, keeper = StateWaiter(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await sink.reached(JobState.SUBMITTED)
    final = await services.engine.cancel(record.id, by_user_id=USER)
    assert final.state is JobState.CANCELED and final.charged_credits == 0
    assert await ledger_matches_sandbox(services, sandbox, record.id) == 0


async def test_a_sparse_file_cant_shrink_the_estimate(open_services, tmp_path, sandbox) -> None:
    """3 frames over 60 s once reserved 0 credits; now it is priced at the cap and refused beyond the allowance."""
    await make_sparse_video(tmp_path / "sparse.mp4")
    await make_audio(tmp_path / "long.mp3", seconds=60.0)
    services = await open_services(default_member_credits=1000)
    request = file_request(tmp_path, video="sparse.mp4", audio="long.mp3", mode=GenerationMode.PRO, end=60.0)
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(request, JobHooks(sink=sink, deliverer=keeper))
    final = await services.engine.wait(record.id)
    assert final.state is JobState.FAILED and final.error_code == "quota_global_default"
    assert final.error_data is not None and final.error_data["requested"] == 3600
    assert sandbox.counters.requests["upload_urls"] == 0 and sandbox.counters.jobs_created == 0
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 0


async def test_a_variable_rate_file_is_reserved_at_the_cap_and_settles_to_the_real_frames(
    open_services, tmp_path, sandbox
) -> None:
    """A VFR file is priced at the cap (never a lower rate read from the file) and settles to what rendered."""
    await make_vfr_video(tmp_path / "vfr.mp4")
    await make_audio(tmp_path / "voice.mp3", seconds=6.0)
    services = await open_services()
    request = file_request(tmp_path, video="vfr.mp4", audio="voice.mp3")
    _, _, job_id = await run_job(services, request, tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.state is JobState.DONE, job
    assert job.estimated_credits == 180  # 6 s at the 30 fps cap
    charged = await ledger_matches_sandbox(services, sandbox, job_id)
    assert 0 < charged <= 180


@pytest.mark.parametrize("identify", [True, False])
async def test_a_result_is_labelled_sandbox_only_when_the_server_says_so(
    open_services, media_dir, tmp_path, sandbox, identify
) -> None:
    """Never guessed from the URL: an endpoint that doesn't identify as the sandbox is real money."""
    sandbox.config.identify = identify
    services = await open_services()
    sink, keeper, job_id = await run_job(services, file_request(media_dir), tmp_path / "out")
    assert keeper.sandbox_flags == [identify]
    # KeepFile prefixes a counter: "0-<the engine's name for the result>".
    assert keeper.delivered[0].name == (f"0-sandbox-lipsync-{job_id}.mp4" if identify else f"0-lipsync-{job_id}.mp4")
    assert sink.updates[-1].sandbox is identify


async def test_a_spent_pool_refuses_even_the_smallest_job(open_services, media_dir, sandbox) -> None:
    """Every amount goes through every limit: with the server's pool spent, nothing starts."""
    services = await open_services()
    await services.store.limits.set_server_pool(GUILD, 0)
    with pytest.raises(QuotaExceeded) as refused:
        await services.engine.precheck(file_request(media_dir))
    assert refused.value.code == "quota_server_pool_spent"
    assert sandbox.counters.requests["upload_urls"] == 0


async def test_a_cancel_that_cant_read_the_project_follows_it_then_ends_unknown_not_canceled(
    fake_clock, media_dir, tmp_path, sandbox
) -> None:
    """Cancel while Magic Hour can't be read: nothing deleted blind, nothing refunded blind; the member
    hears it is still stopping, and once the job is out of time (its deadline and a grace) it is
    unknown at Magic Hour (its reservation counted) for the operator to reconcile."""
    clock = fake_clock
    services = await Services.open(make_settings(tmp_path, sandbox.base_url, job_deadline_minutes=2), clock=clock)
    sandbox.config.render_seconds = 3600
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await move_clock_until(clock, lambda: any(u.job.state is JobState.SUBMITTED for u in sink.updates))
    sandbox.faults.storm("get_project", times=10_000)
    canceling = asyncio.ensure_future(services.engine.cancel(record.id, by_user_id=USER))
    await move_clock_until(clock, canceling.done)
    assert not canceling.result().state.terminal  # a minute on, Magic Hour still can't say: still stopping
    ending = asyncio.ensure_future(services.engine.wait(record.id))
    try:
        await move_clock_until(clock, ending.done)
        final = ending.result()
        assert final.state is JobState.FAILED and final.error_code == "unknown_at_magic_hour"
        assert final.error_data == {"reserved": 45, "reason": "canceled_unreadable"} and final.charged_credits == 45
        assert sandbox.counters.requests["delete_project"] == 0 and keeper.delivered == []
        assert [j.id for j in await services.store.jobs.unknown_at_magic_hour(GUILD, record.created_at)] == [record.id]
        # The operator looks it up: Magic Hour rendered it and charged 45 (the render went on).
        await services.store.quota.reconcile(record.id, 45)
        assert await services.store.check_invariants() == []
    finally:
        await services.aclose()


async def test_a_cancel_waits_out_a_short_storm_and_stops_the_render(
    on_fake_clock, fake_clock, media_dir, tmp_path, sandbox
) -> None:
    """Magic Hour can't be read for a few tries, then can: the render is stopped and the job costs what it charged."""
    services, clock = on_fake_clock, fake_clock
    sandbox.config.render_seconds = 3600
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await move_clock_until(clock, lambda: any(u.job.state is JobState.SUBMITTED for u in sink.updates))
    sandbox.faults.storm("get_project", times=8)  # two reads' worth of the client's retries
    canceling = asyncio.ensure_future(services.engine.cancel(record.id, by_user_id=USER))
    await move_clock_until(clock, canceling.done)
    final = canceling.result()
    assert final.state is JobState.CANCELED, (final.error_code, sandbox.counters.faults_injected)
    assert sandbox.counters.requests["delete_project"] == 1
    assert await ledger_matches_sandbox(services, sandbox, record.id) == 0


async def test_an_over_budget_render_that_cant_be_read_ends_unknown_at_its_create_charge(
    on_fake_clock, fake_clock, media_dir, tmp_path, sandbox
) -> None:
    """Over the limits at create and Magic Hour unreadable: nothing deleted blind; counted at Magic Hour's charge."""
    services, clock = on_fake_clock, fake_clock
    await services.store.limits.set_member_limit(GUILD, USER, 60)  # 45 fits; 90 doesn't
    sandbox.config.create_surcharge = 2.0
    sandbox.config.render_seconds = 3600
    sandbox.faults.storm("get_project", times=10_000)
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await move_clock_until(clock, lambda: any(u.job.state.terminal for u in sink.updates))
    final = await services.engine.job(record.id)
    assert final.state is JobState.FAILED and final.error_code == "unknown_at_magic_hour"
    assert final.error_data == {"reserved": 90, "reason": "over_budget_unreadable"}
    assert final.charged_credits == 90 and sandbox.counters.requests["delete_project"] == 0
    assert await services.store.check_invariants() == []


async def test_a_cancel_during_the_create_counts_at_least_the_create_charge(
    fake_clock, media_dir, tmp_path, sandbox
) -> None:
    """Cancel while the create is in flight; it charges 90 against 45 held; then nothing can be read
    until the job is out of time: it ends unknown at what Magic Hour's create answer said, not at
    the smaller reservation."""
    clock = fake_clock
    services = await Services.open(make_settings(tmp_path, sandbox.base_url, job_deadline_minutes=2), clock=clock)
    sandbox.config.render_seconds = 3600
    sandbox.config.create_surcharge = 2.0
    sandbox.faults.hang("create")  # made and billed at Magic Hour; its answer held back
    sink, keeper = RecordingSink(), KeepFile(tmp_path / "out")
    record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
    await move_clock_until(clock, lambda: sandbox.counters.jobs_created == 1)
    canceling = asyncio.ensure_future(services.engine.cancel(record.id, by_user_id=USER))
    await move_clock_until(clock, lambda: services.engine._runs[record.id].cancel_requested)
    sandbox.faults.storm("get_project", times=10_000)
    sandbox.faults.release()
    try:
        await move_clock_until(clock, canceling.done)
        ending = asyncio.ensure_future(services.engine.wait(record.id))
        await move_clock_until(clock, ending.done)
        final = ending.result()
        assert final.state is JobState.FAILED and final.error_code == "unknown_at_magic_hour"
        assert final.charged_credits == 90 and final.error_data == {"reserved": 90, "reason": "canceled_unreadable"}
        assert await services.store.check_invariants() == []
    finally:
        await services.aclose()


async def test_a_60_fps_youtube_video_under_a_60_cap_is_reserved_what_it_renders(
    open_services, media_dir, tmp_path, sandbox
) -> None:
    """The bot can't see a YouTube video's rate; Magic Hour renders it at its own (60 here) under the cap:
    the reservation covers that, and the job settles to what was charged."""
    services = await open_services()
    sandbox.config.youtube_fps = 60.0
    audio = InputSource(filename="voice.mp3", path=media_dir / "voice.mp3")
    request = JobRequest(
        user_id=USER, guild_id=GUILD, audio=audio, youtube_url="https://youtu.be/dQw4w9WgXcQ", end=1.0, max_fps=60.0
    )
    _, _, job_id = await run_job(services, request, tmp_path / "out")
    job = await services.engine.job(job_id)
    assert job.state is JobState.DONE
    assert await ledger_matches_sandbox(services, sandbox, job_id) == 60  # 1 s at 60 fps
    assert job.estimated_credits is not None and job.estimated_credits >= 60  # reserved, not 30
