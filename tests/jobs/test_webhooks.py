"""Magic Hour webhooks: signatures checked, and a verified event ends a render's wait at once."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.jobs.models import JobHooks
from bot.jobs.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    MalformedSignature,
    WebhookReceiver,
    parse_signature_headers,
    sign,
    signature_is_valid,
)
from bot.services import Services
from bot.store import JobState
from tests.conftest import KeepFile, make_settings

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
    for stamp in ("nan", "inf", "-inf", "1e9"):
        # Signed correctly over the odd stamp, so only the stamp's form can refuse it.
        assert not signature_is_valid(SECRET, stamp, sign(SECRET, stamp, body), body, now)
    assert not signature_is_valid(SECRET, good[TIMESTAMP_HEADER], "é" * 64, body, now)


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        (None, "a" * 64),
        ("1800000000", None),
        ("nan", "a" * 64),
        ("Infinity", "a" * 64),
        ("1800000000", "a" * 63),
        ("1800000000", "a" * 65),
        ("1800000000", "g" * 64),
        ("1800000000", "é" * 64),
        ("١٨٠٠٠٠٠٠٠٠", "a" * 64),  # digits float() would take
        ("1_800_000_000", "a" * 64),
    ],
)
def test_malformed_headers_are_told_apart(timestamp: str | None, signature: str | None) -> None:
    """Missing, non-hex, wrong-length and non-numeric headers are malformed, not merely wrong."""
    with pytest.raises(MalformedSignature):
        parse_signature_headers(timestamp, signature)


def test_well_formed_headers_parse() -> None:
    """Decimal seconds and either case of hex are well formed; the signature is kept as lower-case bytes."""
    headers = parse_signature_headers("1800000000.25", "AB" * 32)
    assert headers.sent_at == 1_800_000_000.25 and headers.signature == b"ab" * 32


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


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[WebhookReceiver, FakeClock, Pokes]]:
    """A receiver listening on 127.0.0.1, with a fake clock and a poller that records nudges."""
    clock, pokes = FakeClock(), Pokes()
    running = WebhookReceiver(pokes, SecretStr(SECRET), clock, host="127.0.0.1", port=0, path="/hook")
    await running.start()
    yield running, clock, pokes
    await running.aclose()


EVENT = json.dumps({"type": "video.completed", "payload": {"id": "p1"}}).encode()


def _headers(timestamp: str | bytes | None, signature: str | bytes | None) -> dict[bytes, bytes]:
    """Raw header bytes, so a test can send what no well-behaved client would."""
    headers: dict[bytes, bytes] = {}
    for name, value in ((TIMESTAMP_HEADER, timestamp), (SIGNATURE_HEADER, signature)):
        if value is not None:
            headers[name.encode()] = value if isinstance(value, bytes) else value.encode()
    return headers


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        pytest.param(None, None, id="no headers"),
        pytest.param("NOW", None, id="no signature"),
        pytest.param(None, "SIGNED", id="no timestamp"),
        pytest.param("NOW", "é".encode() * 32, id="non-ASCII signature"),
        pytest.param("NOW", b"\xff" * 64, id="non-UTF-8 signature"),
        pytest.param("NOW", "z" * 64, id="non-hex signature"),
        pytest.param("NOW", "ab" * 31, id="short signature"),
        pytest.param("NOW", "ab" * 33, id="long signature"),
        pytest.param("NOW", "", id="empty signature"),
        pytest.param("nan", "SIGNED", id="nan timestamp"),
        pytest.param("NaN", "SIGNED", id="NaN timestamp"),
        pytest.param("inf", "SIGNED", id="inf timestamp"),
        pytest.param("-inf", "SIGNED", id="-inf timestamp"),
        pytest.param("1e9", "SIGNED", id="exponent timestamp"),
        pytest.param("-1", "SIGNED", id="negative timestamp"),
        pytest.param("soon", "SIGNED", id="word timestamp"),
        pytest.param("١٨٠٠".encode(), "SIGNED", id="non-ASCII digits"),
    ],
)
async def test_malformed_headers_get_400_and_one_log_line(
    receiver: tuple[WebhookReceiver, FakeClock, Pokes],
    caplog: pytest.LogCaptureFixture,
    timestamp: str | bytes | None,
    signature: str | bytes | None,
) -> None:
    """Over HTTP: malformed signature headers are a 400 with one warning, no traceback and no nudge.

    Where the signature is "SIGNED" it is the right HMAC over the odd timestamp, so a non-finite
    stamp can't slip past the freshness check on a correct signature.
    """
    running, clock, pokes = receiver
    if timestamp == "NOW":
        timestamp = str(int(clock.now().timestamp()))
    if signature == "SIGNED":
        stamp = timestamp.decode() if isinstance(timestamp, bytes) else str(timestamp)
        signature = sign(SECRET, stamp, EVENT)
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        answer = await http.post(running.url, content=EVENT, headers=_headers(timestamp, signature))
    assert answer.status_code == 400
    assert answer.json() == {"message": "malformed signature headers"}
    assert pokes.poked == []
    ours = [r for r in caplog.records if r.name == "bot.jobs.webhooks"]
    assert len(ours) == 1 and ours[0].levelno == logging.WARNING
    assert all(r.exc_info is None and r.levelno < logging.ERROR for r in caplog.records)


async def test_wrong_and_stale_signatures_stay_401(
    receiver: tuple[WebhookReceiver, FakeClock, Pokes], caplog: pytest.LogCaptureFixture
) -> None:
    """Well-formed but wrong, or more than five minutes off either way: 401, one line each; right: 200."""
    running, clock, pokes = receiver
    now = clock.now().timestamp()
    caplog.set_level(logging.DEBUG)
    async with httpx.AsyncClient() as http:
        wrong = await http.post(running.url, content=EVENT, headers=signed(EVENT, now, secret="guess"))
        old = await http.post(running.url, content=EVENT, headers=signed(EVENT, now - 301))
        future = await http.post(running.url, content=EVENT, headers=signed(EVENT, now + 301))
        other_body = await http.post(running.url, content=EVENT + b" ", headers=signed(EVENT, now))
        right = await http.post(running.url, content=EVENT, headers=signed(EVENT, now - 299))
    assert [wrong.status_code, old.status_code, future.status_code, other_body.status_code] == [401] * 4
    assert right.status_code == 200 and pokes.poked == ["p1"]
    refusals = [r for r in caplog.records if r.name == "bot.jobs.webhooks" and r.levelno == logging.WARNING]
    assert len(refusals) == 4
    assert all(r.exc_info is None for r in caplog.records)


async def test_completed_event_delivers_without_waiting_for_a_poll(tmp_path: Path, sandbox, media_dir) -> None:
    """With polls an hour apart, a signed `video.completed` gets the result delivered at once."""
    from tests.jobs.test_engine import StateWaiter, file_request  # only this test needs the engine's helpers

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


async def test_a_body_nested_too_deep_is_a_400_not_a_500(receiver, caplog: pytest.LogCaptureFixture) -> None:
    """A verified body of 100,000 nested lists is not an event; the parser's recursion is no crash."""
    running, clock, pokes = receiver
    deep = b"[" * 100_000 + b"]" * 100_000
    nested = b'{"type": "video.completed", "payload": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    async with httpx.AsyncClient() as http:
        for body in (deep, nested):
            answer = await http.post(running.url, content=body, headers=signed(body, clock.now().timestamp()))
            assert answer.status_code == 400 and answer.json() == {"message": "malformed event"}
    assert pokes.poked == [] and "Traceback" not in caplog.text


