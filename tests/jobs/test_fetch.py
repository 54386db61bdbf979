"""Fetching inputs over real HTTP: only from allowed hosts, streamed to disk, size enforced as bytes
arrive, bounded in time."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from aiohttp import web
from aiohttp.typedefs import Handler

from bot.errors import InvalidInput, JobFailed
from bot.jobs.fetch import DISCORD_CDN, MAX_REDIRECTS, FetchPolicy, fetch_input
from bot.jobs.models import InputSource

# The local stand-in serves plain http on a random port of 127.0.0.1.
LOCAL = FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True, any_port=True)


@dataclass
class Cdn:
    """The stand-in's base URL, its port, and how often each path was asked for."""

    base: str
    port: int
    hits: Counter[str]


@pytest.fixture
async def cdn_server() -> AsyncIterator[Cdn]:
    """A local stand-in for Discord's CDN: normal, oversized, missing and stalling files, and redirects.

    `/away.mp4` redirects to the same server under another host name (localhost), so a fetch that
    followed it would show up as a hit on `/ok.mp4`.
    """
    release = asyncio.Event()
    hits: Counter[str] = Counter()
    port = 0

    @web.middleware
    async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
        hits[request.path] += 1
        return await handler(request)

    async def ok(_: web.Request) -> web.Response:
        return web.Response(body=b"x" * 3000)

    async def liar(_: web.Request) -> web.StreamResponse:
        # Claims nothing about its size and just keeps sending.
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(_)
        for _i in range(64):
            await response.write(b"y" * 1024)
        await response.write_eof()
        return response

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse()
        response.enable_chunked_encoding()
        await response.prepare(request)
        await response.write(b"z" * 10)
        await release.wait()  # never sends the rest
        return response

    def redirect(location: str, status: int = 302) -> web.Response:
        return web.Response(status=status, headers={"Location": location})

    async def away(_: web.Request) -> web.Response:
        return redirect(f"http://localhost:{port}/ok.mp4")

    async def userinfo(_: web.Request) -> web.Response:
        return redirect(f"http://127.0.0.1@localhost:{port}/ok.mp4")

    async def home(_: web.Request) -> web.Response:
        return redirect("/ok.mp4", status=307)

    async def loop(_: web.Request) -> web.Response:
        return redirect("/loop.mp4")

    app = web.Application(middlewares=[count])
    app.router.add_get("/ok.mp4", ok)
    app.router.add_get("/big.mp4", liar)
    app.router.add_get("/stall.mp4", stall)
    app.router.add_get("/away.mp4", away)
    app.router.add_get("/userinfo.mp4", userinfo)
    app.router.add_get("/home.mp4", home)
    app.router.add_get("/loop.mp4", loop)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    yield Cdn(f"http://{host}:{port}", port, hits)
    release.set()
    await runner.cleanup()


@pytest.fixture
def cdn(cdn_server: Cdn) -> str:
    return cdn_server.base


async def test_streams_to_disk(cdn: str, tmp_path: Path) -> None:
    """A normal file arrives whole."""
    async with httpx.AsyncClient() as http:
        path = await fetch_input(
            http, InputSource("ok.mp4", url=f"{cdn}/ok.mp4"), tmp_path / "v.mp4", max_bytes=10_000, policy=LOCAL
        )
    assert path.read_bytes() == b"x" * 3000


async def test_size_limit_holds_whatever_the_sender_claims(cdn: str, tmp_path: Path) -> None:
    """A body larger than the limit is cut off as it arrives, with a friendly message."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidInput) as refused:
            await fetch_input(
                http, InputSource("big.mp4", url=f"{cdn}/big.mp4"), tmp_path / "v.mp4", max_bytes=8192, policy=LOCAL
            )
    assert refused.value.code == "file_over_limit" and "“big.mp4”" in refused.value.user_message


async def test_missing_file_asks_to_attach_again(cdn: str, tmp_path: Path) -> None:
    """An expired or missing attachment gives a message the member can act on."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(JobFailed) as failed:
            await fetch_input(
                http, InputSource("gone.mp4", url=f"{cdn}/gone.mp4"), tmp_path / "v.mp4", max_bytes=10, policy=LOCAL
            )
    assert "attach it again" in failed.value.user_message


