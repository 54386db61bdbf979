"""The storage listener behaves like presigned S3/GCS URLs, and streams big bodies."""

from __future__ import annotations

import asyncio
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.clock import FakeClock
from bot.sandbox import Sandbox
from bot.testmedia import make_sparse_file


async def _upload_url(api: httpx.AsyncClient, kind: str = "video", ext: str = "mp4") -> tuple[str, str]:
    response = await api.post("/v1/files/upload-urls", json={"items": [{"type": kind, "extension": ext}]})
    item = response.json()["items"][0]
    return str(item["upload_url"]), str(item["file_path"])


async def _raw_request(url: str, head: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send a hand-made HTTP/1.1 request (to control exactly which headers go out)."""
    parts = urlsplit(url)
    assert parts.hostname is not None and parts.port is not None
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    target = f"{parts.path}?{parts.query}"
    writer.write(f"{head.format(target=target, host=parts.netloc)}\r\n\r\n".encode() + body)
    await writer.drain()
    response = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(response.split(b" ", 2)[1])
    return status, response


async def test_put_stores_the_file(sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    """A PUT with a known length stores the bytes under the file_path; a second PUT replaces them."""
    url, file_path = await _upload_url(api)
    response = await storage.put(url, content=b"x" * 1000)
    assert response.status_code == 200
    assert sandbox.uploads[file_path].read_bytes() == b"x" * 1000
    assert (await storage.put(url, content=b"y" * 10)).status_code == 200
    assert sandbox.uploads[file_path].read_bytes() == b"y" * 10
    assert sandbox.counters.bytes_uploaded == 1010
    assert sandbox.counters.requests["storage_put"] == 2


async def test_authorization_header_is_400(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient
) -> None:
    """Sending the API key to storage is refused: only one auth mechanism allowed."""
    url, file_path = await _upload_url(api)
    response = await storage.put(url, content=b"data", headers={"Authorization": "Bearer sandbox-key"})
    assert response.status_code == 400
    assert "Only one auth mechanism allowed" in response.text
    assert file_path not in sandbox.uploads


async def test_chunked_body_is_501(sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    """A streamed body of unknown length (chunked transfer encoding) is not implemented, like S3."""
    url, file_path = await _upload_url(api)

    async def body() -> AsyncIterator[bytes]:
        yield b"part one"
        yield b"part two"

    response = await storage.put(url, content=body())
    assert response.status_code == 501
    assert "<Code>NotImplemented</Code>" in response.text
    assert file_path not in sandbox.uploads


async def test_missing_content_length_is_411(sandbox: Sandbox, api: httpx.AsyncClient) -> None:
    """A PUT with neither Content-Length nor chunked encoding is refused with 411."""
    url, _ = await _upload_url(api)
    status, response = await _raw_request(url, "PUT {target} HTTP/1.1\r\nHost: {host}\r\nConnection: close")
    assert status == 411
    assert b"MissingContentLength" in response
    # The same request with a length goes through, so the 411 is about the header alone.
    status, _ = await _raw_request(
        url, "PUT {target} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 3\r\nConnection: close", b"abc"
    )
    assert status == 200


async def test_expired_or_forged_upload_url_is_403(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, clock: FakeClock
) -> None:
    """Past upload_url_ttl, with a changed signature, or used for another path, the URL is refused."""
    url, _ = await _upload_url(api)
    other_url, other_path = await _upload_url(api)
    forged = url.replace(urlsplit(url).path, urlsplit(other_url).path)
    response = await storage.put(forged, content=b"x")
    assert response.status_code == 403
    assert "SignatureDoesNotMatch" in response.text
    assert (await storage.put(url.split("?")[0], content=b"x")).status_code == 403
    await clock.advance(sandbox.config.upload_url_ttl)
    response = await storage.put(url, content=b"x")
    assert response.status_code == 403
    assert "Request has expired" in response.text
    assert other_path not in sandbox.uploads


async def test_body_over_the_limit_is_413(sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient) -> None:
    """A Content-Length over max_upload_bytes is refused before the body is stored."""
    sandbox.config.max_upload_bytes = 100
    url, file_path = await _upload_url(api)
    response = await storage.put(url, content=b"x" * 101)
    assert response.status_code == 413
    assert "EntityTooLarge" in response.text
    assert file_path not in sandbox.uploads
    assert (await storage.put(url, content=b"x" * 100)).status_code == 200


async def test_big_upload_streams_with_flat_memory(
    sandbox: Sandbox, api: httpx.AsyncClient, storage: httpx.AsyncClient, tmp_path: Path
) -> None:
    """A 256 MiB body (from a sparse file) is streamed to disk; the process never holds it whole."""
    size = 256 * 2**20
    source = make_sparse_file(tmp_path / "big.mp4", size)
    url, file_path = await _upload_url(api)

    async def chunks() -> AsyncIterator[bytes]:
        with source.open("rb") as handle:
            while chunk := handle.read(2**20):
                yield chunk

    tracemalloc.start()
    try:
        # An explicit Content-Length makes httpx send the stream unchunked, as presigned storage needs.
        response = await storage.put(url, content=chunks(), headers={"Content-Length": str(size)}, timeout=60)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200, response.text
    assert sandbox.counters.bytes_uploaded == size
    assert sandbox.uploads[file_path].stat().st_size == size
    assert peak < 32 * 2**20, f"peak traced memory {peak / 2**20:.1f} MiB"


async def test_storage_is_a_separate_host(sandbox: Sandbox, storage: httpx.AsyncClient) -> None:
    """The API routes do not exist on the storage listener and vice versa."""
    assert (await storage.get(f"{sandbox.storage_url}/v1/account")).status_code == 404
    assert (await storage.put(f"{sandbox.base_url}/upload/x?expires=1&sig=x", content=b"x")).status_code == 404


@pytest.mark.parametrize("path", ["/download/nope/sandbox-nope.mp4", "/upload/api-assets/x/y.mp4"])
async def test_unsigned_storage_requests_are_403(sandbox: Sandbox, storage: httpx.AsyncClient, path: str) -> None:
    """Storage wants a signature on every request."""
    method = "GET" if path.startswith("/download") else "PUT"
    response = await storage.request(method, f"{sandbox.storage_url}{path}", content=b"" if method == "PUT" else None)
    assert response.status_code == 403
