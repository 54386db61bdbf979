"""Uploads to presigned URLs and result downloads, against the sandbox's storage host."""

from __future__ import annotations

import hashlib
import logging
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from pydantic import SecretStr

from bot.clock import FakeClock
from bot.magichour import (
    CHUNK_SIZE,
    DownloadExpired,
    MagicHourClient,
    RetryPolicy,
    StorageError,
    UploadItem,
    UploadUrlExpired,
)
from bot.sandbox import Sandbox
from bot.testmedia import make_sparse_file

from .conftest import API_KEY, InstantClock, RecordingTransport, completed_project, lip_sync_request, upload_inputs

MiB = 1024 * 1024


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(MiB), b""):
            digest.update(block)
    return digest.hexdigest()


@pytest.fixture
def recording() -> tuple[RecordingTransport, RecordingTransport]:
    """Real transports that remember every request: (API, storage)."""
    return RecordingTransport(), RecordingTransport()


@pytest.fixture
async def recorded_client(
    sandbox: Sandbox, clock: InstantClock, recording: tuple[RecordingTransport, RecordingTransport]
) -> AsyncIterator[MagicHourClient]:
    api, storage = recording
    async with (
        httpx.AsyncClient(transport=api) as http,
        httpx.AsyncClient(transport=storage) as storage_http,
        MagicHourClient(SecretStr(API_KEY), sandbox.base_url, http=http, storage_http=storage_http, clock=clock) as mh,
    ):
        yield mh


async def _one_upload_url(mh: MagicHourClient, extension: str = "mp4") -> tuple[str, str]:
    (url,) = await mh.create_upload_urls([UploadItem(type="video", extension=extension)])
    return url.upload_url, url.file_path


# --- uploads -------------------------------------------------------------------------------------


async def test_upload_sends_content_length_and_no_credentials(
    recorded_client: MagicHourClient,
    sandbox: Sandbox,
    recording: tuple[RecordingTransport, RecordingTransport],
    tmp_path: Path,
) -> None:
    """The PUT has an exact Content-Length, is not chunked and carries no Authorization header.

    The sandbox refuses chunked bodies (501), a missing length (411) and an Authorization header
    (400), so its acceptance checks the same rules on the server side.
    """
    source = tmp_path / "clip.mp4"
    source.write_bytes(bytes(range(256)) * 9000 + b"tail")  # not a multiple of the chunk size
    upload_url, file_path = await _one_upload_url(recorded_client)
    seen: list[int] = []
    await recorded_client.upload_file(upload_url, source, progress=seen.append)

    (put,) = recording[1].requests
    assert put.method == "PUT"
    assert put.headers["content-length"] == str(source.stat().st_size)
    assert "transfer-encoding" not in put.headers
    assert "authorization" not in put.headers
    assert "content-type" not in put.headers
    assert sandbox.uploads[file_path].read_bytes() == source.read_bytes()
    assert seen[-1] == source.stat().st_size and seen == sorted(seen)
    # The API requests, by contrast, do carry the key.
    assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in recording[0].requests)


