"""Prices said before a job starts: the quote (likely cost and hold), refusals that say which figure
didn't fit and offer fixes, and parts that would be cut announced before anything is held.

Against the sandbox over real HTTP, through the engine, as a member's job runs.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from bot import words
from bot.config import GenerationMode
from bot.jobs.fixes import FixKind, fixes_in
from bot.jobs.models import InputSource, JobHooks, JobRequest, JobUpdate
from bot.jobs.quote import Binding, Pricing, Quote, Short, quote_of
from bot.services import Services
from bot.store import JobState, LedgerEntry
from bot.testmedia import make_audio
from tests.conftest import KeepFile
from tests.jobs.test_engine import GUILD, USER, file_request, run_job


class LedgerAtRefusal:
    """A sink that, when the job is seen refused, reads its ledger rows at that very moment."""

    def __init__(self, services: Services) -> None:
        self._services = services
        self.rows_when_told: list[LedgerEntry] | None = None
        self.told: JobUpdate | None = None

    async def update(self, update: JobUpdate) -> None:
        if update.job.state is JobState.FAILED and self.told is None:
            self.told = update
            self.rows_when_told = list(await self._services.store.quota.entries(update.job.id))


@pytest.fixture
async def long_voice(tmp_path: Path) -> Path:
    """A 5 s voice: longer than the 2 s `face.mp4`."""
    return await make_audio(tmp_path / "long-voice.mp3", seconds=5.0, tone_hz=440)


def with_voice(request: JobRequest, voice: Path) -> JobRequest:
    return dataclasses.replace(request, audio=InputSource(filename=voice.name, path=voice, size=voice.stat().st_size))


async def test_a_long_voice_on_a_short_video_is_announced_before_anything_is_held(
    open_services, media_dir: Path, tmp_path: Path, sandbox, long_voice: Path
) -> None:
    """5 s of voice on a 2 s video: the member is told only 0-2 s would render, with that part priced;
    when they are told, the ledger has no row for the job, nothing went to Magic Hour, nothing is used."""
    services = await open_services()
    sink = LedgerAtRefusal(services)
    request = with_voice(file_request(media_dir), long_voice)
    record = await services.engine.submit(request, JobHooks(sink=sink, deliverer=KeepFile(tmp_path / "out")))
    job = await services.engine.wait(record.id)

    assert job.state is JobState.FAILED and job.error_code == "voice_past_video"
    assert sink.rows_when_told == []  # asked before any hold was written
    assert sandbox.counters.requests["upload_urls"] == 0 and sandbox.counters.jobs_created == 0
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 0
    data = job.error_data or {}
    assert data["render_end"] == pytest.approx(2.0, abs=0.05) and data["audio_seconds"] == pytest.approx(5.0, abs=0.1)
    told = words.describe(job.error_code, data)
    assert "only 0 s to 2 s would be rendered, and the rest of the voice left out" in told
    [fix] = fixes_in(data)
    assert fix.kind is FixKind.END and fix.quote == Quote(estimate=60, hold=60)  # 2 s at 30 fps

    # The offered part, taken: it renders 0-2 s at the quoted price.
    _, keeper, again_id = await run_job(services, fix.apply(request), tmp_path / "again")
    again = await services.store.jobs.get(again_id)
    assert again is not None and again.state is JobState.DONE, again
    assert again.end_seconds == pytest.approx(2.0, abs=0.05) and again.charged_credits == 60
    assert keeper.delivered


async def test_a_part_past_the_video_is_announced_not_cut(open_services, media_dir: Path, tmp_path: Path) -> None:
    """A part of 1-5 s on a 2 s clip doesn't quietly become 1-2 s: the member is told, and nothing is held."""
    services = await open_services()
    sink = LedgerAtRefusal(services)
    request = file_request(media_dir, start=1.0, end=5.0)
    record = await services.engine.submit(request, JobHooks(sink=sink, deliverer=KeepFile(tmp_path / "out")))
    job = await services.engine.wait(record.id)
    assert job.error_code == "part_past_video" and sink.rows_when_told == []
    told = words.describe(job.error_code, job.error_data or {})
    assert "1 s to 5 s, runs past the end of “face.mp4” (2 s long): only 1 s to 2 s would be rendered" in told


