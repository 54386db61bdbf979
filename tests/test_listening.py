"""The listening ports' bounds (`bot.listening`), over real sockets on a fake clock."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.config import Settings
from bot.listening import Listener, ListenLimits
from bot.services import Services
from tests.conftest import make_settings

LIMITS = ListenLimits(max_connections=3, header_seconds=10.0, body_seconds=7.0, max_body_bytes=1000)


async def until(condition: Callable[[], bool]) -> None:
    """Let the loop run until `condition` holds (the server side of a socket is handled there)."""
    async with asyncio.timeout(10):
        while not condition():
            await asyncio.sleep(0.001)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def listener(clock: FakeClock) -> AsyncIterator[Listener]:
    async def echo(request: web.BaseRequest) -> web.Response:
        return web.json_response({"got": len(await server.read_body(request))})

    async def hello(request: web.BaseRequest) -> web.Response:
        return web.json_response({"hello": True})

    server = Listener(
        {("POST", "/echo"): echo, ("GET", "/hello"): hello}, host="127.0.0.1", port=0, clock=clock, limits=LIMITS
    )
    await server.start()
    try:
        yield server
    finally:
        await server.aclose()


async def connect(listener: Listener) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    assert listener.port is not None
    return await asyncio.open_connection("127.0.0.1", listener.port)


async def closed_by_server(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends before it closes the connection."""
    async with asyncio.timeout(10):
        return await reader.read()


async def test_past_the_connection_limit_a_connection_is_answered_503_and_closed(listener: Listener) -> None:
    held = [await connect(listener) for _ in range(LIMITS.max_connections)]
    await until(lambda: listener.open_connections == LIMITS.max_connections)
    reader, _ = await connect(listener)
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 503")
    assert listener.open_connections == LIMITS.max_connections
    for _, writer in held:
        writer.close()
    await until(lambda: listener.open_connections == 0)
    async with httpx.AsyncClient() as http:
        assert (await http.get(f"http://127.0.0.1:{listener.port}/hello")).json() == {"hello": True}


async def test_headers_trickled_past_the_deadline_lose_the_connection(listener: Listener, clock: FakeClock) -> None:
    """Clients sending a header byte now and then hold their sockets only `header_seconds`."""
    slow = [await connect(listener) for _ in range(LIMITS.max_connections)]
    for _, writer in slow:
        writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        await writer.drain()
    await until(lambda: listener.open_connections == LIMITS.max_connections and clock.sleepers == len(slow))
    await clock.advance(LIMITS.header_seconds - 1)
    for _, writer in slow:  # still within the deadline: more bytes, still no end of headers
        writer.write(b"b")
        await writer.drain()
    assert listener.open_connections == LIMITS.max_connections
    await clock.advance(1)
    for reader, _ in slow:
        assert await closed_by_server(reader) == b""
    await until(lambda: listener.open_connections == 0)


async def test_a_request_that_arrives_in_time_is_off_the_clock(listener: Listener, clock: FakeClock) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"http://127.0.0.1:{listener.port}/echo", content=b"x" * 10)
    assert answer.json() == {"got": 10}
    assert answer.headers["Connection"] == "close"  # one request per connection
    await until(lambda: clock.sleepers == 0)


async def test_a_body_that_doesnt_arrive_in_time_is_408(listener: Listener, clock: FakeClock) -> None:
    reader, writer = await connect(listener)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"x" * 10)
    await writer.drain()
    await until(lambda: LIMITS.body_seconds in clock.sleep_calls)  # the body is on the clock now
    assert clock.sleepers == 1  # and the headers no longer are
    await clock.advance(LIMITS.body_seconds)
    assert (await closed_by_server(reader)).startswith(b"HTTP/1.1 408")


async def test_a_body_past_the_size_limit_is_413(listener: Listener) -> None:
    async with httpx.AsyncClient() as http:
        declared = await http.post(f"http://127.0.0.1:{listener.port}/echo", content=b"x" * 1001)

        async def undeclared():  # chunked: no Content-Length to refuse up front
            yield b"x" * 600
            yield b"x" * 600

        streamed = await http.post(f"http://127.0.0.1:{listener.port}/echo", content=undeclared())
    assert declared.status_code == 413 and streamed.status_code == 413


async def test_unknown_paths_and_methods(listener: Listener) -> None:
    async with httpx.AsyncClient() as http:
        base = f"http://127.0.0.1:{listener.port}"
        assert (await http.get(f"{base}/nowhere")).status_code == 404
        assert (await http.get(f"{base}/echo")).status_code == 405


async def test_by_default_the_ports_listen_on_loopback_only(tmp_path, sandbox) -> None:
    """With no host configured, neither port answers on any address but 127.0.0.1 (a wildcard
    bind would answer on 127.0.0.2 too, as on every address of the machine)."""
    settings = make_settings(tmp_path, sandbox.base_url, metrics_port=0, webhook_port=0, webhook_secret="s")
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert (defaults.webhook_host, defaults.metrics_host) == ("127.0.0.1", "127.0.0.1")
    async with await Services.open(settings) as services, services.serve_ops() as ops:
        assert services.webhooks is not None and ops is not None
        for port in (services.webhooks.listener.port, ops.port):
            assert port is not None
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            with pytest.raises(OSError):
                await asyncio.open_connection("127.0.0.2", port)
