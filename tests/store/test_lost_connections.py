"""PostgreSQL going away under a running store: restarts, an outage, a COMMIT whose answer is lost.

These tests restart or stop a PostgreSQL server of their own (not the session's, which other
tests use at the same time). Each store call must either succeed (the store retries on a fresh
connection when that can't apply a write twice) or fail with `StoreUnavailable` once the caller's
patience runs out; no call may hang, and closing the store must not hang either (asyncpg used to
keep the pool slot of a connection cut mid-query in use for ever: after a few restarts every call
waited, and `Pool.close()` never returned).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import SecretStr

from bot.clock import SystemClock
from bot.config import GenerationMode
from bot.jobs.models import InputSource, JobRequest
from bot.sandbox import Sandbox
from bot.services import Services
from bot.store import JobState, NewJob, QuotaPolicy, Store, StoreUnavailable
from bot.store.db import DEFAULT_PATIENCE, patient
from bot.store.postgres import PostgresDatabase
from tests.conftest import make_settings
from tests.store.pgserver import TempPostgres, create_database, running_postgres

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def own_server() -> Iterator[TempPostgres]:
    """A PostgreSQL server these tests may restart and stop."""
    with running_postgres() as server:
        yield server


@pytest.fixture
async def url(own_server: TempPostgres) -> AsyncIterator[str]:
    yield await create_database(own_server)


async def _work(store: Store, user: int, rounds: int) -> int:
    """One member's jobs, each walked to the end, with reads in between: what a busy bot does."""
    done = 0
    for _ in range(rounds):
        job = await store.jobs.create(NewJob(user_id=user, guild_id=1, mode=GenerationMode.LITE))
        await store.jobs.transition(job.id, JobState.FETCHING)
        assert (await store.jobs.get(job.id)) is not None
        await store.jobs.transition(job.id, JobState.FAILED, error_code="test")
        done += 1
    return done


async def test_calls_under_load_survive_restarts_and_the_store_still_closes(own_server: TempPostgres, url: str):
    """Three restarts while 20 tasks write: every call ends well, nothing is lost or doubled, close is prompt."""
    store = await Store.open(url, clock=SystemClock(), policy=QuotaPolicy(), pool_size=5)
    db = store._db
    assert isinstance(db, PostgresDatabase)
    try:
        with patient(30):
            workers = [asyncio.create_task(_work(store, user, 25)) for user in range(1, 21)]
            for mode in ("fast", "fast", "fast"):
                await asyncio.sleep(0.2)  # let the load build up between restarts; timing only spreads them
                await asyncio.to_thread(own_server.restart, mode)
            async with asyncio.timeout(60):  # a hang fails here instead of holding the suite
                assert await asyncio.gather(*workers) == [25] * 20
        jobs = await store.jobs.for_guild(1, limit=1000)
        assert len(jobs) == 500 and all(j.state is JobState.FAILED for j in jobs)
        for job in jobs:
            assert [e.state.value for e in await store.jobs.events(job.id)] == ["received", "fetching", "failed"]
        assert await store.check_invariants() == []
        # Every pool slot is free again: none was left in use on a connection the restart cut.
        assert db.pool.get_idle_size() == db.pool.get_size()
    finally:
        async with asyncio.timeout(15):
            await store.close()


async def test_an_outage_past_the_caller_s_patience_fails_fast_then_the_store_recovers(
    own_server: TempPostgres, url: str
):
    """Server down: a call gives up with StoreUnavailable within its patience; server back: calls work again."""
    store = await Store.open(url, clock=SystemClock(), policy=QuotaPolicy())
    try:
        await asyncio.to_thread(own_server.stop_server)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with patient(1.0), pytest.raises(StoreUnavailable):
                await store.jobs.unfinished()
            assert loop.time() - started < 5  # the patience and one short try, never a hang
            with patient(1.0), pytest.raises(StoreUnavailable):
                await store.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE))
        finally:
            await asyncio.to_thread(own_server.start_server)
        with patient(10):
            job = await store.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE))
        assert [j.id for j in await store.jobs.unfinished()] == [job.id]  # the refused create left nothing
    finally:
        async with asyncio.timeout(15):
            await store.close()


async def test_a_member_s_request_during_an_outage_is_refused_within_seconds(
    own_server: TempPostgres, url: str, tmp_path: Path, sandbox: Sandbox, media_dir: Path
):
    """With the database down, `/lipsync`'s checks give up after the default patience (2 s): a member is told
    to try again at once, within Discord's 3 s, instead of waiting or seeing a raw connection error."""
    services = await Services.open(make_settings(tmp_path, sandbox.base_url, database_url=SecretStr(url)))
    request = JobRequest(
        user_id=1, guild_id=1, audio=InputSource(filename="voice.mp3", path=media_dir / "voice.mp3", size=1)
    )
    try:
        await asyncio.to_thread(own_server.stop_server)
        try:
            loop = asyncio.get_running_loop()
            started = loop.time()
            with pytest.raises(StoreUnavailable):
                await services.engine.precheck(dataclasses.replace(request, video=request.audio))
            assert loop.time() - started < DEFAULT_PATIENCE + 1
        finally:
            await asyncio.to_thread(own_server.start_server)
    finally:
        async with asyncio.timeout(30):
            await services.aclose()


async def test_a_commit_whose_answer_is_lost_is_neither_lost_nor_applied_twice(
    monkeypatch: pytest.MonkeyPatch, url: str
):
    """The connection drops while COMMIT runs: committed, the call succeeds once; not committed, it runs again."""
    store = await Store.open(url, clock=SystemClock(), policy=QuotaPolicy())
    commit = asyncpg.transaction.Transaction.commit
    cuts: list[str] = []

    async def cut_commit(self: asyncpg.transaction.Transaction) -> None:
        if cuts and cuts[0] == "after":  # the server commits, then the answer is lost with the connection
            cuts.pop(0)
            await commit(self)
            self._connection.terminate()
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        if cuts and cuts[0] == "before":  # the connection dies before the server commits
            cuts.pop(0)
            self._connection.terminate()
            raise asyncpg.exceptions.ConnectionDoesNotExistError("connection was closed in the middle of operation")
        await commit(self)

    monkeypatch.setattr(asyncpg.transaction.Transaction, "commit", cut_commit)
    try:
        cuts.append("after")
        first = await store.jobs.create(NewJob(user_id=1, guild_id=1, mode=GenerationMode.LITE))
        cuts.append("before")
        second = await store.jobs.create(NewJob(user_id=2, guild_id=1, mode=GenerationMode.LITE))
        assert cuts == []
        assert [j.id for j in await store.jobs.unfinished()] == [first.id, second.id]
        assert await store.check_invariants() == []
    finally:
        await store.close()