async def test_api_key_never_reaches_the_storage_host(
    recorded_client: MagicHourClient,
    sandbox: Sandbox,
    recording: tuple[RecordingTransport, RecordingTransport],
    media: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    """Through a whole job (uploads, retries, download), nothing sent to storage contains the key."""
    sandbox.faults.fail("storage_put", status=503)
    sandbox.faults.fail("download", status=500)
    project = await completed_project(recorded_client, media)
    assert project.download_url is not None
    await recorded_client.download(project.download_url, tmp_path / "out.mp4")

    api_requests, storage_requests = recording
    assert len(storage_requests.requests) == 5  # 2 PUTs + 1 retried PUT, 1 GET + 1 retried GET
    for request in storage_requests.requests:
        assert request.url.netloc.decode() == sandbox.storage_url.removeprefix("http://")
        wire = str(request.url) + "".join(f"{k}: {v}\n" for k, v in request.headers.multi_items())
        assert API_KEY not in wire
        assert "authorization" not in request.headers
    # ...and every request that carried the key went to the API's own host.
    api_host = sandbox.base_url.removeprefix("http://")
    assert all(r.url.netloc.decode() == api_host for r in api_requests.requests)


async def test_upload_is_retried_by_reopening_the_file(
    client: MagicHourClient, sandbox: Sandbox, clock: InstantClock, tmp_path: Path
) -> None:
    """A 503 and a dropped connection are retried; the stored file is complete and correct."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * (3 * CHUNK_SIZE + 17))
    upload_url, file_path = await _one_upload_url(client)
    sandbox.faults.fail("storage_put", status=503)
    sandbox.faults.disconnect("storage_put")
    await client.upload_file(upload_url, source)
    assert sandbox.counters.requests["storage_put"] == 3
    assert len(clock.sleeps) == 2
    assert _sha256(sandbox.uploads[file_path]) == _sha256(source)


async def test_upload_gives_up_with_a_storage_error(client: MagicHourClient, sandbox: Sandbox, tmp_path: Path) -> None:
    """5xx on every attempt: StorageError with the status; the route in the message has no query."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 100)
    upload_url, _ = await _one_upload_url(client)
    sandbox.faults.fail("storage_put", status=500, times=4)
    with pytest.raises(StorageError) as caught:
        await client.upload_file(upload_url, source)
    assert caught.value.status_code == 500
    assert "sig=" not in str(caught.value) and "expires=" not in str(caught.value)
    assert str(caught.value).startswith(f"PUT {sandbox.storage_url}/upload/")
    assert sandbox.counters.requests["storage_put"] == 4


async def test_upload_too_large_is_not_retried(client: MagicHourClient, sandbox: Sandbox, tmp_path: Path) -> None:
    """413 from storage is final."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 100)
    upload_url, _ = await _one_upload_url(client)
    sandbox.config.max_upload_bytes = 10
    with pytest.raises(StorageError) as caught:
        await client.upload_file(upload_url, source)
    assert caught.value.status_code == 413
    assert sandbox.counters.requests["storage_put"] == 1


async def test_expired_upload_url(
    fake_client: MagicHourClient, fake_sandbox: Sandbox, fake_clock: FakeClock, tmp_path: Path
) -> None:
    """Once its lifetime has passed, the upload URL is refused: UploadUrlExpired, no retry."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 100)
    upload_url, _ = await _one_upload_url(fake_client)
    await fake_clock.advance(fake_sandbox.config.upload_url_ttl + 1)
    with pytest.raises(UploadUrlExpired) as caught:
        await fake_client.upload_file(upload_url, source)
    assert caught.value.status_code == 403
    assert fake_sandbox.counters.requests["storage_put"] == 1


# --- downloads -----------------------------------------------------------------------------------


async def test_download_writes_the_result(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """The result lands at dest, byte for byte, with progress reported; no temporary file remains."""
    project = await completed_project(client, media)
    assert project.download_url is not None
    dest = tmp_path / "out" / "result.mp4"
    dest.parent.mkdir()
    seen: list[int] = []
    written = await client.download(project.download_url, dest, progress=seen.append)
    result_file = sandbox.projects[project.id].result
    assert result_file is not None
    assert written == dest.stat().st_size == result_file.path.stat().st_size
    assert _sha256(dest) == _sha256(result_file.path)
    assert seen and seen[-1] == written
    assert list(dest.parent.iterdir()) == [dest]


async def test_download_cut_short_is_retried(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """A body cut off half-way is retried from the start and the file ends up complete."""
    project = await completed_project(client, media)
    assert project.download_url is not None
    sandbox.faults.disconnect("download", after_effect=True)
    sandbox.faults.fail("download", status=503)
    dest = tmp_path / "result.mp4"
    written = await client.download(project.download_url, dest)
    result_file = sandbox.projects[project.id].result
    assert result_file is not None
    assert written == result_file.path.stat().st_size
    assert sandbox.counters.requests["download"] == 3


async def test_failed_download_leaves_no_partial_file(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """Cut off on every attempt: StorageError; dest keeps its old content and no .part file is left."""
    project = await completed_project(client, media)
    assert project.download_url is not None
    folder = tmp_path / "downloads"
    folder.mkdir()
    dest = folder / "result.mp4"
    dest.write_bytes(b"previous result")
    sandbox.faults.disconnect("download", times=4, after_effect=True)
    with pytest.raises(StorageError) as caught:
        await client.download(project.download_url, dest)
    assert caught.value.status_code is None
    assert sandbox.counters.requests["download"] == 4
    assert sandbox.counters.bytes_downloaded > 0  # bytes did arrive before each cut
    assert dest.read_bytes() == b"previous result"
    assert list(folder.iterdir()) == [dest]


async def test_expired_download_url_then_a_fresh_one(
    fake_client: MagicHourClient, fake_sandbox: Sandbox, fake_clock: FakeClock, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """An expired URL raises DownloadExpired (not retried); a new GET gives one that works."""
    project = await completed_project(fake_client, media)
    assert project.download_url is not None
    await fake_clock.advance(fake_sandbox.config.download_url_ttl + 1)
    dest = tmp_path / "result.mp4"
    with pytest.raises(DownloadExpired) as caught:
        await fake_client.download(project.download_url, dest)
    assert caught.value.status_code == 403
    assert "sig=" not in str(caught.value)
    assert fake_sandbox.counters.requests["download"] == 1
    assert not dest.exists() and list(tmp_path.glob(".result.mp4.*")) == []

    fresh = await fake_client.get_video_project(project.id)
    assert fresh.download_url is not None and fresh.download_url != project.download_url
    assert await fake_client.download(fresh.download_url, dest) > 0


async def test_download_of_a_deleted_project_is_expired(
    client: MagicHourClient, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """The result of a deleted project is gone: 404 from storage, DownloadExpired."""
    project = await completed_project(client, media)
    assert project.download_url is not None
    await client.delete_video_project(project.id)
    with pytest.raises(DownloadExpired) as caught:
        await client.download(project.download_url, tmp_path / "result.mp4")
    assert caught.value.status_code == 404


# --- memory --------------------------------------------------------------------------------------

BIG = 300 * MiB
# Python-level allocations of client and (in-process) sandbox together; the file is 300 MiB.
PEAK_LIMIT = 24 * MiB


@pytest.mark.slow
async def test_large_upload_keeps_memory_flat(client: MagicHourClient, sandbox: Sandbox, tmp_path: Path) -> None:
    """A 300 MiB upload allocates a few MiB at most: the body is streamed from disk."""
    source = make_sparse_file(tmp_path / "big.mp4", BIG)
    upload_url, file_path = await _one_upload_url(client)
    tracemalloc.start()
    try:
        await client.upload_file(upload_url, source)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert sandbox.counters.bytes_uploaded == BIG
    assert sandbox.uploads[file_path].stat().st_size == BIG
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"


@pytest.mark.slow
async def test_large_download_keeps_memory_flat(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], tmp_path: Path
) -> None:
    """A 300 MiB download allocates a few MiB at most: the body is streamed to disk.

    The sandbox serves whatever file the project's result points at, so the test swaps in a
    sparse 300 MiB file after a normal render.
    """
    project = await completed_project(client, media)
    result_file = sandbox.projects[project.id].result
    assert result_file is not None and project.download_url is not None
    make_sparse_file(result_file.path, BIG)
    dest = tmp_path / "big-result.mp4"
    tracemalloc.start()
    try:
        written = await client.download(project.download_url, dest)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert written == BIG == dest.stat().st_size
    assert sandbox.counters.bytes_downloaded == BIG
    assert peak < PEAK_LIMIT, f"peak {peak / MiB:.1f} MiB"


# --- logs ----------------------------------------------------------------------------------------


async def test_logs_hold_no_key_and_no_signature(
    client: MagicHourClient,
    sandbox: Sandbox,
    media: tuple[Path, Path],
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Retries are logged with their route; no record contains the key or a URL's signature."""
    caplog.set_level(logging.DEBUG, logger="bot.magichour")
    sandbox.faults.fail("upload_urls", status=429)
    sandbox.faults.fail("storage_put", status=503)
    sandbox.faults.fail("create", status=502)
    sandbox.faults.fail("get_project", status=502)
    sandbox.faults.disconnect("download", after_effect=True)
    video_path, audio_path = await upload_inputs(client, media)
    job = await client.create_lip_sync(lip_sync_request(video_path, audio_path))
    project = await client.get_video_project(job.id)
    assert project.download_url is not None
    await client.download(project.download_url, tmp_path / "out.mp4")

    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 5
    assert any("POST /v1/lip-sync" in m for m in retries)
    assert any(f"PUT {sandbox.storage_url}/upload/api-assets/" in m for m in retries)
    for record in caplog.records:
        text = record.getMessage()
        assert API_KEY not in text
        assert "sig=" not in text and "expires=" not in text


async def test_retry_policy_without_retries_for_transfers(
    sandbox: Sandbox, clock: InstantClock, tmp_path: Path
) -> None:
    """max_attempts=1 also applies to storage: one PUT, then StorageError."""
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"x" * 10)
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url, retry=RetryPolicy.none(), clock=clock) as mh:
        upload_url, _ = await _one_upload_url(mh)
        sandbox.faults.fail("storage_put", status=503)
        with pytest.raises(StorageError):
            await mh.upload_file(upload_url, source)
    assert sandbox.counters.requests["storage_put"] == 1


# --- download speed: how the body is read and written --------------------------------------------


async def test_storage_reads_the_socket_in_large_pieces(
    client: MagicHourClient, sandbox: Sandbox, media: tuple[Path, Path], tmp_path: Path, monkeypatch
) -> None:
    """The client's own storage connections ask the socket for a megabyte at a time, not httpcore's
    64 KiB (each read costs as much Python as it moves bytes: a download was CPU-bound on it)."""
    import httpcore

    asked: list[int] = []
    connect = httpcore.AnyIOBackend.connect_tcp

    async def counting_connect(self, *args, **kwargs):
        stream = await connect(self, *args, **kwargs)
        read = stream.read

        async def counted(max_bytes: int, timeout: float | None = None) -> bytes:
            asked.append(max_bytes)
            return await read(max_bytes, timeout)

        stream.read = counted  # type: ignore[method-assign]
        return stream

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", counting_connect)
    project = await completed_project(client, media)
    result_file = sandbox.projects[project.id].result
    assert result_file is not None and project.download_url is not None
    make_sparse_file(result_file.path, 8 * MiB)
    async with MagicHourClient(SecretStr(API_KEY), sandbox.base_url) as fresh:  # its own storage client
        asked.clear()
        written = await fresh.download(project.download_url, tmp_path / "result.mp4")
    assert written == 8 * MiB
    assert asked and min(asked) >= MiB, sorted(set(asked))


async def test_the_storage_transport_keeps_httpx_defaults() -> None:
    """The storage transport verifies TLS against the CA bundle, as httpx's own does."""
    import ssl

    from bot.magichour._transport import StorageTransport

    transport = StorageTransport()
    context = transport._pool._ssl_context
    assert context is not None and context.verify_mode is ssl.CERT_REQUIRED and context.check_hostname
    await transport.aclose()


async def test_download_decodes_a_compressed_body(tmp_path: Path) -> None:
    """A storage host that gzips the body: the file holds the decoded bytes (the size check then
    can't use Content-Length, which counts the compressed ones)."""
    import gzip

    from aiohttp import web

    body = bytes(range(256)) * 40_000  # about 10 MiB, compresses well
    packed = gzip.compress(body)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=packed, headers={"Content-Encoding": "gzip", "Content-Type": "video/mp4"})

    app = web.Application()
    app.router.add_get("/result.mp4", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    seen: list[int] = []
    try:
        async with MagicHourClient(SecretStr(API_KEY), "http://127.0.0.1:1") as mh:
            written = await mh.download(f"http://127.0.0.1:{port}/result.mp4", tmp_path / "r.mp4", progress=seen.append)
    finally:
        await runner.cleanup()
    assert written == len(body) and (tmp_path / "r.mp4").read_bytes() == body
    assert seen == sorted(seen) and seen[-1] == len(body)


async def test_the_storage_transport_lets_asyncio_read_a_megabyte_at_a_time() -> None:
    """asyncio takes at most 256 KiB from a socket per read unless told otherwise; the storage
    connections take up to `READ_SIZE` (fewer trips through anyio, httpcore and h11 per GiB)."""
    import asyncio

    from aiohttp import web

    from bot.magichour._transport import READ_SIZE, _LargeReadBackend

    runner = web.AppRunner(web.Application(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        stream = await _LargeReadBackend(READ_SIZE).connect_tcp("127.0.0.1", runner.addresses[0][1])
        transport = stream._inner._stream._transport  # type: ignore[attr-defined]
        assert isinstance(transport, asyncio.Transport)
        assert transport.max_size == READ_SIZE  # type: ignore[attr-defined]
        await stream.aclose()
    finally:
        await runner.cleanup()
