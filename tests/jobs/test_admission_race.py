"""The one-job-at-a-time limit under a burst: requests made in the same instant can't all get in."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.errors import QuotaExceeded
from bot.jobs.models import InputSource, JobHooks, JobRequest
from tests.conftest import KeepFile, RecordingSink

GUILD, USER = 1, 42


async def test_six_requests_at_once_admit_one(open_services, sandbox, media_dir: Path, tmp_path: Path) -> None:
    """Six `/lipsync` requests from one member in the same instant: one job, five `active_jobs` refusals,
    and nothing fetched or probed for the five."""
    services = await open_services()
    sandbox.config.render_seconds = 3600
    request = JobRequest(
        user_id=USER,
        guild_id=GUILD,
        channel_id=7,
        video=InputSource(filename="face.mp4", path=media_dir / "face.mp4"),
        audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3"),
    )
    outcomes = await asyncio.gather(
        *(
            services.engine.submit(request, JobHooks(sink=RecordingSink(), deliverer=KeepFile(tmp_path)))
            for _ in range(6)
        ),
        return_exceptions=True,
    )
    refused = [o for o in outcomes if isinstance(o, QuotaExceeded)]
    admitted = [o for o in outcomes if not isinstance(o, BaseException)]
    assert len(admitted) == 1 and len(refused) == 5, outcomes
    assert {r.code for r in refused} == {"active_jobs"}
    assert len(await services.store.jobs.recent_for_member(GUILD, USER)) == 1
    await services.engine.cancel(admitted[0].id, by_user_id=USER)