async def test_a_stalled_download_gives_up_at_its_deadline(cdn: str, tmp_path: Path) -> None:
    """A CDN that stops sending can't hold the job forever."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(JobFailed) as failed:
            await fetch_input(
                http,
                InputSource("stall.mp4", url=f"{cdn}/stall.mp4"),
                tmp_path / "v.mp4",
                max_bytes=10_000,
                policy=LOCAL,
                deadline_seconds=0.2,
            )
    assert failed.value.code == "fetch_failed"


# --- where from ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://cdn.discordapp.com/attachments/1/2/face.mp4?ex=1&is=2&hm=3",
        "https://cdn.discordapp.com/ephemeral-attachments/1/2/face.mp4",
        "https://media.discordapp.net/attachments/1/2/face.mp4",
        "https://CDN.DiscordApp.com/attachments/1/2/face.mp4",
        "https://cdn.discordapp.com:443/attachments/1/2/face.mp4",
    ],
)
def test_discord_cdn_urls_are_allowed(url: str) -> None:
    """https on Discord's attachment hosts (any case, default port) passes the default policy."""
    assert DISCORD_CDN.allows(url)


@pytest.mark.parametrize(
    "url",
    [
        "http://cdn.discordapp.com/attachments/1/2/face.mp4",
        "ftp://cdn.discordapp.com/attachments/1/2/face.mp4",
        "https://cdn.discordapp.com:8443/attachments/1/2/face.mp4",
        "https://cdn.discordapp.com./attachments/1/2/face.mp4",
        "https://cdn.discordapp.com@evil.example/face.mp4",
        "https://cdn.discordapp.com\\@evil.example/face.mp4",
        "https://user@cdn.discordapp.com/face.mp4",
        "https://cdn.discordapp.com.evil.example/face.mp4",
        "https://evil.example/cdn.discordapp.com/face.mp4",
        "https://cdn.discordapp.com%2eevil.example/face.mp4",
        "https://images-ext-1.discordapp.net/external/x/face.mp4",
        "https://discord.com/api/v10/attachments/face.mp4",
        "https://xn--cdn-discordapp-.com/face.mp4",
        "https://cdn.discordapp.com\t/face.mp4",
        "//cdn.discordapp.com/face.mp4",
        "cdn.discordapp.com/face.mp4",
        "https://127.0.0.1/face.mp4",
        "file:///etc/passwd",
        "",
    ],
)
def test_everything_else_is_refused_by_default(url: str) -> None:
    """Other schemes, hosts, ports, user info and host-confusion tricks are refused."""
    assert not DISCORD_CDN.allows(url)


def test_local_policy_is_explicit() -> None:
    """A stand-in policy needs http and any port switched on; hosts are compared in lower case."""
    assert not FetchPolicy(hosts=frozenset({"127.0.0.1"})).allows("http://127.0.0.1:8000/a.mp4")
    assert not FetchPolicy(hosts=frozenset({"127.0.0.1"}), allow_http=True).allows("http://127.0.0.1:8000/a.mp4")
    assert LOCAL.allows("http://127.0.0.1:8000/a.mp4")
    assert not LOCAL.allows("http://localhost:8000/a.mp4")
    assert FetchPolicy(hosts=frozenset({" CDN.Example "})).allows("https://cdn.example/a.mp4")


