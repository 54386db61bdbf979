"""How long to wait between attempts, and what may be retried at all.

The delay follows openai-python: exponential from `base_delay`, capped at `max_delay`, reduced by
up to `jitter` (25 %) so that many clients do not retry in step, and replaced by the server's
numeric `Retry-After` (capped at `max_retry_after`) when it sends one.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

import httpx

#: Transport errors after which the request provably never reached the server: no connection
#: was made (refused, DNS, TLS handshake), none was free in the pool, or the URL was unusable.
NEVER_SENT_ERRORS: tuple[type[httpx.TransportError], ...] = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.UnsupportedProtocol,
)


def is_retryable_status(status_code: int) -> bool:
    """Statuses worth retrying for calls that are safe to repeat (GET, DELETE, upload URLs, storage).

    501 and 505 say the server cannot do this at all (S3 answers a chunked PUT with 501), so
    repeating them only wastes time.
    """
    return status_code in (408, 429) or (500 <= status_code < 600 and status_code not in (501, 505))


#: Statuses after which `POST /v1/lip-sync` may be retried: Magic Hour documents that a 502 or 503
#: means no job was made, and a 429 is refused before any work.
CREATE_RETRYABLE_STATUSES = frozenset({429, 502, 503})


@dataclass(frozen=True)
class RetryPolicy:
    """Attempts and back-off for the client's retries; sleeps go through the client's `Clock`.

    `max_attempts` counts the first try, so 4 means up to 3 retries. `jitter` is the fraction of
    the exponential delay that may be taken off at random (0 disables it, 1 is "full jitter").
    """

    max_attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    jitter: float = 0.25
    max_retry_after: float = 60.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, retry_number: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number `retry_number` (1 for the first retry)."""
        if retry_after is not None and retry_after >= 0:
            return min(retry_after, self.max_retry_after)
        exponential = min(self.base_delay * 2.0 ** max(0, retry_number - 1), self.max_delay)
        return exponential * (1.0 - self.jitter * self.rng.random())

    @classmethod
    def none(cls) -> RetryPolicy:
        """A policy that never retries."""
        return cls(max_attempts=1)


def parse_retry_after(value: str | None) -> float | None:
    """The seconds in a numeric `Retry-After` header; None for a date, garbage or absence."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def redact_url(url: str | httpx.URL) -> str:
    """A URL fit for logs and messages: no query string, fragment or user info.

    Presigned storage URLs carry their signature in the query; dropping it keeps them useless
    to anyone reading a log.
    """
    try:
        parts = urlsplit(str(url))
    except ValueError:
        return "<unparseable url>"
    host = parts.hostname or ""
    if ":" in host:  # an IPv6 literal needs its brackets back
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))
