"""The storage listener: a separate host that behaves like presigned S3/GCS URLs.

`PUT /upload/<file_path>?expires=..&sig=..` stores an upload, `GET /download/<id>/<name>?...`
serves a result. Like S3, storage errors are XML: `<Error><Code>..</Code><Message>..</Message></Error>`.
Checks, in order: an `Authorization` header (400, "Only one auth mechanism allowed"), chunked
transfer encoding (501), no `Content-Length` (411), a bad or expired signature (403), a body
larger than `max_upload_bytes` (413). Bodies stream to disk in chunks and never sit in memory whole;
results are sent with sendfile, so serving them costs next to no CPU.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from xml.sax.saxutils import escape

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from bot.sandbox.api import STATE_KEY
from bot.sandbox.middleware import TRUNCATE_KEY, drop_connection, fault_middleware, mark_sandbox_responses
from bot.sandbox.signing import SignatureCheck
from bot.sandbox.state import SandboxState

CHUNK = 1 << 20  # 1 MiB: few thread hops per GiB, small enough to keep memory flat.

_SIGNATURE_ERRORS = {
    SignatureCheck.MISSING: ("AccessDenied", "Query-string authentication requires the expires and sig parameters"),
    SignatureCheck.INVALID: ("SignatureDoesNotMatch", "The request signature we calculated does not match"),
    SignatureCheck.EXPIRED: ("AccessDenied", "Request has expired"),
}


def storage_error(status: int, code: str, message: str) -> web.Response:
    """An S3-style XML error."""
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
    )
    return web.Response(status=status, text=body, content_type="application/xml")


def _signature_error(state: SandboxState, request: web.Request, method: str) -> web.Response | None:
    check = state.signer.check(method, request.path, request.query, state.now_unix())
    if check is SignatureCheck.OK:
        return None
    code, message = _SIGNATURE_ERRORS[check]
    return storage_error(403, code, message)


def _write_all(handle: int, data: bytes | bytearray) -> None:
    view = memoryview(data)
    while view:
        written = os.write(handle, view)
        view = view[written:]


async def put_upload(request: web.Request) -> web.Response:
    """Store an upload, streaming it to a temporary file and renaming it into place when complete."""
    state = request.app[STATE_KEY]
    if "Authorization" in request.headers:
        return storage_error(
            400,
            "InvalidArgument",
            "Only one auth mechanism allowed; "
            "only the signed query string or the Authorization header should be specified",
        )
    if "chunked" in request.headers.get("Transfer-Encoding", "").lower():
        return storage_error(
            501, "NotImplemented", "A header you provided implies functionality that is not implemented"
        )
    length_text = request.headers.get("Content-Length")
    if length_text is None:
        return storage_error(411, "MissingContentLength", "You must provide the Content-Length HTTP header.")
    denied = _signature_error(state, request, "PUT")
    if denied is not None:
        return denied
    length = int(length_text)  # aiohttp has already rejected a malformed Content-Length.
    if length > state.config.max_upload_bytes:
        return storage_error(413, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")

    file_path = request.match_info["file_path"]
    target = (state.uploads_dir / file_path).resolve()
    if state.uploads_dir.resolve() not in target.parents:
        return storage_error(400, "InvalidArgument", "Invalid object key")
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    handle = await asyncio.to_thread(os.open, part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    received = 0
    done = False
    try:
        buffer = bytearray()
        async for chunk in request.content.iter_chunked(CHUNK):
            buffer += chunk
            received += len(chunk)
            state.counters.bytes_uploaded += len(chunk)
            if len(buffer) >= CHUNK:
                await asyncio.to_thread(_write_all, handle, bytes(buffer))
                buffer.clear()
        if buffer:
            await asyncio.to_thread(_write_all, handle, bytes(buffer))
        done = received == length
    finally:
        os.close(handle)
        if not done:
            with contextlib.suppress(OSError):
                part.unlink()
    if not done:
        return storage_error(
            400, "IncompleteBody", "You did not provide the number of bytes specified by Content-Length"
        )
    await asyncio.to_thread(part.replace, target)
    state.uploads[file_path] = target
    state.changed()
    return web.Response(status=200, headers={"ETag": f'"{received:x}"'})


async def get_download(request: web.Request) -> web.StreamResponse:
    """Stream a result file for a signed, unexpired URL."""
    state = request.app[STATE_KEY]
    denied = _signature_error(state, request, "GET")
    if denied is not None:
        return denied
    project = state.projects.get(request.match_info["id"])
    if (
        project is None
        or project.result is None
        or not project.enabled
        or request.match_info["name"] != project.output_name
        or not project.result.path.exists()
    ):
        return storage_error(404, "NoSuchKey", "The specified key does not exist.")
    path: Path = project.result.path
    if not request.get(TRUNCATE_KEY, False):
        # The kernel copies the file to the socket (sendfile): serving costs the sandbox next to
        # no CPU, so a client's download speed is measured against the machine, not this server.
        return _CountedFile(path, state)
    return await _send_half(request, path)


class _CountedFile(web.FileResponse):
    """A file response that adds what it sent to the sandbox's download counter."""

    def __init__(self, path: Path, state: SandboxState) -> None:
        super().__init__(path, headers={"Content-Type": "video/mp4"})
        self._sandbox = state

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        writer = await super().prepare(request)
        self._sandbox.counters.bytes_downloaded += self.content_length or 0
        return writer


async def _send_half(request: web.Request, path: Path) -> web.StreamResponse:
    """Announce the whole file, send its first half, then drop the connection (a body cut short)."""
    state = request.app[STATE_KEY]
    size = (await asyncio.to_thread(path.stat)).st_size
    response = web.StreamResponse(headers={"Content-Type": "video/mp4", "Content-Length": str(size)})
    await response.prepare(request)
    limit = size // 2
    sent = 0
    with await asyncio.to_thread(path.open, "rb") as handle:
        while sent < limit:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK, limit - sent))
            if not chunk:
                break
            await response.write(chunk)
            sent += len(chunk)
            state.counters.bytes_downloaded += len(chunk)
    drop_connection(request)
    return response


def make_storage_app(state: SandboxState) -> web.Application:
    """The storage listener's application."""
    app = web.Application(middlewares=[fault_middleware(state)])
    app[STATE_KEY] = state
    mark_sandbox_responses(app, state)
    app.router.add_put("/upload/{file_path:.+}", put_upload, name="storage_put")
    app.router.add_get("/download/{id}/{name}", get_download, name="download")
    return app
