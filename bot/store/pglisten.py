"""PostgreSQL's notifications as one process hears them: a dedicated connection that reconnects.

`PostgresDatabase.listen` hands channels and callbacks to a `Listener`. It keeps one connection of
its own (outside the pool: a listening connection is never in a transaction), and when that
connection drops (a restart, a failover) it connects again with growing pauses and listens on
every channel again. A notification missed meanwhile is only a nudge: whatever it announced is
also read from the database (the heartbeat, polling).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

_RECONNECT_SECONDS = (0.5, 1.0, 2.0, 5.0, 10.0)


class Listener:
    """One process's LISTEN connection to PostgreSQL, and the callbacks of each channel."""

    def __init__(self, url: str, *, connect_seconds: float, close_seconds: float) -> None:
        self._url = url
        self._connect_seconds = connect_seconds
        self._close_seconds = close_seconds
        self._callbacks: dict[str, list[Callable[[str], object]]] = {}
        self._conn: Any = None
        self._reconnecting: asyncio.Task[None] | None = None
        self._closed = False

    async def listen(self, channel: str, callback: Callable[[str], object]) -> None:
        """Call `callback(payload)` for each notification on `channel`."""
        self._callbacks.setdefault(channel, []).append(callback)
        if self._conn is None:
            await self._connect()
        else:
            await self._conn.add_listener(channel, self._dispatch)

    def _dispatch(self, conn: object, pid: int, channel: str, payload: str) -> None:
        for callback in self._callbacks.get(channel, []):
            try:
                callback(payload)
            except Exception:
                log.exception("a notification handler for %s failed", channel)

    async def _connect(self) -> None:
        conn = await asyncpg.connect(self._url, timeout=self._connect_seconds)
        conn.add_termination_listener(self._lost)
        for channel in self._callbacks:
            await conn.add_listener(channel, self._dispatch)
        self._conn = conn

    def _lost(self, conn: object) -> None:
        if self._closed or conn is not self._conn:
            return
        log.warning("lost the PostgreSQL connection that listens for notifications; reconnecting")
        self._conn = None
        self._reconnecting = asyncio.get_running_loop().create_task(self._reconnect(), name="pg-listen-reconnect")

    async def _reconnect(self) -> None:
        attempt = 0
        while not self._closed and self._conn is None:
            try:
                await self._connect()
                log.info("listening for notifications again")
                return
            except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
                pause = _RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)]
                log.warning("could not reconnect the notification listener (%s); again in %.1f s", exc, pause)
                attempt += 1
                await asyncio.sleep(pause)  # real time: waiting for the server to come back

    async def aclose(self) -> None:
        """Stop reconnecting and close the connection (for a bounded time)."""
        self._closed = True
        if self._reconnecting is not None:
            self._reconnecting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reconnecting
        if self._conn is not None:
            conn, self._conn = self._conn, None
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._close_seconds)
