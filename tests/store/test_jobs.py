"""Job records: creation, checked transitions with timestamps, updates and queries."""

from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from bot.clock import FakeClock
from bot.config import GenerationMode
from bot.store import (
    ALLOWED_TRANSITIONS,
    UNKNOWN_AT_MAGIC_HOUR,
    InvalidTransition,
    JobNotFound,
    JobRecord,
    JobState,
    LedgerKind,
    LimitKind,
    NewJob,
    NoReservation,
    Refusal,
    Store,
    can_transition,
)
from bot.store.renders import RenderHistory, RenderSample

from .conftest import (
    GUILD,
    OTHER_GUILD,
    START,
    TO_RENDERED,
    complete,
    new_job,
    raw_read,
    raw_write,
    reserved_job,
    walk,
)

S = JobState
EXPECTED = {
    (S.RECEIVED, S.FETCHING),
    (S.RECEIVED, S.UPLOADING),
    (S.FETCHING, S.UPLOADING),
    (S.UPLOADING, S.CREATING),
    (S.CREATING, S.SUBMITTED),
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
    job = await reserved_job(store, 100)
    path = [S.FETCHING, S.UPLOADING, S.CREATING, S.SUBMITTED, S.RENDERING, S.DOWNLOADING, S.DELIVERING, S.DONE]
    for state in path:
        await clock.advance(10)
        charged = 90 if state is S.DOWNLOADING else None
        job = await store.jobs.transition(job.id, state, charged=charged, detail=f"to {state}")
    assert job.state is S.DONE and job.terminal
    assert job.updated_at == START + dt.timedelta(seconds=80)
    assert job.charged_credits == 90
    events = await store.jobs.events(job.id)
    assert [e.state for e in events] == [S.RECEIVED, *path]
    assert [e.at for e in events] == [START + dt.timedelta(seconds=10 * i) for i in range(9)]
    assert events[4].detail == "to submitted"


async def test_shortcuts_local_files_and_fast_renders(store: Store):
    """received→uploading and submitted→downloading are allowed; uploading→submitted is not any more."""
    job = await reserved_job(store, 10)
    job = await store.jobs.transition(job.id, S.UPLOADING)
    with pytest.raises(InvalidTransition):
        await store.jobs.transition(job.id, S.SUBMITTED)
    for state in (S.CREATING, S.SUBMITTED):
        job = await store.jobs.transition(job.id, state)
    job = await store.jobs.transition(job.id, S.DOWNLOADING, charged=10)
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
            await store.jobs.transition(job.id, state, charged=1 if state is S.DOWNLOADING else None)


async def test_transition_sets_fields_in_the_same_write(store: Store):
    """Fields passed with a transition are stored with it."""
    job = await new_job(store)
    await walk(store, job.id, S.UPLOADING, S.CREATING)
    job = await store.jobs.transition(job.id, S.SUBMITTED, project_id="cm_123")
    assert (job.state, job.project_id) == (S.SUBMITTED, "cm_123")
    data = {"status": 422, "field": "end_seconds", "limit": 60.5, "retryable": False, "hint": None}
    job = await store.jobs.transition(job.id, S.FAILED, error_code="render_failed", error_data=data)
    assert (job.error_code, job.error_data) == ("render_failed", data)
    assert await store.jobs.get(job.id) == job
    assert not hasattr(job, "error_message")


async def test_error_data_is_a_flat_json_object(store: Store):
    """error_data takes names to scalars, round-trips, can be cleared, and refuses anything else."""
    job = await new_job(store)
    assert job.error_data is None
    job = await store.jobs.update(job.id, error_data={"seconds": 75, "max": 60, "unit": "s", "ok": True})
    assert job.error_data == {"seconds": 75, "max": 60, "unit": "s", "ok": True}
    assert isinstance(job.error_data["ok"], bool) and isinstance(job.error_data["seconds"], int)
    assert (await store.jobs.update(job.id, error_data={})).error_data == {}
    assert (await store.jobs.update(job.id, error_data=None)).error_data is None
    for bad in ([1, 2], {"nested": {"a": 1}}, {1: "x"}, {"x": [1]}, "text"):
        with pytest.raises(TypeError):
            await store.jobs.update(job.id, error_data=bad)
    with pytest.raises(ValueError):
        await store.jobs.update(job.id, error_data={"x": float("nan")})
    for gone in ("error_message", "charged_credits"):
        with pytest.raises(TypeError, match=gone):
            await store.jobs.update(job.id, **{gone: 1})


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


async def test_credits_close_with_the_transition(store: Store):
    """downloading settles to the charge (done then changes nothing); failed/canceled refund."""
    failed, canceled, rendered = [await reserved_job(store, 100, user_id=u) for u in (1, 2, 3)]
    await store.jobs.transition(failed.id, S.FAILED)
    await store.jobs.transition(canceled.id, S.CANCELED)
    record = await complete(store, rendered.id, 80)
    assert (record.state, record.charged_credits) == (S.DOWNLOADING, 80)
    assert [e.kind for e in await store.quota.entries(failed.id)] == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert [e.kind for e in await store.quota.entries(canceled.id)] == [LedgerKind.RESERVE, LedgerKind.REFUND]
    assert [(e.kind, e.charged) for e in await store.quota.entries(rendered.id)] == [
        (LedgerKind.RESERVE, None),
        (LedgerKind.SETTLE, 80),
    ]
    await walk(store, rendered.id, S.DELIVERING)
    final = await store.jobs.transition(rendered.id, S.DONE, charged=99)  # already settled: stays at 80
    assert final.charged_credits == 80 and len(await store.quota.entries(rendered.id)) == 2
    assert (await store.quota.limits(GUILD, 3)).used == 80
    assert (await store.quota.limits(GUILD, 1)).used == 0


async def test_done_settles_a_reservation_left_open_only_to_a_charge_given(store: Store):
    """A job reaching done with its reservation still open settles it to `charged`; without one it is refused.

    Only a database written outside the store can hold such a job; the store guesses no charge for it.
    """
    held, charged = await reserved_job(store, 100, user_id=1), await reserved_job(store, 100, user_id=2)
    at = dt.datetime(2026, 3, 10, 9, 30, tzinfo=dt.UTC)
    for job in (held, charged):
        await raw_write(
            store,
            *(
                ("INSERT INTO job_events (job_id, state, at) VALUES (?, ?, ?)", (job.id, state, at))
                for state in ("uploading", "creating", "submitted", "downloading")
            ),
            # The database writes the event of the state change itself.
            ("UPDATE jobs SET state = 'delivering', updated_at = ? WHERE id = ?", (at, job.id)),
        )
    with pytest.raises(ValueError, match="settled"):
        await store.jobs.transition(held.id, S.DONE)
    assert (await store.jobs.get(held.id)).state is S.DELIVERING  # type: ignore[union-attr]
    assert (await store.quota.limits(GUILD, 1)).used == 100  # still held, not refunded
    assert (await store.jobs.transition(held.id, S.DONE, charged=100)).charged_credits == 100
    assert (await store.jobs.transition(charged.id, S.DONE, charged=70)).charged_credits == 70
    assert (await store.quota.limits(GUILD, 2)).used == 70


async def test_downloading_needs_the_charge_and_charges_only_close(store: Store):
    """The render's charge is required at downloading, refused elsewhere and when negative."""
    job = await reserved_job(store, 50)
    await walk(store, job.id, *TO_RENDERED)
    with pytest.raises(ValueError, match="charged"):
        await store.jobs.transition(job.id, S.DOWNLOADING)
    with pytest.raises(ValueError, match="charge"):
        await store.jobs.transition(job.id, S.RENDERING, charged=5)
    with pytest.raises(ValueError, match="negative"):
        await store.jobs.transition(job.id, S.DOWNLOADING, charged=-1)
    assert (await store.jobs.get(job.id)).state is S.SUBMITTED  # type: ignore[union-attr]
    assert [e.kind for e in await store.quota.entries(job.id)] == [LedgerKind.RESERVE]
    await store.jobs.transition(job.id, S.CANCELED)


async def test_a_cancel_or_failure_with_a_charge_settles(store: Store):
    """A cancel after submission costs what Magic Hour charged; so does a failure with a charge."""
    canceled, failed = await reserved_job(store, 100, user_id=1), await reserved_job(store, 100, user_id=2)
    for job in (canceled, failed):
        await walk(store, job.id, *TO_RENDERED)
    record = await store.jobs.transition(canceled.id, S.CANCELED, charged=40)
    assert record.charged_credits == 40
    record = await store.jobs.transition(failed.id, S.FAILED, charged=130, error_code="render_failed")
    assert record.charged_credits == 130
    assert [e.amount for e in await store.quota.entries(canceled.id)] == [-100, 60]
    assert [e.amount for e in await store.quota.entries(failed.id)] == [-100, -30]
    # A charge for a job that never reserved is a bug to surface, and nothing changes.
    bare = await new_job(store, user_id=3)
    with pytest.raises(NoReservation):
        await store.jobs.transition(bare.id, S.CANCELED, charged=1)
    assert (await store.jobs.get(bare.id)).state is S.RECEIVED  # type: ignore[union-attr]
    # Without a charge, a job that never reserved just ends.
    await store.jobs.transition(bare.id, S.CANCELED)


async def test_a_settled_job_that_fails_stays_settled(store: Store):
    """A completed render whose delivery was given up was still paid for: no refund."""
    for user_id, to in ((1, S.FAILED), (2, S.CANCELED)):
        job = await reserved_job(store, 100, user_id=user_id)
        await complete(store, job.id, 90)
        await walk(store, job.id, S.DELIVERING)
        record = await store.jobs.transition(job.id, to, charged=None, error_code="delivery_failed")
        assert record.charged_credits == 90
        assert [e.kind for e in await store.quota.entries(job.id)] == [LedgerKind.RESERVE, LedgerKind.SETTLE]
        assert (await store.quota.limits(GUILD, user_id)).used == 90


async def test_unknown_at_magic_hour_is_settled_to_the_count_given(store: Store, clock: FakeClock):
    """A create whose outcome is unknown counts as charged what the engine counts, and is listed for managers.

    The store guesses no charge for it: an unknown ending without one is refused, never refunded.
    """
    job = await reserved_job(store, 100)
    await walk(store, job.id, S.UPLOADING, S.CREATING)
    await store.quota.top_up(job.id, 120)
    with pytest.raises(ValueError, match="unknown"):
        await store.jobs.transition(job.id, S.FAILED, error_code=UNKNOWN_AT_MAGIC_HOUR)
    record = await store.jobs.transition(
        job.id, S.FAILED, charged=120, error_code=UNKNOWN_AT_MAGIC_HOUR, error_data={"attempts": 1}
    )
    assert record.charged_credits == 120
    assert [(e.kind, e.amount) for e in await store.quota.entries(job.id)][-1] == (LedgerKind.SETTLE, 0)
    assert (await store.quota.limits(GUILD, 1)).used == 120
    other = await reserved_job(store, 10, user_id=2, guild_id=OTHER_GUILD)
    await store.jobs.transition(other.id, S.FAILED, charged=10, error_code=UNKNOWN_AT_MAGIC_HOUR)
    plain = await reserved_job(store, 10, user_id=3)
    await store.jobs.transition(plain.id, S.FAILED, error_code="render_failed")

    listed = await store.jobs.unknown_at_magic_hour(GUILD, START)
    assert [j.id for j in listed] == [job.id]
    assert [j.id for j in await store.jobs.unknown_at_magic_hour(OTHER_GUILD, START)] == [other.id]
    assert await store.jobs.unknown_at_magic_hour(GUILD, START + dt.timedelta(seconds=1)) == []
    report = await store.quota.usage(GUILD)
    assert [j.id for j in report.uncertain] == [job.id]
    assert report.total.charged == 120
    await clock.advance(24 * 3600)
    assert (await store.quota.usage(GUILD)).uncertain == []


async def test_create_within_counts_and_inserts_in_one_transaction(database, clock: FakeClock, policy) -> None:
    """Six requests at once from two processes' stores, limit one: one job recorded, five refused."""
    async with (
        await Store.open(database, clock=clock, policy=policy) as first,
        await Store.open(database, clock=clock, policy=policy) as second,
    ):
        job = NewJob(user_id=7, guild_id=GUILD, channel_id=5, mode=GenerationMode.LITE)
        outcomes = await asyncio.gather(
            *(store.jobs.create_within(job, max_unfinished=1) for store in (first, second) * 3)
        )
        recorded = [o for o in outcomes if isinstance(o, JobRecord)]
        refused = [o for o in outcomes if isinstance(o, Refusal)]
        assert len(recorded) == 1 and len(refused) == 5
        assert {(r.limit, r.available, r.max_active) for r in refused} == {(LimitKind.ACTIVE_JOBS, 0, 1)}
        assert await first.jobs.active_count(GUILD, 7) == 1
        # Other members, and the same member in another server, are not held back by it.
        assert isinstance(
            await second.jobs.create_within(job.model_copy(update={"user_id": 8}), max_unfinished=1), JobRecord
        )
        other = job.model_copy(update={"guild_id": OTHER_GUILD})
        assert isinstance(await second.jobs.create_within(other, max_unfinished=1), JobRecord)
        # Once the job ends, the member may start another.
        await first.jobs.transition(recorded[0].id, JobState.FAILED)
        assert isinstance(await first.jobs.create_within(job, max_unfinished=1), JobRecord)


async def test_every_move_returns_the_row_it_wrote_and_the_database_writes_its_event(store: Store):
    """A transition's answer is the stored row (no read after the write needed); each move adds one event."""
    job = await reserved_job(store, 50)
    for state in TO_RENDERED:
        moved = await store.jobs.transition(job.id, state)
        assert moved == await store.jobs.get(job.id) and moved.state is state
    settled = await store.jobs.transition(job.id, S.DOWNLOADING, charged=40)
    assert settled == await store.jobs.get(job.id) and settled.charged_credits == 40
    events = await store.jobs.events(job.id)
    assert [e.state for e in events] == [S.RECEIVED, *TO_RENDERED, S.DOWNLOADING]
    assert events[-1].at == settled.updated_at


async def test_the_render_history_is_trimmed_to_its_size_now_and_then(store: Store):
    """Recording is one insert; every 50th render also trims each mode back to the newest `keep`."""
    history = RenderHistory(store._db, keep=3)
    for frames in range(1, 61):
        await history.record(RenderSample(GenerationMode.LITE, frames, 1.0, 2.0))
    await history.record(RenderSample(GenerationMode.PRO, 1, 1.0, 2.0))
    [(lite,)] = await raw_read(store, "SELECT COUNT(*) FROM render_times WHERE mode = ?", GenerationMode.LITE.value)
    assert 3 <= lite <= 3 + 50  # trimmed at the 50th render, and it grows again until the 100th
    assert [s.frames for s in await history.recent(GenerationMode.LITE, 3)] == [58, 59, 60]
