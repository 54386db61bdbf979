"""The storage client's transport: httpx's own, reading the socket in large pieces.

httpcore asks its network stream for at most 64 KiB at a time, and each read costs about as much
Python as it moves bytes: a 1 GiB download made 16,000-32,000 trips through anyio, httpcore and
h11, which kept the download CPU-bound at a third of curl's speed. The stream below asks for up to
`READ_SIZE` instead, and lets asyncio take that much from the socket in one go (it takes at most
256 KiB otherwise; fewer, larger reads took about a third off the client's user CPU per GiB). A read still returns
whatever the socket has, never waits for more, so nothing about timing changes, only the number
of trips; memory grows by a few pieces of `READ_SIZE` at most. h11 and h2 take data of any size.

Only the client that `MagicHourClient` creates for storage uses it (the API's answers are small);
proxies from the environment keep httpx's own transports.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore
import httpx

# httpcore's interface takes a `timeout` argument on every call; these only pass it on.
# ruff: noqa: ASYNC109

READ_SIZE = 1024 * 1024

_SocketOption = tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]


class _LargeReadStream(httpcore.AsyncNetworkStream):
    """A network stream whose reads ask for at least `size` bytes."""

    def __init__(self, inner: httpcore.AsyncNetworkStream, size: int) -> None:
        self._inner = inner
        self._size = size

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max(max_bytes, self._size), timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await self._inner.start_tls(ssl_context, server_hostname, timeout), self._size)

    def get_extra_info(self, info: str) -> Any:  # noqa: ANN401 - httpcore's own signature
        return self._inner.get_extra_info(info)


def _widen_socket_reads(stream: httpcore.AsyncNetworkStream, size: int) -> None:
    """Let the asyncio transport under `stream` receive up to `size` bytes per socket read.

    httpcore's anyio stream and anyio's socket stream keep the transport in private attributes;
    if a release renames them this finds nothing and reads stay at asyncio's default size (slower,
    never wrong).
    """
    transport = getattr(getattr(stream, "_stream", None), "_transport", None)
    if isinstance(transport, asyncio.Transport) and isinstance(getattr(transport, "max_size", None), int):
        transport.max_size = max(transport.max_size, size)  # type: ignore[attr-defined]


class _LargeReadBackend(httpcore.AsyncNetworkBackend):
    """httpcore's asyncio backend, with streams that read in large pieces."""

    def __init__(self, size: int) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._size = size

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        stream = await self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        _widen_socket_reads(stream, self._size)
        return _LargeReadStream(stream, self._size)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[_SocketOption] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _LargeReadStream(await self._inner.connect_unix_socket(path, timeout, socket_options), self._size)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class StorageTransport(httpx.AsyncHTTPTransport):
    """`httpx.AsyncHTTPTransport` with httpx's defaults (TLS verification, pool limits), whose
    connections read in pieces of up to `read_size` bytes."""

    def __init__(self, read_size: int = READ_SIZE) -> None:
        # One TLS context (loading the CA bundle takes a tenth of a second), given to both pools.
        ssl_context = httpx.create_ssl_context()
        super().__init__(verify=ssl_context)
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)
        # The pool httpx builds, with its defaults, but on our backend (httpx takes no backend).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_LargeReadBackend(read_size),
        )