@pytest.mark.parametrize(
    "project_id",
    [
        "p1\nINFO bot.jobs.engine: job 1: done (forged)",
        "p1\r\x1b[2K",
        "x" * 900_000,
        "p 1",
        "",
        12345,
        None,
        ["p1"],
    ],
    ids=["newline", "escapes", "900kB", "space", "empty", "number", "null", "list"],
)
async def test_an_odd_project_id_never_reaches_a_log_line(receiver, caplog, project_id: object) -> None:
    """A verified event whose project id isn't a short plain id is refused, and never logged or relayed."""
    running, clock, pokes = receiver
    caplog.set_level(logging.DEBUG)
    body = json.dumps({"type": "video.completed", "payload": {"id": project_id}}).encode()
    async with httpx.AsyncClient() as http:
        answer = await http.post(running.url, content=body, headers=signed(body, clock.now().timestamp()))
    assert answer.status_code == 400
    assert pokes.poked == []
    for record in caplog.records:
        line = record.getMessage()
        assert "\n" not in line and "forged" not in line and len(line) < 300, line


async def test_an_unknown_event_kind_is_logged_by_name_only_when_known(receiver, caplog) -> None:
    running, clock, pokes = receiver
    caplog.set_level(logging.INFO)
    body = json.dumps({"type": "video.completed\nforged line" + "k" * 10_000, "payload": {"id": "p9"}}).encode()
    async with httpx.AsyncClient() as http:
        answer = await http.post(running.url, content=body, headers=signed(body, clock.now().timestamp()))
    assert answer.status_code == 200 and pokes.poked == []  # verified, but not an event that nudges
    assert "forged" not in caplog.text and max(len(r.getMessage()) for r in caplog.records) < 300
