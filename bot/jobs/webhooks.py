"""Receiving Magic Hour's signed webhooks, so a finished render is noticed at once.

Magic Hour signs each event: header `magic-hour-event-signature` is the hex HMAC-SHA256 of
`"{timestamp}.{raw body}"` with the endpoint's secret, and `magic-hour-event-timestamp` is Unix
seconds. Events are only a nudge: on `video.completed` or `video.errored` the poller asks for that
project's status at once. The status the bot acts on always comes from the API itself, so a
forged or replayed event could at worst cause one extra status request, and polling remains the
safety net for events that never arrive.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Protocol

from aiohttp import web
from pydantic import SecretStr

from bot.clock import Clock

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "magic-hour-event-signature"
TIMESTAMP_HEADER = "magic-hour-event-timestamp"
MAX_SKEW_SECONDS = 300.0  # Magic Hour's guidance: reject timestamps more than ~5 minutes off
MAX_BODY_BYTES = 1 << 20
NUDGING_EVENTS = frozenset({"video.completed", "video.errored"})


class Nudgeable(Protocol):
    """What the receiver needs from the poller."""

    def poke(self, project_id: str) -> bool:
        """Ask for this project's status now; False if it isn't being watched."""
        ...


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature Magic Hour sends for `body` at `timestamp`."""
    message = timestamp.encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def signature_is_valid(secret: str, timestamp: str | None, signature: str | None, body: bytes, now: float) -> bool:
    """A constant-time check of the signature, and of the timestamp's freshness."""
    if not timestamp or not signature:
        return False
    try:
        sent_at = float(timestamp)
    except ValueError:
        return False
    if abs(now - sent_at) > MAX_SKEW_SECONDS:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature.strip().lower())


class WebhookReceiver:
    """A small aiohttp server that turns verified events into poller nudges."""

    def __init__(
        self,
        poller: Nudgeable,
        secret: SecretStr,
        clock: Clock,
        *,
        host: str,
        port: int,
        path: str,
    ) -> None:
        self._poller = poller
        self._secret = secret
        self._clock = clock
        self._host = host
        self._port = port
        self._path = path
        self._runner: web.AppRunner | None = None
        self.events_received = 0

    @property
    def url(self) -> str:
        """Where the receiver listens (the bound port, once started)."""
        port = self._port
        if self._runner is not None and self._runner.addresses:
            port = self._runner.addresses[0][1]
        return f"http://{self._host}:{port}{self._path}"

    async def start(self) -> None:
        """Start listening."""
        app = web.Application(client_max_size=MAX_BODY_BYTES)
        app.router.add_post(self._path, self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self._host, self._port).start()
        log.info("receiving Magic Hour webhooks on port %s", self.url.rsplit(":", 1)[-1])

    async def aclose(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        valid = signature_is_valid(
            self._secret.get_secret_value(),
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            body,
            self._clock.now().timestamp(),
        )
        if not valid:
            log.warning("refused a webhook with a missing, wrong or stale signature")
            return web.json_response({"message": "invalid signature"}, status=401)
        try:
            event = json.loads(body)
            kind = str(event["type"])
            project_id = str(event["payload"]["id"])
        except (ValueError, KeyError, TypeError):
            return web.json_response({"message": "malformed event"}, status=400)
        self.events_received += 1
        if kind in NUDGING_EVENTS:
            watched = self._poller.poke(project_id)
            log.info("webhook %s for project %s%s", kind, project_id, "" if watched else " (not ours or done)")
        # Answer 2xx for anything verified: Magic Hour retries non-2xx for up to a day.
        return web.json_response({"ok": True})
