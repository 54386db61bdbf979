"""Receiving Magic Hour's signed webhooks, so a finished render is noticed at once.

Magic Hour signs each event: header `magic-hour-event-signature` is the hex HMAC-SHA256 of
`"{timestamp}.{raw body}"` with the endpoint's secret, and `magic-hour-event-timestamp` is Unix
seconds. Events are only a nudge: on `video.completed` or `video.errored` the poller asks for that
project's status at once (or, when another process follows it, `relay` tells that one through
`PROJECT_CHANNEL`). The status the bot acts on always comes from the API itself, so a forged or
replayed event could at worst cause one extra status request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web
from pydantic import SecretStr

from bot.clock import Clock
from bot.listening import Listener, ListenLimits, answer

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"
MAX_SKEW_SECONDS = 300.0  # Magic Hour's guidance: reject timestamps more than ~5 minutes off
MAX_BODY_BYTES = 1 << 20
NUDGING_EVENTS = frozenset({"video.completed", "video.errored"})
KNOWN_EVENTS = NUDGING_EVENTS | {"video.started"}
_PROJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,128}", re.ASCII)
PROJECT_CHANNEL = "lipsync_project"  # notifications naming a project a webhook spoke of


class Nudgeable(Protocol):
    """What the receiver needs from the poller."""

    def poke(self, project_id: str) -> bool:
        """Ask for this project's status now; False if it isn't being watched."""
        ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Magic Hour sends for `body` at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


_SIGNATURE = re.compile(r"[0-9a-fA-F]{64}", re.ASCII)  # hex of an HMAC-SHA256
_TIMESTAMP = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,9})?", re.ASCII)  # finite by construction


class MalformedSignature(ValueError):
    """The signature headers are missing or not in Magic Hour's format (answered 400, not 401)."""


@dataclass(frozen=True)
class SignatureHeaders:
    """The two signature headers, checked for form (not yet for truth)."""

    timestamp: str
    """As sent: it is part of the signed message."""
    sent_at: float
    """The timestamp in Unix seconds, always finite."""
    signature: bytes
    """The hex signature, lower-case ASCII, ready for a constant-time comparison."""


def parse_signature_headers(timestamp: str | None, signature: str | None) -> SignatureHeaders:
    """Check the headers' form; raise `MalformedSignature` (with a fixed reason) if it is wrong."""
    if timestamp is None or signature is None:
        raise MalformedSignature("a signature header is missing")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise MalformedSignature("the timestamp is not decimal Unix seconds")
    if not _SIGNATURE.fullmatch(signature):
        raise MalformedSignature("the signature is not 64 hex digits")
    return SignatureHeaders(timestamp, float(timestamp), signature.lower().encode("ascii"))


def signature_matches(secret: str, headers: SignatureHeaders, body: bytes, now: float) -> bool:
    """True if the timestamp is fresh and the signature is right (compared in constant time, as bytes)."""
    if not abs(now - headers.sent_at) <= MAX_SKEW_SECONDS:
        return False
    expected = sign(secret, headers.timestamp, body).encode("ascii")
    return hmac.compare_digest(expected, headers.signature)


def signature_is_valid(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> bool:
    """Well-formed, fresh and right: the whole check in one call (malformed headers are simply invalid)."""
    try:
        headers = parse_signature_headers(timestamp, signature)
    except MalformedSignature:
        return False
    return signature_matches(secret, headers, body, now)


class WebhookReceiver:
    """A small HTTP server (`bot.listening`) that turns verified events into poller nudges.

    Answers: 400 for a request whose signature headers are missing or malformed (the signature not
    64 hex digits, the timestamp not plain decimal Unix seconds: `nan`, `inf`, `1e9`, non-ASCII
    digits are all malformed), 401 for a well-formed but wrong signature or a timestamp more than
    `MAX_SKEW_SECONDS` away, 400 for a verified body that is not an event (a body nested too deep to
    parse included, and a project id that isn't a short run of letters, digits, `-` and `_`), 2xx
    otherwise. Every refusal is one log line, never a traceback, and never quotes what the sender
    sent; a project id is logged only once its shape is checked, so it can't forge or flood a line.
    """

    def __init__(
        self,
        poller: Nudgeable,
        secret: SecretStr,
        clock: Clock,
        *,
        host: str,
        port: int,
        path: str,
        relay: Callable[[str], Awaitable[None]] | None = None,
        limits: ListenLimits | None = None,
    ) -> None:
        self._poller = poller
        self._relay = relay
        self._secret = secret
        self._clock = clock
        self._host = host
        self._path = path
        limits = limits or ListenLimits(max_body_bytes=MAX_BODY_BYTES)
        self._listener = Listener(
            {("POST", path): self._handle}, host=host, port=port, clock=clock, limits=limits, name="webhooks"
        )
        self.events_received = 0

    @property
    def url(self) -> str:
        """Where the receiver listens (the bound port, once started)."""
        return f"http://{self._host}:{self._listener.port}{self._path}"

    @property
    def listener(self) -> Listener:
        """The listening port, with its limits and open connections."""
        return self._listener

    async def start(self) -> None:
        """Start listening."""
        await self._listener.start()
        log.info("receiving Magic Hour webhooks on port %s", self._listener.port)

    async def aclose(self) -> None:
        """Stop listening."""
        await self._listener.aclose()

    async def _handle(self, request: web.BaseRequest) -> web.Response:
        try:
            headers = parse_signature_headers(
                request.headers.get(TIMESTAMP_HEADER), request.headers.get(SIGNATURE_HEADER)
            )
        except MalformedSignature as exc:
            # The reason is ours; the sender's bytes are never written to the log.
            log.warning("refused a webhook: %s", exc)
            return answer(400, "malformed signature headers")
        body = await self._listener.read_body(request)
        if not signature_matches(self._secret.get_secret_value(), headers, body, self._clock.now().timestamp()):
            log.warning("refused a webhook with a wrong or stale signature")
            return answer(401, "invalid signature")
        event = parse_event(body)
        if event is None:
            log.warning("refused a signed webhook whose body is not an event")
            return answer(400, "malformed event")
        kind, project_id = event
        self.events_received += 1
        if kind in NUDGING_EVENTS:
            watched = self._poller.poke(project_id)
            if not watched and self._relay is not None:
                try:
                    await self._relay(project_id)  # another process may be following it
                except Exception:
                    log.exception("could not pass a webhook for project %s on to other processes", project_id)
            log.info("webhook %s for project %s%s", kind, project_id, "" if watched else " (not followed here)")
        # Answer 2xx for anything verified: Magic Hour retries non-2xx for up to a day.
        return web.json_response({"ok": True})


def parse_event(body: bytes) -> tuple[str, str] | None:
    """(kind, project id) of a verified body, or None if it isn't an event this receiver can name.

    Both end up in log lines and a project id in a database notification, so they are checked
    for shape: the kind is one Magic Hour sends (else "other"), the id is a short run of letters,
    digits, `-` and `_`. A body nested too deep for the parser is simply not an event.
    """
    try:
        event = json.loads(body)
        kind = event["type"]
        project_id = event["payload"]["id"]
    except (ValueError, KeyError, TypeError, RecursionError):
        return None
    if not isinstance(project_id, str) or not _PROJECT_ID.fullmatch(project_id):
        return None
    return (kind if kind in KNOWN_EVENTS else "other"), project_id
