"""How long to wait between attempts, what may be retried at all, and the one loop that retries.

The delay follows openai-python: exponential from `base_delay`, capped at `max_delay`, reduced by
up to `jitter` (25 %) so that many clients do not retry in step, and replaced by the server's
`Retry-After` (seconds or an HTTP date, capped at `max_retry_after`) when it sends one.

Every call the client makes that may be repeated goes through `with_retries`: it runs an attempt,
asks the call's *classify* function what the outcome means (`Succeed`, `Retry`, `GiveUp`), and
backs off through the client's `Clock`. The rules of each call kind live in its classify function,
so the create call's "never resend what may have arrived" is one `GiveUp` in one place.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import math
import random
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeAlias, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from bot.clock import Clock

from ._errors import MagicHourError

logger = logging.getLogger(__name__)

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


#: Statuses after which `POST /v1/lip-sync` may be retried: only where Magic Hour's reference says
#: no job was made, a 429 (refused before any work) and a 502 (it failed before returning an id).
#: A 503 or 500 may come after the job was made: an uncertain submission, never resent.
CREATE_RETRYABLE_STATUSES = frozenset({429, 502})


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


_DELAY_SECONDS = re.compile(r"[0-9]+(?:\.[0-9]+)?", re.ASCII)


def parse_retry_after(value: str | None, *, now: dt.datetime) -> float | None:
    """Seconds to wait from a `Retry-After` header: delay-seconds or an HTTP date (RFC 9110 §10.2.3).

    A date counts from `now` (the client's clock). Absence, garbage, a negative number and a date
    that has already passed all give None: the caller falls back to its own back-off. The result
    is not capped here; `RetryPolicy.delay` caps it at `max_retry_after`.
    """
    if value is None:
        return None
    text = value.strip()
    if _DELAY_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" and asctime dates: HTTP dates are always GMT
        when = when.replace(tzinfo=dt.UTC)
    seconds = (when - now).total_seconds()
    return seconds if seconds >= 0 else None


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


# --- the retry loop ------------------------------------------------------------------------------

_T = TypeVar("_T")
_R = TypeVar("_R")


@dataclass(frozen=True, slots=True)
class Succeed(Generic[_T]):
    """The attempt worked: the call returns `value`."""

    value: _T


@dataclass(frozen=True, slots=True)
class Retry:
    """Worth another attempt after a back-off (or `retry_after` seconds, if the server said so).

    `reason` goes into the log line; `error` is raised if no attempts are left.
    """

    reason: str
    error: MagicHourError
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class GiveUp:
    """Trying again cannot help (or must not happen): raise `error` now."""

    error: MagicHourError


Verdict: TypeAlias = Succeed[_T] | Retry | GiveUp
"""What a classify function says about one attempt's outcome."""

Outcome: TypeAlias = _R | httpx.RequestError
"""What one attempt produced: its result, or the transport error it raised."""


async def with_retries(
    attempt: Callable[[], Awaitable[_R]],
    classify: Callable[[Outcome[_R], int], Verdict[_T]],
    *,
    policy: RetryPolicy,
    clock: Clock,
    route: str,
) -> _T:
    """Run `attempt` until `classify` says `Succeed` or `GiveUp`, or `policy` runs out of attempts.

    `classify(outcome, attempt_number)` sees either the attempt's result or the `httpx.RequestError`
    it raised (numbered from 1). Any other exception from `attempt`, `CancelledError` included,
    propagates unchanged at once. The error of the last `Retry` or of a `GiveUp` is raised with the
    transport error, if any, as its cause. Sleeps go through `clock`; `route` names the call in the
    log line of each retry (never a signed URL's query).
    """
    number = 0
    while True:
        number += 1
        outcome: Outcome[_R]
        try:
            outcome = await attempt()
        except httpx.RequestError as exc:
            outcome = exc
        verdict = classify(outcome, number)
        if isinstance(verdict, Succeed):
            return verdict.value
        cause = outcome if isinstance(outcome, httpx.RequestError) else None
        if isinstance(verdict, Retry) and number < policy.max_attempts:
            delay = policy.delay(number, verdict.retry_after)
            logger.info(
                "Magic Hour %s failed (%s); retry %d of %d in %.2f s",
                route,
                verdict.reason,
                number,
                policy.max_attempts - 1,
                delay,
            )
            await clock.sleep(delay)
            continue
        raise verdict.error from cause
