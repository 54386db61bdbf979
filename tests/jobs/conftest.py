"""Fixtures for the engine's tests: services opened on the test's sandbox, closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox
from bot.services import Services
from tests.conftest import make_settings


@pytest.fixture
async def open_services(tmp_path: Path, sandbox: Sandbox) -> AsyncIterator[Callable[..., object]]:
    """`await open_services(**settings)`: the bot's services against this test's sandbox."""
    opened: list[Services] = []

    async def factory(**overrides: object) -> Services:
        settings = make_settings(tmp_path, sandbox.base_url, **overrides)
        services = await Services.open(settings)
        opened.append(services)
        return services

    yield factory
    for services in opened:
        await services.aclose()


@pytest.fixture
def fake_clock() -> FakeClock:
    """The clock `on_fake_clock`'s services run on: time moves only when a test moves it."""
    return FakeClock()


@pytest.fixture
async def on_fake_clock(tmp_path: Path, sandbox: Sandbox, fake_clock: FakeClock) -> AsyncIterator[Services]:
    """The bot's services against this test's sandbox, on `fake_clock` (see `move_clock_until`)."""
    services = await Services.open(make_settings(tmp_path, sandbox.base_url), clock=fake_clock)
    try:
        yield services
    finally:
        await services.aclose()
