"""The bot's listening ports (webhooks, metrics and health), held to bounds the network can't stretch.

Both ports speak plain HTTP through aiohttp's low-level server. Each `Listener` bounds its
connections, the time to send headers and body, and the body's size (`ListenLimits`), and answers
one request per connection; its timers run on the injected `Clock`. docs/design-notes.md, "Hostile
input", says what each bound guards against.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from bot.clock import Clock

log = logging.getLogger(__name__)

Handler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]

_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"


@dataclass(frozen=True)
class ListenLimits:
    """How much one listening port lets the network hold."""

    max_connections: int = 32
    header_seconds: float = 10.0
    body_seconds: float = 10.0
    max_body_bytes: int = 1 << 20


def answer(status: int, message: str) -> web.Response:
    """A small JSON answer: `{"message": ...}`."""
    return web.json_response({"message": message}, status=status)


class _Busy(asyncio.Protocol):
    """What a connection past the limit gets: 503, then closed."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if isinstance(transport, asyncio.WriteTransport):
            transport.write(_BUSY)
        transport.close()


class _BoundedServer(web.Server):
    """aiohttp's low-level server, counting connections and closing those whose headers are late."""

    def __init__(self, handler: Handler, limits: ListenLimits, clock: Clock, **kwargs: Any) -> None:  # noqa: ANN401
        super().__init__(handler, **kwargs)
        self._limits = limits
        self._clock = clock
        self._open = 0
        self._deadlines: dict[object, asyncio.Task[None]] = {}

    @property
    def open_connections(self) -> int:
        """Connections accepted and not yet closed."""
        return self._open

    def __call__(self) -> RequestHandler:
        if self._open >= self._limits.max_connections:
            return _Busy()  # type: ignore[return-value] # a protocol all the same, to the event loop
        self._open += 1
        return super().__call__()

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._deadlines[handler] = asyncio.create_task(self._close_if_late(handler))

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        super().connection_lost(handler, exc)
        self._open -= 1
        self.began(handler)

    def began(self, handler: object) -> None:
        """A request's headers arrived on this connection: it is no longer on the clock."""
        deadline = self._deadlines.pop(handler, None)
        if deadline is not None:
            deadline.cancel()

    async def _close_if_late(self, handler: RequestHandler) -> None:
        await self._clock.sleep(self._limits.header_seconds)
        self._deadlines.pop(handler, None)
        log.info("closed a connection whose request didn't arrive within %g s", self._limits.header_seconds)
        handler.force_close()
        if handler.transport is not None:
            handler.transport.close()


class Listener:
    """One listening port: routes `(method, path)` to handlers, within `ListenLimits`."""

    def __init__(
        self,
        routes: Mapping[tuple[str, str], Handler],
        *,
        host: str,
        port: int,
        clock: Clock,
        limits: ListenLimits | None = None,
        name: str = "http",
    ) -> None:
        self._routes = dict(routes)
        self._paths = {path for _, path in routes}
        self._host = host
        self._port = port
        self._clock = clock
        self.limits = limits or ListenLimits()
        self._name = name
        self._server: _BoundedServer | None = None
        self._runner: web.ServerRunner | None = None
        self.port: int | None = port or None  # the bound port once started (port 0 picks one)

    @property
    def open_connections(self) -> int:
        """Connections open now (0 before `start`)."""
        return self._server.open_connections if self._server is not None else 0

    async def start(self) -> None:
        """Start listening (port 0 picks a free one; `port` tells which)."""
        self._server = _BoundedServer(
            self._dispatch,
            self.limits,
            self._clock,
            access_log=None,
            auto_decompress=False,
            keepalive_timeout=self.limits.header_seconds,
            lingering_time=0,  # what a client didn't send in time isn't waited for after the answer
        )
        self._runner = web.ServerRunner(self._server)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        addresses = self._runner.addresses
        self.port = int(addresses[0][1]) if addresses else self._port

    async def aclose(self) -> None:
        """Stop listening and close every connection."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def read_body(self, request: web.BaseRequest) -> bytes:
        """The whole body, within the size and time limits (else `web.HTTPException` 413 or 408)."""
        limit = self.limits.max_body_bytes
        if request.content_length is not None and request.content_length > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=request.content_length)
        reading = asyncio.ensure_future(_read_all(request, limit))
        timer = asyncio.ensure_future(self._clock.sleep(self.limits.body_seconds))
        try:
            await asyncio.wait({reading, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            late = not reading.done()
            if late:
                reading.cancel()
        if late:
            raise web.HTTPRequestTimeout
        return reading.result()

    async def _dispatch(self, request: web.BaseRequest) -> web.StreamResponse:
        if self._server is not None:
            self._server.began(request.protocol)
        handler = self._routes.get((request.method, request.path))
        try:
            if handler is not None:
                response = await handler(request)
            elif request.path in self._paths:
                response = answer(405, "method not allowed")
            else:
                response = answer(404, "not found")
        except web.HTTPException as exc:
            response = answer(exc.status, exc.reason)
        except Exception as exc:
            log.error("%s: a request failed (%s)", self._name, type(exc).__name__)
            response = answer(500, "internal error")
        response.force_close()
        return response


async def _read_all(request: web.BaseRequest, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_chunked(1 << 16):
        size += len(chunk)
        if size > limit:
            raise web.HTTPRequestEntityTooLarge(max_size=limit, actual_size=size)
        chunks.append(chunk)
    return b"".join(chunks)