async def test_a_refusal_says_the_hold_didnt_fit_and_offers_priced_fixes(
    open_services, media_dir: Path, tmp_path: Path
) -> None:
    """A 25 fps clip of 1.5 s: likely cost 38, but Magic Hour holds 45 (30 fps). With 40 left, the
    refusal says the hold is what didn't fit, and offers a 25 fps cap (38, held 38) and a 1.3 s part."""
    services = await open_services(default_member_credits=40)
    _, _, job_id = await run_job(services, file_request(media_dir, video="long.mp4"), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.error_code == "quota_global_default_hold"
    data = job.error_data or {}
    assert (data["estimate"], data["hold"], data["available"]) == (38, 45, 40)
    told = words.describe(job.error_code, data)
    assert "enough for this clip's likely cost of 38 credits, but not for the 45 credits held" in told
    assert "needs" not in told
    offered = {fix.kind: fix for fix in fixes_in(data)}
    assert offered[FixKind.MAX_FPS].value == 25.0 and offered[FixKind.MAX_FPS].quote == Quote(38, 38)
    assert offered[FixKind.END].value == pytest.approx(1.3) and offered[FixKind.END].quote == Quote(33, 39)
    assert FixKind.MODE not in offered  # lite is the cheapest already
    assert (await services.store.quota.limits(GUILD, USER, ())).used == 0

    # Each fix, taken, fits: the cap renders at the price it was offered at.
    _, _, capped_id = await run_job(
        services, offered[FixKind.MAX_FPS].apply(file_request(media_dir, video="long.mp4")), tmp_path / "capped"
    )
    capped = await services.store.jobs.get(capped_id)
    assert capped is not None and capped.state is JobState.DONE and capped.charged_credits == 38
    assert quote_of(capped) == Quote(38, 38)


async def test_a_refusal_where_even_the_likely_cost_doesnt_fit(open_services, media_dir: Path, tmp_path: Path) -> None:
    """30 left for a clip likely to cost 38 (45 held): the refusal names the likely cost as what didn't fit."""
    services = await open_services(default_member_credits=30)
    _, _, job_id = await run_job(services, file_request(media_dir, video="long.mp4"), tmp_path / "out")
    job = await services.store.jobs.get(job_id)
    assert job is not None and job.error_code == "quota_global_default"
    told = words.describe(job.error_code, job.error_data or {})
    assert "You have 30 credits left today, less than this clip's likely cost of 38 credits (45 credits held" in told


async def test_a_running_jobs_quote_is_the_one_it_reserved(open_services, media_dir: Path, tmp_path: Path) -> None:
    """The status shows the figures the reservation was made from, read back from the job's record."""
    services = await open_services()
    sink, _, _ = await run_job(services, file_request(media_dir, video="long.mp4"), tmp_path / "out")
    reserved = [u.job for u in sink.updates if u.credits_reserved and not u.job.state.terminal]
    assert reserved and all(quote_of(job) == Quote(estimate=38, hold=45) for job in reserved)
    assert quote_of(reserved[0]).binds is Binding.MAGIC_HOUR  # type: ignore[union-attr]


def test_the_quote_says_which_figure_binds_and_which_doesnt_fit() -> None:
    """The hold is the larger figure; a balance between the two is short of the hold only."""
    quote = Pricing(1.5, GenerationMode.LITE, source_fps=25.0, max_fps=30.0).quote()
    assert quote == Quote(estimate=38, hold=45) and quote.binds is Binding.MAGIC_HOUR
    assert [quote.short_of(n) for n in (37, 38, 44, 45)] == [Short.ESTIMATE, Short.HOLD, Short.HOLD, None]
    sixty = Pricing(1.0, GenerationMode.PRO, source_fps=60.0, max_fps=60.0).quote()
    assert sixty == Quote(estimate=120, hold=120) and sixty.binds is Binding.ESTIMATE
    assert sixty.holding(130) == Quote(120, 130) and sixty.holding(100) == sixty
