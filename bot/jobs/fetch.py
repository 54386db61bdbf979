"""Fetching a member's input files to disk, streamed, with the size limit enforced as bytes arrive.

A URL is fetched only if a `FetchPolicy` allows it: by default `https` on Discord's attachment
CDN hosts, nothing else. The check runs on the URL exactly as httpx parses it (so no other parser
can disagree about the host), before any request is sent, and again on every redirect hop, which
is followed by hand (at most `MAX_REDIRECTS`) rather than by the client. A refused URL raises
`InvalidInput("fetch_refused")` before a byte of it is read.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import httpx

from bot.errors import InvalidInput, JobFailed
from bot.filesink import FileSink
from bot.jobs.models import InputSource
from bot.magichour import redact_url

log = logging.getLogger(__name__)

# However slowly Discord's CDN trickles, a fetch can't hold a job slot for longer than this.
FETCH_DEADLINE_SECONDS = 15 * 60
#: Discord's CDN does not redirect attachment URLs today; a few hops leave room, not a loop.
MAX_REDIRECTS = 3

#: Where Discord serves attachments: `cdn.discordapp.com` (attachment URLs, slash-command
#: attachments under `/ephemeral-attachments/`) and `media.discordapp.net` (their `proxy_url`).
DISCORD_CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})


def _hosts(hosts: Iterable[str]) -> frozenset[str]:
    return frozenset(host.strip().lower() for host in hosts)


@dataclass(frozen=True)
class FetchPolicy:
    """Which URLs input files may be fetched from.

    Attributes:
        hosts: exact host names (no wildcards, compared in lower case).
        allow_http: plain `http` as well as `https`; for local stand-ins of the CDN in tests.
        any_port: explicit ports other than the scheme's default; for stand-ins on random ports.

    A URL with user info (`user@host`) is never allowed.
    """

    hosts: frozenset[str] = DISCORD_CDN_HOSTS
    allow_http: bool = False
    any_port: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "hosts", _hosts(self.hosts))

    def allows(self, url: str | httpx.URL) -> bool:
        """Whether a fetch of `url` may be sent (the same rule for the first URL and every redirect)."""
        try:
            parsed = httpx.URL(url)
            # The ASCII (punycode) host the connection will go to; never decoded for display.
            host = parsed.raw_host.decode("ascii")
        except (httpx.InvalidURL, ValueError, TypeError):  # IDNA and decoding errors are ValueErrors
            return False
        return (
            (parsed.scheme == "https" or (self.allow_http and parsed.scheme == "http"))
            and host in self.hosts
            and not parsed.userinfo
            and (parsed.port is None or self.any_port)  # httpx drops a port that is the default
        )


#: The production rule: https on Discord's CDN, default port, no redirects elsewhere.
DISCORD_CDN = FetchPolicy()


async def fetch_input(
    http: httpx.AsyncClient,
    source: InputSource,
    dest: Path,
    *,
    max_bytes: int,
    policy: FetchPolicy = DISCORD_CDN,
    deadline_seconds: float = FETCH_DEADLINE_SECONDS,
) -> Path:
    """Make `source` available as a local file and return its path.

    A local `path` is used where it is (never copied, never deleted). A `url` must be allowed by
    `policy` (else `InvalidInput("fetch_refused")`, before anything is sent); it is streamed into
    `dest` piece by piece through a `FileSink` (memory stays flat whatever the size, and the disk
    is written off the event loop); the download stops as soon as it passes `max_bytes`, whatever
    the sender claimed the size was. Redirects are followed only to URLs the policy allows,
    whatever `http`'s own `follow_redirects` says.
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
    if not policy.allows(source.url):
        log.warning("refused to fetch %s: not an allowed attachment URL", redact_url(source.url))
        raise InvalidInput("fetch_refused", filename=source.filename)
    written = 0
    try:
        async with asyncio.timeout(deadline_seconds):
            response = await _open(http, httpx.URL(source.url), policy, source.filename)
            try:
                if response.status_code != httpx.codes.OK:
                    log.warning("fetching %s gave HTTP %s", redact_url(source.url), response.status_code)
                    raise JobFailed("fetch_failed", filename=source.filename, status=response.status_code)
                # The body's (decoded) pieces as they come, counted against the limit before they
                # are kept; the disk is written by a worker thread, never by the event loop.
                sink = await FileSink.create(dest, size_hint=max_bytes)
                try:
                    async for chunk in response.aiter_bytes():
                        written += len(chunk)
                        if written > max_bytes:
                            raise InvalidInput("file_over_limit", filename=source.filename, limit=max_bytes)
                        await sink.write(chunk)
                    await sink.finish()
                finally:
                    sink.close()
            finally:
                await response.aclose()
    except (httpx.HTTPError, TimeoutError) as exc:
        log.warning("fetching %s failed: %s", redact_url(source.url), type(exc).__name__)
        raise JobFailed("fetch_failed", filename=source.filename) from exc
    if written == 0:
        raise InvalidInput("empty_file", filename=source.filename)
    return dest


async def _open(http: httpx.AsyncClient, url: httpx.URL, policy: FetchPolicy, filename: str) -> httpx.Response:
    """Send the GET, following redirects by hand and checking each hop; return the streaming response."""
    for _ in range(MAX_REDIRECTS + 1):
        response = await http.send(http.build_request("GET", url), stream=True, follow_redirects=False)
        next_request = response.next_request  # set by httpx for a 3xx with a usable Location
        if next_request is None:
            return response
        await response.aclose()
        if not policy.allows(next_request.url):
            log.warning("refused to follow a redirect from %s to %s", redact_url(url), redact_url(next_request.url))
            raise InvalidInput("fetch_refused", filename=filename)
        url = next_request.url
    log.warning("fetching %s: more than %d redirects", redact_url(url), MAX_REDIRECTS)
    raise JobFailed("fetch_failed", filename=filename)