async def test_default_policy_refuses_before_sending_anything(cdn_server: Cdn, tmp_path: Path) -> None:
    """With the default (Discord-only) policy, a local URL is refused and the server never hears of it."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(InvalidInput) as refused:
            await fetch_input(
                http, InputSource("ok.mp4", url=f"{cdn_server.base}/ok.mp4"), tmp_path / "v.mp4", max_bytes=10_000
            )
    assert refused.value.code == "fetch_refused"
    assert "“ok.mp4”" in refused.value.user_message
    assert sum(cdn_server.hits.values()) == 0
    assert not (tmp_path / "v.mp4").exists()


@pytest.mark.parametrize("follow", [False, True])
@pytest.mark.parametrize("path", ["/away.mp4", "/userinfo.mp4"])
async def test_a_redirect_to_another_host_is_refused(cdn_server: Cdn, tmp_path: Path, follow: bool, path: str) -> None:
    """A redirect off the allowed hosts is not followed, even by a client set to follow redirects."""
    async with httpx.AsyncClient(follow_redirects=follow) as http:
        with pytest.raises(InvalidInput) as refused:
            await fetch_input(
                http,
                InputSource("away.mp4", url=f"{cdn_server.base}{path}"),
                tmp_path / "v.mp4",
                max_bytes=10_000,
                policy=LOCAL,
            )
    assert refused.value.code == "fetch_refused"
    assert cdn_server.hits == Counter({path: 1})  # the target was never asked
    assert not (tmp_path / "v.mp4").exists()


async def test_a_redirect_within_the_allowed_host_is_followed(cdn_server: Cdn, tmp_path: Path) -> None:
    """A relative redirect on the same host passes the same check and the file arrives."""
    async with httpx.AsyncClient() as http:
        path = await fetch_input(
            http,
            InputSource("home.mp4", url=f"{cdn_server.base}/home.mp4"),
            tmp_path / "v.mp4",
            max_bytes=10_000,
            policy=LOCAL,
        )
    assert path.read_bytes() == b"x" * 3000
    assert cdn_server.hits == Counter({"/home.mp4": 1, "/ok.mp4": 1})


async def test_a_redirect_loop_gives_up(cdn_server: Cdn, tmp_path: Path) -> None:
    """Endless redirects end after MAX_REDIRECTS hops with fetch_failed."""
    async with httpx.AsyncClient() as http:
        with pytest.raises(JobFailed) as failed:
            await fetch_input(
                http,
                InputSource("loop.mp4", url=f"{cdn_server.base}/loop.mp4"),
                tmp_path / "v.mp4",
                max_bytes=10,
                policy=LOCAL,
            )
    assert failed.value.code == "fetch_failed"
    assert cdn_server.hits["/loop.mp4"] == MAX_REDIRECTS + 1


async def test_the_disk_is_written_off_the_event_loop(
    cdn: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While the disk is stuck, the event loop keeps running: a fetch never writes from it."""
    import bot.filesink
    from tests.test_filesink import StuckDisk

    disk = StuckDisk()
    monkeypatch.setattr(bot.filesink, "_write_all", disk.write_all)
    try:
        async with httpx.AsyncClient() as http:
            fetching = asyncio.create_task(
                fetch_input(
                    http, InputSource("ok.mp4", url=f"{cdn}/ok.mp4"), tmp_path / "v.mp4", max_bytes=10_000, policy=LOCAL
                )
            )
            assert await asyncio.to_thread(disk.entered.wait, 10)
            assert not fetching.done()
            disk.release()
            path = await fetching
    finally:
        disk.release()
    assert path.read_bytes() == b"x" * 3000


async def test_the_limit_counts_decoded_bytes(tmp_path: Path) -> None:
    """A compressed body small on the wire but over the limit once decoded is refused: the limit
    is on what lands on disk, not on what the sender sent."""
    import gzip

    packed = gzip.compress(b"\0" * 100_000)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/packed.mp4", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with httpx.AsyncClient() as http:
            with pytest.raises(InvalidInput) as refused:
                await fetch_input(
                    http,
                    InputSource("packed.mp4", url=f"http://127.0.0.1:{port}/packed.mp4"),
                    tmp_path / "v.mp4",
                    max_bytes=50_000,
                    policy=LOCAL,
                )
    finally:
        await runner.cleanup()
    assert len(packed) < 50_000 and refused.value.code == "file_over_limit"
