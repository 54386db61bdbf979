"""Magic Hour webhooks: signatures checked, and a verified event ends a render's wait at once."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.models import JobHooks
from bot.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookReceiver, sign, signature_is_valid
from bot.services import Services
from bot.store import JobState
from tests.conftest import KeepFile, make_settings
from tests.jobs.test_engine import StateWaiter, file_request

SECRET = "whsec_test"


def signed(body: bytes, at: float, secret: str = SECRET) -> dict[str, str]:
    timestamp = str(int(at))
    return {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(secret, timestamp, body)}


def test_signature_rules() -> None:
    """Right secret and fresh timestamp pass; a wrong secret, a stale or missing stamp, a changed body fail."""
    body, now = b'{"type":"video.completed"}', 1_800_000_000.0
    good = signed(body, now)
    assert signature_is_valid(SECRET, good[TIMESTAMP_HEADER], good[SIGNATURE_HEADER], body, now)
    assert signature_is_valid(SECRET, good[TIMESTAMP_HEADER], good[SIGNATURE_HEADER].upper(), body, now + 299)
    assert not signature_is_valid("other", good[TIMESTAMP_HEADER], good[SIGNATURE_HEADER], body, now)
    assert not signature_is_valid(SECRET, good[TIMESTAMP_HEADER], good[SIGNATURE_HEADER], body, now + 301)
    assert not signature_is_valid(SECRET, good[TIMESTAMP_HEADER], good[SIGNATURE_HEADER], body + b" ", now)
    assert not signature_is_valid(SECRET, None, good[SIGNATURE_HEADER], body, now)
    assert not signature_is_valid(SECRET, "soon", good[SIGNATURE_HEADER], body, now)


class Pokes:
    """Records which projects were nudged."""

    def __init__(self) -> None:
        self.poked: list[str] = []

    def poke(self, project_id: str) -> bool:
        self.poked.append(project_id)
        return True


async def test_receiver_answers_by_the_rules() -> None:
    """Over HTTP: verified events nudge the poller; forged or malformed ones are refused and do nothing."""
    clock, pokes = FakeClock(), Pokes()
    receiver = WebhookReceiver(pokes, SecretStr(SECRET), clock, host="127.0.0.1", port=0, path="/hook")
    await receiver.start()
    now = clock.now().timestamp()
    try:
        async with httpx.AsyncClient() as http:
            event = json.dumps({"type": "video.completed", "payload": {"id": "p1", "status": "complete"}}).encode()
            ok = await http.post(receiver.url, content=event, headers=signed(event, now))
            forged = await http.post(receiver.url, content=event, headers=signed(event, now, secret="guess"))
            stale = await http.post(receiver.url, content=event, headers=signed(event, now - 3600))
            started = json.dumps({"type": "video.started", "payload": {"id": "p2"}}).encode()
            ignored = await http.post(receiver.url, content=started, headers=signed(started, now))
            junk = b"not json"
            malformed = await http.post(receiver.url, content=junk, headers=signed(junk, now))
        assert [ok.status_code, forged.status_code, stale.status_code] == [200, 401, 401]
        assert [ignored.status_code, malformed.status_code] == [200, 400]
        assert pokes.poked == ["p1"]
    finally:
        await receiver.aclose()


async def test_completed_event_delivers_without_waiting_for_a_poll(tmp_path: Path, sandbox, media_dir) -> None:
    """With polls an hour apart, a signed `video.completed` gets the result delivered at once."""
    settings = make_settings(
        tmp_path,
        sandbox.base_url,
        poll_initial_seconds=3600,
        poll_max_seconds=3600,
        webhook_secret=SecretStr(SECRET),
        webhook_host="127.0.0.1",
        webhook_port=0,
    )
    sandbox.config.render_seconds = 60
    services = await Services.open(settings)
    try:
        assert services.webhooks is not None
        sink, keeper = StateWaiter(), KeepFile(tmp_path / "out")
        record = await services.engine.submit(file_request(media_dir), JobHooks(sink=sink, deliverer=keeper))
        await sink.reached(JobState.SUBMITTED)
        await sandbox.clock.advance(61)  # rendered at Magic Hour; the next poll is an hour away
        project_id = (await services.engine.job(record.id)).project_id
        event = json.dumps({"type": "video.completed", "payload": {"id": project_id}}).encode()
        async with httpx.AsyncClient() as http:
            answer = await http.post(
                services.webhooks.url, content=event, headers=signed(event, services.clock.now().timestamp())
            )
        assert answer.status_code == 200
        final = await services.engine.wait(record.id)
        assert final.state is JobState.DONE and len(keeper.delivered) == 1
        assert sandbox.counters.requests["get_project"] == 1
    finally:
        await services.aclose()


async def test_webhooks_are_off_without_a_port(tmp_path: Path, sandbox) -> None:
    """No port (the default): no receiver, polling only."""
    settings = make_settings(tmp_path, sandbox.base_url, webhook_secret=SecretStr(SECRET))
    assert not settings.webhooks_enabled
    services = await Services.open(settings)
    try:
        assert services.webhooks is None
    finally:
        await services.aclose()


def test_default_path_is_documented() -> None:
    """The path operators configure at Magic Hour is the one `.env.example` shows."""
    text = (Path(__file__).resolve().parents[2] / ".env.example").read_text()
    assert f"WEBHOOK_PATH={make_settings(Path(), 'http://x').webhook_path}" in text
