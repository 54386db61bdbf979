"""`POST /v1/lip-sync` is never resent once it may have reached the server.

Each test checks the sandbox's own counts: how many create requests arrived and how many jobs
(billed) exist, so "not repeated" is observed on the server side, not inferred from the client.
"""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.magichour import MagicHourClient, RateLimited, SubmissionUncertain, Unavailable
from bot.sandbox import Sandbox

from .conftest import API_KEY, InstantClock, lip_sync_request, upload_inputs


@pytest.fixture
async def paths(client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path]) -> tuple[str, str]:
    """Uploaded inputs, with the counters zeroed afterwards so only the create is counted."""
    result = await upload_inputs(client, media)
    sandbox.counters.reset()
    return result


async def test_create_that_times_out_is_uncertain_and_not_resent(
    sandbox: Sandbox, clock: InstantClock, paths: tuple[str, str]
) -> None:
    """The job is made but the answer never comes: SubmissionUncertain, one request, one job."""
    sandbox.faults.hang("create")
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(10.0, read=1.0)) as http,
        MagicHourClient(SecretStr(API_KEY), sandbox.base_url, http=http, clock=clock) as mh,
    ):
        with pytest.raises(SubmissionUncertain) as caught:
            await mh.create_lip_sync(lip_sync_request(*paths))
    assert sandbox.counters.jobs_created == 1
    assert sandbox.counters.requests["create"] == 1
    assert clock.sleeps == []
    error = caught.value
    assert isinstance(error, Unavailable)
    assert error.status_code is None
    assert "ReadTimeout" in str(error) and "do not resubmit" in str(error)
    assert "not sent again" in error.user_message


async def test_create_dropped_after_the_job_was_made_is_not_repeated(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock, paths: tuple[str, str]
) -> None:
    """Connection dropped after the effect: one job, one request, SubmissionUncertain."""
    sandbox.faults.disconnect("create", after_effect=True)
    with pytest.raises(SubmissionUncertain):
        await client.create_lip_sync(lip_sync_request(*paths))
    assert sandbox.counters.jobs_created == 1
    assert sandbox.counters.requests["create"] == 1
    assert clock.sleeps == []


async def test_create_dropped_before_the_effect_is_still_not_repeated(
    client: MagicHourClient, sandbox: Sandbox, paths: tuple[str, str]
) -> None:
    """The client cannot tell a drop before the effect from one after it, so it stays cautious."""
    sandbox.faults.disconnect("create", after_effect=False)
    with pytest.raises(SubmissionUncertain):
        await client.create_lip_sync(lip_sync_request(*paths))
    assert sandbox.counters.jobs_created == 0
    assert sandbox.counters.requests["create"] == 1


@pytest.mark.parametrize("status", [500, 503, 504])
async def test_create_5xx_that_may_have_made_a_job_is_uncertain(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock, paths: tuple[str, str], status: int
) -> None:
    """500, 503 and 504 leave the outcome open (the reference says "no job" only of 502 and 429):
    no retry, SubmissionUncertain with the status."""
    sandbox.faults.fail("create", status=status)
    with pytest.raises(SubmissionUncertain) as caught:
        await client.create_lip_sync(lip_sync_request(*paths))
    assert caught.value.status_code == status
    assert sandbox.counters.requests["create"] == 1
    assert clock.sleeps == []


@pytest.mark.parametrize("status", [502, 429])
async def test_create_is_retried_when_no_job_was_made(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock, paths: tuple[str, str], status: int
) -> None:
    """502 (documented: no job when no id came back) and 429 are retried; the retry creates exactly one job."""
    sandbox.faults.fail("create", status=status)
    job = await client.create_lip_sync(lip_sync_request(*paths))
    assert job.id in sandbox.projects
    assert sandbox.counters.requests["create"] == 2
    assert sandbox.counters.jobs_created == 1
    assert len(clock.sleeps) == 1


async def test_create_502_exhausted_is_unavailable_not_uncertain(
    client: MagicHourClient, sandbox: Sandbox, paths: tuple[str, str]
) -> None:
    """After the retries, a 502 still means no job: plain Unavailable, safe to submit later."""
    sandbox.faults.fail("create", status=502, times=4)
    with pytest.raises(Unavailable) as caught:
        await client.create_lip_sync(lip_sync_request(*paths))
    assert not isinstance(caught.value, SubmissionUncertain)
    assert caught.value.status_code == 502
    assert sandbox.counters.requests["create"] == 4
    assert sandbox.counters.jobs_created == 0


async def test_create_429_exhausted_is_rate_limited(
    client: MagicHourClient, sandbox: Sandbox, paths: tuple[str, str]
) -> None:
    """Rate limited on every attempt: RateLimited, no job."""
    sandbox.faults.fail("create", status=429, times=4)
    with pytest.raises(RateLimited):
        await client.create_lip_sync(lip_sync_request(*paths))
    assert sandbox.counters.jobs_created == 0


def _closed_port() -> int:
    # Bind, read the port, close: nothing listens there afterwards, so connecting is refused.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_create_on_a_refused_connection_is_retried_then_unavailable(clock: InstantClock) -> None:
    """Connection refused means the request never left: retried, then Unavailable (not uncertain)."""
    base_url = f"http://127.0.0.1:{_closed_port()}"
    async with MagicHourClient(SecretStr(API_KEY), base_url, clock=clock) as mh:
        with pytest.raises(Unavailable) as caught:
            await mh.create_lip_sync(lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3"))
    assert not isinstance(caught.value, SubmissionUncertain)
    assert "ConnectError" in str(caught.value)
    assert len(clock.sleeps) == 3  # four attempts
    assert [0.375 <= clock.sleeps[0] <= 0.5, 0.75 <= clock.sleeps[1] <= 1.0, 1.5 <= clock.sleeps[2] <= 2.0] == [
        True
    ] * 3


async def test_unreadable_success_body_on_create_is_uncertain(clock: InstantClock) -> None:
    """A 200 whose body is not a job: a job exists but its id is unknown, so SubmissionUncertain.

    The sandbox always answers well-formed JSON, so this needs a scripted transport.
    """
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200, text="<html>proxy error page</html>")

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        MagicHourClient(SecretStr(API_KEY), "https://api.test", http=http, clock=clock) as mh,
    ):
        with pytest.raises(SubmissionUncertain, match="unreadable success body"):
            await mh.create_lip_sync(lip_sync_request("api-assets/v.mp4", "api-assets/a.mp3"))
    assert len(calls) == 1
