"""Fetching a member's input files to disk, streamed, with the size limit enforced as bytes arrive."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import httpx

from bot.errors import InvalidInput, JobFailed
from bot.jobs.models import InputSource

log = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
# However slowly Discord's CDN trickles, a fetch can't hold a job slot for longer than this.
FETCH_DEADLINE_SECONDS = 15 * 60


def redact_url(url: str) -> str:
    """A URL without its query string: signed URLs must never reach a log line."""
    return url.split("?", 1)[0]


async def fetch_input(
    http: httpx.AsyncClient,
    source: InputSource,
    dest: Path,
    *,
    max_bytes: int,
    deadline_seconds: float = FETCH_DEADLINE_SECONDS,
) -> Path:
    """Make `source` available as a local file and return its path.

    A local `path` is used where it is (never copied, never deleted). A `url` is streamed into
    `dest` chunk by chunk, so memory stays flat whatever the size; the download stops as soon
    as it passes `max_bytes`, whatever the sender claimed the size was.
    """
    if source.path is not None:
        if not source.path.is_file():
            raise InvalidInput("missing_file", filename=source.filename)
        size = source.path.stat().st_size
        if size > max_bytes:
            raise InvalidInput("file_too_large", filename=source.filename, size=size, limit=max_bytes)
        if size == 0:
            raise InvalidInput("empty_file", filename=source.filename)
        return source.path
    if source.url is None:
        raise ValueError("an InputSource needs a url or a path")
    written = 0
    try:
        async with asyncio.timeout(deadline_seconds), http.stream("GET", source.url) as response:
            if response.status_code != httpx.codes.OK:
                log.warning("fetching %s gave HTTP %s", redact_url(source.url), response.status_code)
                raise JobFailed("fetch_failed", filename=source.filename, status=response.status_code)
            with dest.open("wb") as handle:
                async for chunk in response.aiter_bytes(CHUNK_BYTES):
                    written += len(chunk)
                    if written > max_bytes:
                        raise InvalidInput("file_over_limit", filename=source.filename, limit=max_bytes)
                    handle.write(chunk)
    except (httpx.HTTPError, TimeoutError) as exc:
        log.warning("fetching %s failed: %s", redact_url(source.url), type(exc).__name__)
        raise JobFailed("fetch_failed", filename=source.filename) from exc
    if written == 0:
        raise InvalidInput("empty_file", filename=source.filename)
    return dest
