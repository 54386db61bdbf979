"""`MagicHourClient`: the async client for the Magic Hour endpoints a lip-sync job needs.

One HTTP client for the API (its requests carry the key, added only to URLs built from the API's
base URL) and one for storage and CDN hosts (never the key). Every call runs through one retry
loop, `with_retries`, with a classify function per call kind and `RetryPolicy`'s delays; a create
is retried only when no job can have been made, else it raises `SubmissionUncertain`.
docs/design-notes.md, "The Magic Hour client", gives the rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import AsyncGenerator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Literal, Protocol, Self, TypeVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, SecretStr, ValidationError

from bot import __version__
from bot.clock import Clock, SystemClock
from bot.filesink import FileSink

from ._errors import (
    DownloadExpired,
    MagicHourError,
    RateLimited,
    StorageError,
    SubmissionUncertain,
    Unavailable,
    UnexpectedResponse,
    UploadUrlExpired,
    error_for_status,
)
from ._models import (
    SANDBOX_HEADER,
    Account,
    CreatedJob,
    LipSyncRequest,
    UploadItem,
    UploadUrl,
    VideoProject,
    _SandboxAware,
    _UploadUrlsRequest,
    _UploadUrlsResponse,
)
from ._retry import (
    CREATE_RETRYABLE_STATUSES,
    NEVER_SENT_ERRORS,
    GiveUp,
    Outcome,
    Retry,
    RetryPolicy,
    Succeed,
    Verdict,
    is_retryable_status,
    parse_retry_after,
    redact_url,
    with_retries,
)
from ._transport import StorageTransport

logger = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.magichour.ai"

#: API calls are small JSON exchanges; a minute without a byte means something is wrong.
API_TIMEOUT = httpx.Timeout(connect=10.0, read=60.0, write=60.0, pool=10.0)
#: Transfers: each read or write of a chunk may take up to two minutes (slow links, cold CDN).
STORAGE_TIMEOUT = httpx.Timeout(connect=10.0, read=120.0, write=120.0, pool=30.0)
#: Transfers are streamed in pieces of this size, so memory stays flat whatever the file size.
CHUNK_SIZE = 1024 * 1024
#: Per-chunk timeouts alone would let a trickling transfer run for ever, so every transfer attempt
#: also gets an overall deadline: a grace period plus its size at this slowest acceptable rate.
MIN_TRANSFER_RATE = 128 * 1024  # bytes per second
TRANSFER_GRACE = 300.0  # seconds
#: The deadline for a download whose size the server does not announce.
UNKNOWN_SIZE_DEADLINE = 4 * 3600.0

_USER_AGENT = f"lipsync-bot/{__version__}"
# Statuses after which Magic Hour has certainly not created a job: refusals of the request itself,
# plus the statuses it documents as "no job" (429, 502).
_CREATE_NO_JOB_STATUSES = frozenset({400, 401, 402, 403, 404, 422}) | CREATE_RETRYABLE_STATUSES

_ModelT = TypeVar("_ModelT", bound=BaseModel)
_MarkedT = TypeVar("_MarkedT", bound=_SandboxAware)
Progress = Callable[[int], None]

_PROJECT_ROUTE = re.compile(r"^(\w+ /v1/video-projects/).+$")


class RequestObserver(Protocol):
    """Told about every HTTP request the client makes (metrics). Must be cheap and must not raise."""

    def request(self, endpoint: str, status: str, seconds: float) -> None:
        """One attempt: `endpoint` like "GET /v1/video-projects/{id}" or "PUT storage", its HTTP status
        ("error" when no answer came), and how long it took."""
        ...


def _endpoint(route: str) -> str:
    """A route without ids, signatures or hosts: the label a request is counted under."""
    if route.startswith(("PUT http", "GET http")):
        return f"{route.split(' ', 1)[0]} storage"
    return _PROJECT_ROUTE.sub(r"\1{id}", route)


def _describe(exc: BaseException) -> str:
    # httpx transport errors carry the OS or protocol reason, not the URL; keep it short anyway.
    text = str(exc).strip()
    name = type(exc).__name__
    if not text:
        return name
    return f"{name}: {text[:200]}"


def _api_message(response: httpx.Response) -> str | None:
    """The `message` of a `{"message": ...}` error body, if that is what came back."""
    try:
        body = response.json()
    except ValueError:
        return None
    if isinstance(body, dict):
        message = body.get("message")
        if isinstance(message, str):
            return message
    return None


def _validation_summary(exc: ValidationError) -> str:
    # pydantic's own text quotes the offending input, which may be a signed download URL.
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or '<body>'}: {error['type']}"
        for error in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    return "; ".join(problems[:5])


def _transfer_deadline(size: int | None) -> float:
    if size is None:
        return UNKNOWN_SIZE_DEADLINE
    return TRANSFER_GRACE + size / MIN_TRANSFER_RATE


class MagicHourClient:
    """Async client for Magic Hour's files, lip-sync, video-project and account endpoints.

    Use it as an async context manager, or call `aclose()`. Clients passed in as `http` or
    `storage_http` belong to the caller and are used as they are (their own timeouts apply);
    clients the constructor creates belong to this object and get finite timeouts.
    """

    def __init__(
        self,
        api_key: SecretStr,
        base_url: str = DEFAULT_BASE_URL,
        *,
        http: httpx.AsyncClient | None = None,
        storage_http: httpx.AsyncClient | None = None,
        retry: RetryPolicy | None = None,
        clock: Clock | None = None,
        observer: RequestObserver | None = None,
    ) -> None:
        if not api_key.get_secret_value():
            raise ValueError("the Magic Hour API key is empty")
        if storage_http is not None and "authorization" in storage_http.headers:
            # Presigned storage rejects a second credential, and it would leak the key.
            raise ValueError("storage_http must not carry an Authorization header")
        self._api_key = api_key
        self._base_url = base_url.rstrip("/")
        self._retry = retry or RetryPolicy()
        self._clock: Clock = clock or SystemClock()
        self._observer = observer
        self._owns_http = http is None
        self._owns_storage = storage_http is None
        self._http = http or httpx.AsyncClient(
            timeout=API_TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT, "Accept": "application/json"},
        )
        self._storage = storage_http or httpx.AsyncClient(
            timeout=STORAGE_TIMEOUT,
            follow_redirects=False,
            headers={"User-Agent": _USER_AGENT},
            transport=StorageTransport(),  # reads in large pieces: downloads at the disk's speed
        )

    # --- lifecycle -------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._base_url

    def without_retries(self) -> MagicHourClient:
        """A view of this client that makes exactly one attempt per call, for callers with their own back-off.

        The poller uses it: it must not retry inside its concurrency gate, where its own schedule
        decides when to ask again. The view shares this client's HTTP clients (and so their
        connection pools), key, base URL and clock. Its `aclose()` closes nothing, so closing it
        is harmless, but it must not be used after this client is closed.
        """
        return MagicHourClient(
            self._api_key,
            self._base_url,
            http=self._http,
            storage_http=self._storage,
            retry=RetryPolicy.none(),
            clock=self._clock,
            observer=self._observer,
        )

    async def aclose(self) -> None:
        """Close the HTTP clients this object created (not those passed in)."""
        if self._owns_http:
            await self._http.aclose()
        if self._owns_storage:
            await self._storage.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"MagicHourClient(base_url={self._base_url!r})"

    # --- API calls -------------------------------------------------------------------------------

    async def create_upload_urls(self, items: Sequence[UploadItem]) -> list[UploadUrl]:
        """Ask for one presigned upload URL per item, in the same order (one request for all)."""
        body = _UploadUrlsRequest(items=list(items)).to_json()
        route = "POST /v1/files/upload-urls"
        response = await self._call("POST", "/v1/files/upload-urls", route=route, json=body)
        parsed = self._parse(_UploadUrlsResponse, response, route)
        if len(parsed.items) != len(items):
            raise UnexpectedResponse(
                f"asked for {len(items)} upload URLs, got {len(parsed.items)}",
                status_code=response.status_code,
                route=route,
            )
        return parsed.items

    async def create_lip_sync(self, request: LipSyncRequest) -> CreatedJob:
        """Submit a lip-sync job. Never resent once it may have reached the server.

        Raises `SubmissionUncertain` when a job may exist although no id came back; the caller
        must not submit it again. Cancelling this call while the request is in flight leaves the
        same uncertainty (the CancelledError propagates as it is).
        """
        route = "POST /v1/lip-sync"
        response = await self._call("POST", "/v1/lip-sync", route=route, json=request.to_json(), create=True)
        try:
            job = _mark(CreatedJob.model_validate_json(response.content), response)
        except ValidationError as exc:
            # The server said yes, so a job exists, but we cannot tell which: same as no answer.
            raise SubmissionUncertain(
                f"unreadable success body ({_validation_summary(exc)})",
                status_code=response.status_code,
                route=route,
            ) from None
        logger.info("Magic Hour job %s created (%s credits estimated)", job.id, job.credits_charged)
        return job

    async def get_video_project(self, project_id: str) -> VideoProject:
        """The project's current status, error and (when complete) fresh download URLs."""
        route = f"GET /v1/video-projects/{project_id}"
        response = await self._call("GET", f"/v1/video-projects/{quote(project_id, safe='')}", route=route)
        return _mark(self._parse(VideoProject, response, route), response)

    async def delete_video_project(self, project_id: str) -> None:
        """Delete a project and its outputs for good.

        A 404 on a retry counts as success: an earlier attempt whose answer was lost may have
        deleted it already.
        """
        route = f"DELETE /v1/video-projects/{project_id}"
        await self._call(
            "DELETE",
            f"/v1/video-projects/{quote(project_id, safe='')}",
            route=route,
            not_found_on_retry_ok=True,
        )

    async def get_account(self) -> Account:
        """The account's id, email, credit balance, tier and subscription."""
        route = "GET /v1/account"
        response = await self._call("GET", "/v1/account", route=route)
        return _mark(self._parse(Account, response, route), response)

    # --- storage ---------------------------------------------------------------------------------

    async def upload_file(self, upload_url: str, path: Path, *, progress: Progress | None = None) -> None:
        """PUT a file to a presigned upload URL, streamed from disk.

        The body goes out in `CHUNK_SIZE` pieces with an explicit `Content-Length` (so it is not
        chunk-encoded) and without the API key. Retried, re-reading the file from the start, on
        transport errors, 408, 429 and 5xx. `progress(bytes_sent)` is called after each chunk; it
        starts again from 0 on a retry.
        """
        path = Path(path)
        route = f"PUT {redact_url(upload_url)}"

        async def attempt() -> httpx.Response:
            size = (await asyncio.to_thread(path.stat)).st_size
            handle = await asyncio.to_thread(path.open, "rb")
            body = _read_chunks(handle, size, progress)
            try:
                # No Content-Type: presigned URLs may sign it, and the SDK sends none either.
                request = self._storage.build_request(
                    "PUT", upload_url, content=body, headers={"Content-Length": str(size)}
                )
                _strip_credentials(request)
                started = self._clock.monotonic()
                async with self._observed(route, started), asyncio.timeout(_transfer_deadline(size)):
                    response = await self._storage.send(request, follow_redirects=False)
                    self._observe(route, str(response.status_code), started)
            except TimeoutError:
                raise StorageError(
                    f"upload of {size} bytes slower than {MIN_TRANSFER_RATE // 1024} KiB/s", route=route
                ) from None
            finally:
                await body.aclose()
                await asyncio.to_thread(handle.close)
            logger.debug("%s -> %d (%d bytes)", route, response.status_code, size)
            return response

        def classify(outcome: Outcome[httpx.Response], _: int) -> Verdict[None]:
            if isinstance(outcome, httpx.RequestError):
                return Retry(_describe(outcome), StorageError(f"upload failed: {_describe(outcome)}", route=route))
            status = outcome.status_code
            if outcome.is_success:
                return Succeed(None)
            if status in (401, 403):
                return GiveUp(UploadUrlExpired("upload URL refused or expired", status_code=status, route=route))
            error = StorageError("upload refused", status_code=status, route=route)
            if is_retryable_status(status):
                return Retry(f"HTTP {status}", error, self._retry_after(outcome))
            return GiveUp(error)

        await with_retries(attempt, classify, policy=self._retry, clock=self._clock, route=route)

    async def download(self, url: str, dest: Path, *, progress: Progress | None = None) -> int:
        """Stream `url` to `dest`; return the number of bytes written.

        The body goes to a temporary file beside `dest`, renamed into place only when complete,
        so a failed download never leaves a partial file at `dest`. Retried from the start on
        transport errors, short bodies, 408, 429 and 5xx. A 401/403/404/410 raises
        `DownloadExpired`: GET the project again for a fresh URL. `progress(bytes_written)` is
        called after each chunk.
        """
        dest = Path(dest)
        route = f"GET {redact_url(url)}"
        fd, part_name = await asyncio.to_thread(
            tempfile.mkstemp, dir=dest.parent, prefix=f".{dest.name}.", suffix=".part"
        )
        os.close(fd)
        part = Path(part_name)

        async def attempt() -> _Received:
            return await self._download_once(url, part, route, progress)

        def classify(outcome: Outcome[_Received], _: int) -> Verdict[int]:
            if isinstance(outcome, httpx.RequestError):
                return Retry(_describe(outcome), StorageError(f"download failed: {_describe(outcome)}", route=route))
            status = outcome.status_code
            if status in (401, 403, 404, 410):
                return GiveUp(DownloadExpired("download URL refused or expired", status_code=status, route=route))
            if not httpx.codes.is_success(status):
                error = StorageError("download refused", status_code=status, route=route)
                if is_retryable_status(status):
                    return Retry(f"HTTP {status}", error, outcome.retry_after)
                return GiveUp(error)
            if outcome.expected is not None and outcome.written != outcome.expected:
                reason = f"short body ({outcome.written} of {outcome.expected} bytes)"
                return Retry(reason, StorageError(f"download incomplete: {reason}", route=route))
            return Succeed(outcome.written)

        try:
            written = await with_retries(attempt, classify, policy=self._retry, clock=self._clock, route=route)
            await asyncio.to_thread(os.replace, part, dest)
        finally:
            # After a successful replace the name is gone; otherwise drop the partial file.
            await asyncio.to_thread(part.unlink, missing_ok=True)
        logger.debug("%s -> %s (%d bytes)", route, dest.name, written)
        return written

    async def _download_once(self, url: str, part: Path, route: str, progress: Progress | None) -> _Received:
        """One download attempt: what came back and how much of it was written to `part`.

        `part` is truncated first (it may hold what a failed attempt left). Transport errors
        propagate (the retry loop sees them); a body slower than `MIN_TRANSFER_RATE` raises
        `StorageError` at once.
        """
        request = self._storage.build_request("GET", url)
        _strip_credentials(request)
        started = self._clock.monotonic()
        try:
            async with self._observed(route, started), asyncio.timeout(None) as deadline:
                response = await self._storage.send(request, stream=True, follow_redirects=True)
                try:
                    status = response.status_code
                    if not response.is_success:
                        self._observe(route, str(status), started)
                        return _Received(status, retry_after=self._retry_after(response))
                    expected = _content_length(response)
                    encoded = response.headers.get("content-encoding", "identity").strip().lower() != "identity"
                    if encoded:
                        expected = None  # the decoded size differs from Content-Length
                    loop = asyncio.get_running_loop()
                    deadline.reschedule(loop.time() + _transfer_deadline(expected))
                    written = await _save_body(response, part, expected, progress, decode=encoded)
                finally:
                    await response.aclose()
                self._observe(route, str(status), started)
        except TimeoutError:
            raise StorageError(f"download slower than {MIN_TRANSFER_RATE // 1024} KiB/s", route=route) from None
        return _Received(status, written=written, expected=expected)

    # --- plumbing --------------------------------------------------------------------------------

    def _observe(self, route: str, status: str, started: float) -> None:
        if self._observer is not None:
            self._observer.request(_endpoint(route), status, max(0.0, self._clock.monotonic() - started))

    @contextlib.asynccontextmanager
    async def _observed(self, route: str, started: float) -> AsyncGenerator[None, None]:
        """Counts a request that got no answer (transport error, timeout) as status "error"."""
        try:
            yield
        except (httpx.RequestError, TimeoutError):
            self._observe(route, "error", started)
            raise

    def _auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._api_key.get_secret_value()}"}

    async def _call(
        self,
        method: Literal["GET", "POST", "DELETE"],
        path: str,
        *,
        route: str,
        json: dict[str, Any] | None = None,
        create: bool = False,
        not_found_on_retry_ok: bool = False,
    ) -> httpx.Response:
        """Send one API request with the retry rules of its kind; return a 2xx response."""
        url = self._base_url + path

        async def attempt() -> httpx.Response:
            started = self._clock.monotonic()
            async with self._observed(route, started):
                response = await self._http.request(
                    method, url, json=json, headers=self._auth_headers(), follow_redirects=False
                )
            self._observe(route, str(response.status_code), started)
            elapsed_ms = (self._clock.monotonic() - started) * 1000
            logger.debug("%s -> %d in %.0f ms", route, response.status_code, elapsed_ms)
            return response

        def classify(outcome: Outcome[httpx.Response], number: int) -> Verdict[httpx.Response]:
            if isinstance(outcome, httpx.RequestError):
                if create and not isinstance(outcome, NEVER_SENT_ERRORS):
                    # It may have arrived, and a second create is a second paid job.
                    return GiveUp(
                        SubmissionUncertain(
                            f"no answer after sending ({_describe(outcome)}); a job may exist, do not resubmit",
                            route=route,
                        )
                    )
                unavailable = Unavailable(f"gave up after {number} attempts: {_describe(outcome)}", route=route)
                return Retry(_describe(outcome), unavailable)
            status = outcome.status_code
            if outcome.is_success:
                return Succeed(outcome)
            if status == 404 and not_found_on_retry_ok and number > 1:
                logger.info("%s -> 404 on retry: already done by an earlier attempt", route)
                return Succeed(outcome)
            retry_after = self._retry_after(outcome)
            error = self._status_error(outcome, route, attempt=number, create=create, retry_after=retry_after)
            retryable = status in CREATE_RETRYABLE_STATUSES if create else is_retryable_status(status)
            return Retry(f"HTTP {status}", error, retry_after) if retryable else GiveUp(error)

        return await with_retries(attempt, classify, policy=self._retry, clock=self._clock, route=route)

    def _status_error(
        self, response: httpx.Response, route: str, *, attempt: int, create: bool, retry_after: float | None
    ) -> MagicHourError:
        status = response.status_code
        message = _api_message(response)
        tried = f" after {attempt} attempts" if attempt > 1 else ""
        if create and status not in _CREATE_NO_JOB_STATUSES:
            return SubmissionUncertain(
                f"failed{tried} in a way that may have created a job; do not resubmit",
                status_code=status,
                message=message,
                route=route,
            )
        cls = error_for_status(status)
        if cls is RateLimited:
            return RateLimited(
                f"rate limited{tried}", status_code=status, message=message, route=route, retry_after=retry_after
            )
        return cls(f"request failed{tried}", status_code=status, message=message, route=route)

    def _parse(self, model: type[_ModelT], response: httpx.Response, route: str) -> _ModelT:
        try:
            return model.model_validate_json(response.content)
        except ValidationError as exc:
            raise UnexpectedResponse(
                f"unexpected response body ({_validation_summary(exc)})",
                status_code=response.status_code,
                route=route,
            ) from None

    def _retry_after(self, response: httpx.Response) -> float | None:
        return parse_retry_after(response.headers.get("retry-after"), now=self._clock.now())


