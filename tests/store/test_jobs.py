"""Job records: creation, checked transitions with timestamps, updates and queries."""

from __future__ import annotations

import datetime as dt

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import (
    ALLOWED_TRANSITIONS,
    InvalidTransition,
    JobNotFound,
    JobState,
    LedgerKind,
    NewJob,
    Reservation,
    Store,
    can_transition,
)

from .conftest import GUILD, OTHER_GUILD, START, new_job

S = JobState
EXPECTED = {
    (S.RECEIVED, S.FETCHING),
    (S.RECEIVED, S.UPLOADING),
    (S.FETCHING, S.UPLOADING),
    (S.UPLOADING, S.SUBMITTED),
    (S.SUBMITTED, S.RENDERING),
    (S.SUBMITTED, S.DOWNLOADING),
    (S.RENDERING, S.DOWNLOADING),
    (S.DOWNLOADING, S.DELIVERING),
    (S.DELIVERING, S.DONE),
} | {(s, end) for s in S if not s.terminal for end in (S.FAILED, S.CANCELED)}


def test_transition_table_is_exactly_the_documented_one():
    """Every (from, to) pair is allowed exactly when the design says so."""
    for a in S:
        for b in S:
            assert can_transition(a, b) == ((a, b) in EXPECTED), (a, b)
    assert all(not ALLOWED_TRANSITIONS[s] for s in (S.DONE, S.FAILED, S.CANCELED))


async def test_create_records_every_field_and_a_received_event(store: Store):
    """A new job starts in received with its inputs and options, and one event."""
    job = await store.jobs.create(
        NewJob(
            user_id=42,
            guild_id=GUILD,
            channel_id=7,
            video_filename="clip.mp4",
            video_size=1234,
            audio_filename="voice.mp3",
            audio_size=99,
            youtube_url=None,
            start_seconds=1.5,
            end_seconds=9.0,
            mode=GenerationMode.PRO,
            max_fps=24.0,
            name="take one",
            status_channel_id=7,
            status_message_id=8,
        )
    )
    assert job.id >= 1
    assert job.state is S.RECEIVED
    assert (job.video_filename, job.video_size, job.audio_size, job.mode, job.max_fps) == (
        "clip.mp4",
        1234,
        99,
        GenerationMode.PRO,
        24.0,
    )
    assert job.created_at == job.updated_at == START
    assert job.created_at.tzinfo is dt.UTC
    assert await store.jobs.get(job.id) == job
    events = await store.jobs.events(job.id)
    assert [(e.state, e.at) for e in events] == [(S.RECEIVED, START)]


async def test_happy_path_records_each_transition_time(store: Store, clock: FakeClock):
    """Walking the whole life stores every state with its own timestamp."""
    job = await new_job(store)
    path = [S.FETCHING, S.UPLOADING, S.SUBMITTED, S.RENDERING, S.DOWNLOADING, S.DELIVERING, S.DONE]
    for state in path:
        await clock.advance(10)
        job = await store.jobs.transition(job.id, state, detail=f"to {state}")
    assert job.state is S.DONE and job.terminal
    assert job.updated_at == START + dt.timedelta(seconds=70)
    events = await store.jobs.events(job.id)
    assert [e.state for e in events] == [S.RECEIVED, *path]
    assert [e.at for e in events] == [START + dt.timedelta(seconds=10 * i) for i in range(8)]
    assert events[3].detail == "to submitted"


async def test_shortcuts_local_files_and_fast_renders(store: Store):
    """received→uploading and submitted→downloading are allowed."""
    job = await new_job(store)
    for state in (S.UPLOADING, S.SUBMITTED, S.DOWNLOADING):
        job = await store.jobs.transition(job.id, state)
    assert job.state is S.DOWNLOADING


async def test_impossible_transition_raises_and_writes_nothing(store: Store):
    """A skipped state is an error, and the job and its events are unchanged."""
    job = await new_job(store)
    with pytest.raises(InvalidTransition) as info:
        await store.jobs.transition(job.id, S.SUBMITTED, project_id="p1")
    assert (info.value.current, info.value.requested) == ("received", "submitted")
    assert await store.jobs.get(job.id) == job
    assert len(await store.jobs.events(job.id)) == 1


async def test_terminal_states_and_repeats_are_final(store: Store):
    """Nothing leaves done, failed or canceled, and a state cannot be entered twice in a row."""
    job = await new_job(store)
    await store.jobs.transition(job.id, S.FETCHING)
    with pytest.raises(InvalidTransition):
        await store.jobs.transition(job.id, S.FETCHING)
    await store.jobs.transition(job.id, S.CANCELED)
    for state in S:
        with pytest.raises(InvalidTransition):
            await store.jobs.transition(job.id, state)


