"""Webhooks end to end: the sandbox signs an event as a render ends, the bot's receiver verifies it
over real HTTP and pokes the poller, and polling is only the safety net (all on a fake clock)."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.config import GenerationMode, Settings
from bot.jobs.config import EngineConfig
from bot.jobs.forecast import WEBHOOK_SLACK, Expectation, ForecastPolicy, Prediction, plan
from bot.jobs.poller import Poller, PollPolicy
from bot.jobs.webhooks import WebhookReceiver
from bot.magichour import MagicHourClient, RetryPolicy
from bot.sandbox import Sandbox, SandboxConfig
from tests.jobs.test_poller import create_job

KEY = "webhook-poll-key"
SECRET = "whsec-sandbox-test"
HOOKED = PollPolicy(jitter=0.0, webhooks=True, safety_interval=60.0)
RENDER = 240.0
FORECAST = Prediction(expected=RENDER, early=120.0, late=360.0, spread=0.25)

Rig = tuple[Sandbox, MagicHourClient, FakeClock, Poller, WebhookReceiver, Path]


@pytest.fixture
async def rig(tmp_path: Path, media_dir: Path) -> AsyncIterator[Rig]:
    clock = FakeClock()
    config = SandboxConfig(api_key=KEY, render_seconds=RENDER, webhook_secret=SECRET)
    async with (
        Sandbox(config, data_dir=tmp_path / "sb", clock=clock) as sandbox,
        MagicHourClient(SecretStr(KEY), sandbox.base_url, clock=clock, retry=RetryPolicy.none()) as client,
    ):
        poller = Poller(client, clock, HOOKED)
        receiver = WebhookReceiver(poller, SecretStr(SECRET), clock, host="127.0.0.1", port=0, path="/hook")
        await receiver.start()
        sandbox.config.webhook_url = receiver.url
        try:
            yield sandbox, client, clock, poller, receiver, media_dir
        finally:
            await poller.aclose()
            await receiver.aclose()


def expecting(clock: FakeClock) -> Expectation:
    """A 240 s forecast whose plan is the webhook one: nothing before the expected finish."""
    expectation = Expectation(1, GenerationMode.LITE, 45, clock.monotonic(), clock.now(), FORECAST, True)
    policy = dataclasses.replace(ForecastPolicy(), webhooks=True)
    expectation.polls = [expectation.submitted + t for t in plan(FORECAST, policy)]
    return expectation


async def until(condition: Callable[[], bool], *, seconds: float = 60.0) -> None:
    """Wait in real time for work the fake clock doesn't drive (a render, an HTTP delivery)."""
    give_up = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < give_up, "timed out waiting for the sandbox's webhook"
        await asyncio.sleep(0.01)


async def drive(clock: FakeClock, task: asyncio.Future[Any], poller: Poller) -> list[float]:
    """Advance fake time to each next sleep until the task ends; return the moments it woke at.

    Time moves only once nothing changes (no status request in flight, every sleep registered):
    the sandbox's herald sleeps on the same clock, and must not carry time past a poll the
    poller has yet to schedule."""
    woke: list[float] = []
    start = clock.monotonic()
    while not task.done():
        seen: tuple[object, ...] = ()
        quiet = 0
        while quiet < 5:
            await asyncio.sleep(0.001)
            now = (clock.sleepers, clock.next_deadline(), poller.polling)
            quiet = quiet + 1 if now == seen and not poller.polling else 0
            seen = now
        deadline = clock.next_deadline()
        if task.done() or deadline is None:
            continue
        await clock.advance(deadline - clock.monotonic())
        woke.append(clock.monotonic() - start)
    return woke


async def test_a_signed_webhook_ends_the_wait_with_one_request_and_no_lateness(rig: Rig) -> None:
    """A 240 s render: no poll before it ends, one status read when the event arrives, and the
    render is placed within seconds of its end (so the forecast learns its true length)."""
    sandbox, client, clock, poller, receiver, media = rig
    project_id = await create_job(client, media)
    expectation = expecting(clock)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expectation))
    await until(lambda: poller.watching == 1)
    await clock.advance(RENDER - 1)
    assert sandbox.counters.status_reads == 0  # nothing asked before the expected finish
    await clock.advance(1)
    await until(task.done)
    assert task.result().status == "complete"
    assert sandbox.counters.status_reads == 1
    assert sandbox.counters.webhooks["video.completed:200"] == 1
    assert receiver.events_received == 1
    assert expectation.ended_at is not None and expectation.ended_at - expectation.submitted < RENDER + 1
    sample = expectation.sample()
    assert sample is not None
    assert sample.low >= RENDER - WEBHOOK_SLACK and sample.high < RENDER + 1


async def test_a_lost_webhook_is_caught_by_the_safety_poll_at_the_windows_end(rig: Rig) -> None:
    """The event never comes: the plan's one poll, at the end of the forecast's window, finds it."""
    sandbox, client, clock, poller, _, media = rig
    sandbox.config.webhooks_lost = True
    project_id = await create_job(client, media)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expecting(clock)))
    await until(lambda: poller.watching == 1)
    woke = await drive(clock, task, poller)
    assert task.result().status == "complete"
    assert sandbox.counters.webhooks["video.completed:lost"] == 1
    assert woke[-1] == pytest.approx(FORECAST.late)
    assert sandbox.counters.status_reads == 1


async def test_a_job_without_a_forecast_is_polled_only_as_a_safety_net(rig: Rig) -> None:
    """No plan and no event: asked every `safety_interval` (60 s), not on the 5-20 s backoff."""
    sandbox, client, clock, poller, _, media = rig
    sandbox.config.webhooks_lost = True
    project_id = await create_job(client, media)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600))
    await until(lambda: poller.watching == 1)
    woke = await drive(clock, task, poller)
    assert task.result().status == "complete"
    assert woke == pytest.approx([60.0, 120.0, 180.0, 240.0])
    assert sandbox.counters.status_reads == 4


async def test_a_wrongly_signed_webhook_is_refused_and_polling_still_ends_the_wait(rig: Rig) -> None:
    """The receiver checks the sandbox's signature: signed with another secret, it answers 401
    (the sandbox retries, in vain), nothing is poked, and the safety poll finds the render."""
    sandbox, client, clock, poller, receiver, media = rig
    sandbox.config.webhook_secret = "not-the-bot-s-secret"
    project_id = await create_job(client, media)
    task = asyncio.ensure_future(poller.wait(project_id, within=3600, expect=expecting(clock)))
    await until(lambda: poller.watching == 1)
    await clock.advance(RENDER)
    await until(lambda: sandbox.counters.webhooks["video.completed:401"] >= 1)
    assert sandbox.counters.status_reads == 0 and receiver.events_received == 0
    woke = await drive(clock, task, poller)
    assert task.result().status == "complete"
    assert woke[-1] == pytest.approx(FORECAST.late - RENDER)
    assert sandbox.counters.webhooks["video.completed:200"] == 0
    assert sandbox.counters.status_reads == 1


def test_the_engine_polls_as_a_safety_net_only_when_webhooks_are_on(tmp_path: Path) -> None:
    """Webhook settings (a port and a secret) switch both the poller and the forecast's plan."""
    plain = Settings(_env_file=None, database_path=tmp_path / "db.sqlite3")  # type: ignore[call-arg]
    hooked = plain.model_copy(update={"webhook_port": 0, "webhook_secret": SecretStr(SECRET)})
    for settings, on in ((plain, False), (hooked, True)):
        config = EngineConfig.from_settings(settings, sandbox=True)
        assert config.poll.webhooks is on and config.forecast.webhooks is on