@dataclass(frozen=True, slots=True)
class _Received:
    """One download attempt's outcome: the status, and for a 2xx what was written.

    `expected` is the announced `Content-Length` (None when absent or content-encoded).
    """

    status_code: int
    retry_after: float | None = None
    written: int = 0
    expected: int | None = None


def _mark(model: _MarkedT, response: httpx.Response) -> _MarkedT:
    """The model with `sandbox` set from the response's `X-Magic-Hour-Sandbox` header (exactly "1")."""
    return model.model_copy(update={"sandbox": response.headers.get(SANDBOX_HEADER, "").strip() == "1"})


def _content_length(response: httpx.Response) -> int | None:
    value = response.headers.get("content-length")
    if value is None:
        return None
    with contextlib.suppress(ValueError):
        length = int(value)
        if length >= 0:
            return length
    return None


async def _save_body(
    response: httpx.Response, part: Path, expected: int | None, progress: Progress | None, *, decode: bool
) -> int:
    """Write the body's pieces to `part` as they come; return the bytes written.

    Without a content encoding the raw pieces are the file (`aiter_raw`: no decoder, no
    re-chunking, which copied every byte twice more); `progress` hears of each batch on disk.
    """
    sink = await FileSink.create(part, size_hint=expected)
    try:
        pieces = response.aiter_bytes() if decode else response.aiter_raw()
        reported = 0
        async for piece in pieces:
            await sink.write(piece)
            if progress is not None and sink.written > reported:
                reported = sink.written
                progress(reported)
        written = await sink.finish()
        if progress is not None and written > reported:
            progress(written)
        return written
    finally:
        sink.close()


def _strip_credentials(request: httpx.Request) -> None:
    # Belt and braces: storage requests must never carry a credential, whatever the client's
    # defaults or a caller's headers say.
    for name in ("authorization", "proxy-authorization", "cookie"):
        if name in request.headers:
            del request.headers[name]


async def _read_chunks(handle: IO[bytes], size: int, progress: Progress | None) -> AsyncGenerator[bytes, None]:
    """Yield exactly `size` bytes of `handle` in `CHUNK_SIZE` pieces, reading in a worker thread."""
    sent = 0
    while sent < size:
        chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, size - sent))
        if not chunk:
            # The declared Content-Length can no longer be met; someone is rewriting the file.
            raise StorageError(f"file shrank during upload ({sent} of {size} bytes read)")
        sent += len(chunk)
        yield chunk
        if progress is not None:
            progress(sent)
