"""Members' own settings: stored per member per server, bounded, kept with each job, deleted by /forget-me."""

from __future__ import annotations

import pytest

from bot import bounds
from bot.config import GenerationMode
from bot.store import MemberSettings, NewJob, ResultPlace, Store
from bot.store.member_settings import DEFAULTS

from .conftest import GUILD, OTHER_GUILD


async def test_settings_round_trip_per_member_per_server(store: Store) -> None:
    """Saved settings come back as saved, in their server only; a member who set none gets the defaults."""
    assert await store.member_settings.get(GUILD, 1) == DEFAULTS == MemberSettings()
    mine = MemberSettings(mode=GenerationMode.PRO, max_fps=24.0, results=ResultPlace.DM, ping=False)

    assert await store.member_settings.save(GUILD, 1, mine) == mine

    assert await store.member_settings.get(GUILD, 1) == mine
    assert await store.member_settings.get(OTHER_GUILD, 1) == DEFAULTS
    assert await store.member_settings.get(GUILD, 2) == DEFAULTS
    changed = mine.changed(results=ResultPlace.THREAD)
    await store.member_settings.save(GUILD, 1, changed)
    assert await store.member_settings.get(GUILD, 1) == MemberSettings(
        mode=GenerationMode.PRO, max_fps=24.0, results=ResultPlace.THREAD, ping=False
    )
    assert await store.member_settings.clear(GUILD, 1) is True
    assert await store.member_settings.get(GUILD, 1) == DEFAULTS
    assert await store.member_settings.clear(GUILD, 1) is False


@pytest.mark.parametrize("fps", [0.5, 61.0, float("nan"), float("inf")])
def test_a_frame_rate_cap_outside_what_magic_hour_takes_is_refused(fps: float) -> None:
    """The cap is held to the same bound as `/lipsync`'s `max_fps`, before anything is stored."""
    with pytest.raises(bounds.OutOfBounds) as refused:
        MemberSettings(max_fps=fps)
    assert refused.value.code == "bad_max_fps"


async def test_a_job_keeps_where_its_result_goes(store: Store) -> None:
    """The member's choice when the job started is the job's, whatever they change later."""
    job = await store.jobs.create(
        NewJob(user_id=1, guild_id=GUILD, mode=GenerationMode.LITE, deliver_to=ResultPlace.THREAD, ping_owner=False)
    )
    read = await store.jobs.get(job.id)
    assert read is not None and (read.deliver_to, read.ping_owner) == (ResultPlace.THREAD, False)
    plain = await store.jobs.create(NewJob(user_id=2, guild_id=GUILD, mode=GenerationMode.LITE))
    assert (plain.deliver_to, plain.ping_owner) == (None, None)


async def test_forget_me_deletes_the_members_settings_in_that_server(store: Store) -> None:
    """Their preferences are their data: deleted with the rest, in that server only."""
    await store.member_settings.save(GUILD, 1, MemberSettings(results=ResultPlace.DM))
    await store.member_settings.save(OTHER_GUILD, 1, MemberSettings(ping=False))

    report = await store.delete_member_data(GUILD, 1)

    assert report.settings_deleted == 1
    assert await store.member_settings.get(GUILD, 1) == DEFAULTS
    assert await store.member_settings.get(OTHER_GUILD, 1) == MemberSettings(ping=False)
