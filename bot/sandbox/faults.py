"""Switches that make the sandbox misbehave on purpose: error statuses, dropped connections,
requests held open, and jobs that end in error.

Request faults are queued per route and consumed in the order they were injected, one per
request. Job-error faults are consumed by the next jobs created, in order.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from enum import Enum
from typing import Literal, get_args

Route = Literal["upload_urls", "create", "get_project", "delete_project", "account", "storage_put", "download"]
ROUTES: tuple[str, ...] = get_args(Route)

# Messages the sandbox puts on a failed job when a job_error fault gives none.
JOB_ERROR_MESSAGES: dict[str, str] = {
    "invalid_audio_file": "The audio file could not be read.",
    "invalid_video_file": "The video file could not be read.",
    "invalid_image_file": "The image file could not be read.",
    "invalid_youtube_url": "The YouTube video could not be downloaded.",
    "invalid_audio_path": "The audio file could not be found.",
    "invalid_video_path": "The video file could not be found.",
    "no_source_face": "No face was detected in the video.",
    "file_too_large": "The file is too large.",
    "insufficient_credits": "Not enough credits to render the video.",
    "invalid_parameters": "The parameters are invalid.",
    "processing_timeout": "Rendering took too long.",
    "unknown_error": "An unknown error occurred.",
}

_DEFAULT_STATUS_MESSAGES: dict[int, str] = {
    400: "Bad Request",
    401: "Unauthorized",
    402: "Payment required",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    422: "Unable to create video",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


class FaultKind(Enum):
    """What a request fault does."""

    FAIL = "fail"
    DISCONNECT = "disconnect"
    HANG = "hang"


@dataclass(frozen=True)
class RequestFault:
    """One injected misbehaviour for one request."""

    kind: FaultKind
    status: int = 500
    message: str = ""
    after_effect: bool = False


@dataclass(frozen=True)
class JobErrorFault:
    """Make one job end in `error` with this code and message."""

    code: str
    message: str


def _check_route(route: str) -> None:
    if route not in ROUTES:
        raise ValueError(f"unknown route {route!r}; expected one of {', '.join(ROUTES)}")


def _check_times(times: int) -> None:
    if times < 1:
        raise ValueError("times must be at least 1")


class Faults:
    """The fault switches of one sandbox (`sb.faults`)."""

    def __init__(self) -> None:
        self._queues: dict[str, collections.deque[RequestFault]] = collections.defaultdict(collections.deque)
        self._job_errors: collections.deque[JobErrorFault] = collections.deque()
        self._released = asyncio.Event()

    def fail(self, route: Route, status: int = 429, times: int = 1, message: str | None = None) -> None:
        """Answer the next `times` requests to `route` with `status` and `{"message": ...}`, changing nothing."""
        _check_route(route)
        _check_times(times)
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error status (400-599)")
        text = message if message is not None else _DEFAULT_STATUS_MESSAGES.get(status, "Error")
        self._queues[route].extend(RequestFault(FaultKind.FAIL, status=status, message=text) for _ in range(times))

    def disconnect(self, route: Route, times: int = 1, after_effect: bool = False) -> None:
        """Close the connection of the next `times` requests to `route` without a response.

        With `after_effect=False` nothing happens server-side (the request is dropped unread);
        with `after_effect=True` the request is handled first (for "create" the job exists and
        is billed) and only the response is lost.
        """
        _check_route(route)
        _check_times(times)
        self._queues[route].extend(RequestFault(FaultKind.DISCONNECT, after_effect=after_effect) for _ in range(times))

    def hang(self, route: Route, times: int = 1) -> None:
        """Hold the next `times` requests to `route` open until `release()` or the client goes away.

        The request is handled first (for "create" the job exists and is billed); only its
        response is held back, then sent on `release()`.
        """
        _check_route(route)
        _check_times(times)
        self._queues[route].extend(RequestFault(FaultKind.HANG, after_effect=True) for _ in range(times))

    def release(self) -> None:
        """Let every request held now answer; requests that hang later wait for the next release."""
        self._released.set()
        self._released = asyncio.Event()

    def job_error(self, code: str = "no_source_face", message: str | None = None, times: int = 1) -> None:
        """Make the next `times` jobs created end in status `error` with this code."""
        _check_times(times)
        text = message if message is not None else JOB_ERROR_MESSAGES.get(code, "The video could not be rendered.")
        self._job_errors.extend(JobErrorFault(code, text) for _ in range(times))

    def clear(self) -> None:
        """Drop every pending fault and release held requests."""
        self._queues.clear()
        self._job_errors.clear()
        self.release()

    def pending(self, route: Route) -> int:
        """How many request faults are still waiting for `route`."""
        return len(self._queues.get(route, ()))

    def take(self, route: str) -> RequestFault | None:
        """The fault for this request to `route`, if one is queued (consumes it)."""
        queue = self._queues.get(route)
        return queue.popleft() if queue else None

    def take_job_error(self) -> JobErrorFault | None:
        """The job-error fault for a job being created, if one is queued (consumes it)."""
        return self._job_errors.popleft() if self._job_errors else None

    async def wait_released(self) -> None:
        """Wait until the next `release()`."""
        await self._released.wait()