async def test_transition_sets_fields_in_the_same_write(store: Store):
    """Fields passed with a transition are stored with it."""
    job = await new_job(store)
    await store.jobs.transition(job.id, S.UPLOADING)
    job = await store.jobs.transition(job.id, S.SUBMITTED, project_id="cm_123")
    assert (job.state, job.project_id) == (S.SUBMITTED, "cm_123")
    job = await store.jobs.transition(job.id, S.FAILED, error_code="render_failed", error_message="The render failed.")
    assert (job.error_code, job.error_message) == ("render_failed", "The render failed.")


async def test_update_changes_allowed_fields_only(store: Store, clock: FakeClock):
    """update sets non-state fields and refuses identity, mode and state."""
    job = await new_job(store)
    await clock.advance(5)
    job = await store.jobs.update(
        job.id, project_id="p", estimated_credits=300, delivery_kind="file", delivery_message_id=77, video_size=10
    )
    assert (job.project_id, job.estimated_credits, job.delivery_kind, job.delivery_message_id) == ("p", 300, "file", 77)
    assert job.updated_at == START + dt.timedelta(seconds=5)
    assert job.state is S.RECEIVED
    for field in ("state", "mode", "user_id", "guild_id", "id", "created_at", "bogus"):
        with pytest.raises(TypeError, match=field):
            await store.jobs.update(job.id, **{field: 1})


async def test_missing_jobs(store: Store):
    """get returns None; transition and update raise JobNotFound."""
    assert await store.jobs.get(999) is None
    with pytest.raises(JobNotFound):
        await store.jobs.transition(999, S.FETCHING)
    with pytest.raises(JobNotFound):
        await store.jobs.update(999, name="x")


async def test_queries_recent_unfinished_guild_and_active(store: Store, clock: FakeClock):
    """The queries the bot needs return the right jobs in the right order."""
    mine = [await new_job(store, user_id=1) for _ in range(4)]
    other_member = await new_job(store, user_id=2)
    other_guild = await new_job(store, user_id=1, guild_id=OTHER_GUILD)
    cli = await new_job(store, user_id=1, guild_id=None)
    await clock.advance(3600)
    late = await new_job(store, user_id=3)
    await store.jobs.transition(mine[0].id, S.FAILED)
    await store.jobs.transition(mine[1].id, S.CANCELED)

    recent = await store.jobs.recent_for_member(GUILD, 1, limit=3)
    assert [j.id for j in recent] == [mine[3].id, mine[2].id, mine[1].id]
    assert [j.id for j in await store.jobs.recent_for_member(None, 1)] == [cli.id]

    unfinished = await store.jobs.unfinished()
    assert [j.id for j in unfinished] == [mine[2].id, mine[3].id, other_member.id, other_guild.id, cli.id, late.id]

    assert [j.id for j in await store.jobs.for_guild(GUILD, since=START + dt.timedelta(minutes=30))] == [late.id]
    assert len(await store.jobs.for_guild(GUILD)) == 6
    assert len(await store.jobs.for_guild(GUILD, limit=2)) == 2

    assert await store.jobs.active_count(GUILD, 1) == 2
    assert await store.jobs.active_count(OTHER_GUILD, 1) == 1
    assert await store.jobs.active_count(None, 1) == 1


async def test_ending_a_job_closes_its_reservation(store: Store):
    """failed and canceled refund an open reservation; done settles it."""
    failed, canceled, done, charged = [await new_job(store, user_id=u) for u in (1, 2, 3, 4)]
    for job in (failed, canceled, done, charged):
        reservation = await store.quota.reserve(job.id, guild_id=GUILD, user_id=job.user_id, role_ids=[], amount=100)
        assert isinstance(reservation, Reservation)
    await store.jobs.transition(failed.id, S.FAILED)
    await store.jobs.transition(canceled.id, S.CANCELED)
    for job in (done, charged):
        for state in (S.UPLOADING, S.SUBMITTED, S.DOWNLOADING, S.DELIVERING):
            await store.jobs.transition(job.id, state)
    done_record = await store.jobs.transition(done.id, S.DONE)
    charged_record = await store.jobs.transition(charged.id, S.DONE, charged_credits=80)

    assert [e.kind for e in await store.quota.entries(failed.id)] == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert [e.kind for e in await store.quota.entries(canceled.id)] == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert done_record.charged_credits == 100
    assert charged_record.charged_credits == 80
    assert (await store.quota.balance(GUILD, 4)).used == 80
    assert (await store.quota.balance(GUILD, 1)).used == 0


async def test_ending_a_settled_job_does_not_touch_the_ledger(store: Store):
    """A job settled before done keeps its settlement; failing after settling refunds nothing."""
    job = await new_job(store)
    await store.quota.reserve(job.id, guild_id=GUILD, user_id=1, role_ids=[], amount=100)
    assert await store.quota.settle(job.id, 90)
    await store.jobs.transition(job.id, S.FAILED)  # e.g. the download failed after Magic Hour charged
    entries = await store.quota.entries(job.id)
    assert [e.kind for e in entries] == [LedgerKind.RESERVE, LedgerKind.SETTLE]
    assert (await store.quota.balance(GUILD, 1)).used == 90
