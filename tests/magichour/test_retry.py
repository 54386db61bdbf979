"""RetryPolicy delays, Retry-After parsing, the retry loop and URL redaction."""

from __future__ import annotations

import datetime as dt
import random

import httpx
import pytest

from bot.magichour import RetryPolicy, StorageError, Unavailable, redact_url
from bot.magichour._retry import (
    GiveUp,
    Outcome,
    Retry,
    Succeed,
    Verdict,
    is_retryable_status,
    parse_retry_after,
    with_retries,
)

from .conftest import InstantClock

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def test_delays_grow_exponentially_to_the_cap_without_jitter() -> None:
    """0.5, 1, 2, 4, 8, 8 ... seconds."""
    policy = RetryPolicy(jitter=0.0)
    assert [policy.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]


def test_jitter_takes_off_at_most_a_quarter() -> None:
    """Default jitter keeps each delay within [75 %, 100 %] of the exponential value."""
    policy = RetryPolicy(rng=random.Random(7))
    for retry_number in range(1, 7):
        nominal = min(0.5 * 2 ** (retry_number - 1), 8.0)
        for _ in range(200):
            assert 0.75 * nominal <= policy.delay(retry_number) <= nominal


def test_full_jitter_may_go_down_to_zero() -> None:
    """jitter=1 is full jitter: anywhere between 0 and the exponential value."""
    policy = RetryPolicy(jitter=1.0, rng=random.Random(1))
    delays = [policy.delay(3) for _ in range(500)]
    assert min(delays) < 0.2 and max(delays) <= 2.0


def test_retry_after_wins_and_is_capped() -> None:
    """A numeric Retry-After replaces the back-off, up to 60 s."""
    policy = RetryPolicy()
    assert policy.delay(1, retry_after=3.0) == 3.0
    assert policy.delay(1, retry_after=0.0) == 0.0
    assert policy.delay(1, retry_after=3600.0) == 60.0


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("5", 5.0),
        (" 1.5 ", 1.5),
        ("0", 0.0),
        ("3600", 3600.0),  # capped by the policy, not by the parser
        (None, None),
        ("", None),
        ("-3", None),
        ("soon", None),
        ("nan", None),
        ("inf", None),
        ("1e3", None),  # delay-seconds is digits only
        ("\u0661\u0662", None),  # Arabic-Indic digits, which float() would take
        ("5 s", None),
    ],
)
def test_parse_retry_after_seconds(header: str | None, seconds: float | None) -> None:
    """Delay-seconds: non-negative decimal numbers count; garbage, signs and non-finite values don't."""
    assert parse_retry_after(header, now=NOW) == seconds


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("Sun, 01 Mar 2026 12:00:30 GMT", 30.0),  # IMF-fixdate, the preferred form
        ("Sunday, 01-Mar-26 12:01:00 GMT", 60.0),  # obsolete RFC 850 form
        ("Sun Mar  1 12:00:05 2026", 5.0),  # obsolete asctime form (always GMT)
        ("Sun, 01 Mar 2026 12:00:10 -0000", 10.0),
        ("Sun, 01 Mar 2026 14:00:10 +0200", 10.0),  # not HTTP, but unambiguous
        ("Sun, 01 Mar 2026 12:00:00 GMT", 0.0),  # now: retry at once
        ("Sun, 01 Mar 2026 13:00:00 GMT", 3600.0),
        ("Sun, 01 Mar 2026 11:59:59 GMT", None),  # already past
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("Sun, 32 Mar 2026 12:00:00 GMT", None),  # no such day
        ("Sun, 01 Mar 2026 25:00:00 GMT", None),
        ("tomorrow", None),
    ],
)
def test_parse_retry_after_dates(header: str, seconds: float | None) -> None:
    """An HTTP date counts from the given `now`; past dates and impossible dates are ignored."""
    assert parse_retry_after(header, now=NOW) == seconds


def test_a_far_retry_after_date_is_capped_by_the_policy() -> None:
    """Two hours ahead becomes the policy's 60 s cap."""
    policy = RetryPolicy()
    assert policy.delay(1, parse_retry_after("Sun, 01 Mar 2026 14:00:00 GMT", now=NOW)) == 60.0


def test_policy_arguments_are_checked() -> None:
    """Nonsense policies fail at construction."""
    with pytest.raises(ValueError, match="max_attempts"):
        RetryPolicy(max_attempts=0)
    with pytest.raises(ValueError, match="jitter"):
        RetryPolicy(jitter=1.5)
    assert RetryPolicy.none().max_attempts == 1


@pytest.mark.parametrize(
    ("status", "retry"),
    [
        (408, True),
        (429, True),
        (500, True),
        (502, True),
        (503, True),
        (504, True),
        (501, False),
        (505, False),
        (400, False),
        (401, False),
        (402, False),
        (403, False),
        (404, False),
        (422, False),
    ],
)
def test_retryable_statuses(status: int, retry: bool) -> None:
    """Safe-to-repeat calls retry 408, 429 and 5xx except 501/505; never the client errors."""
    assert is_retryable_status(status) is retry


def test_redact_url_drops_query_fragment_and_user_info() -> None:
    """Signatures live in the query; user info may hold a password."""
    url = "https://user:pw@storage.example:8443/upload/api-assets/a/b.mp4?expires=1&sig=abc#frag"
    assert redact_url(url) == "https://storage.example:8443/upload/api-assets/a/b.mp4"
    assert redact_url("http://[::1]:9000/x?sig=1") == "http://[::1]:9000/x"


# --- the retry loop ------------------------------------------------------------------------------


class Script:
    """An attempt function that returns or raises the given outcomes in order, counting calls."""

    def __init__(self, *outcomes: object) -> None:
        self._outcomes = list(outcomes)
        self.calls = 0

    async def __call__(self) -> str:
        self.calls += 1
        outcome = self._outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, str)
        return outcome


def by_text(outcome: Outcome[str], number: int) -> Verdict[str]:
    """ok: success; "slow N": retry after N seconds; "busy": retry; "no": give up; errors: retry."""
    if isinstance(outcome, httpx.RequestError):
        return Retry(type(outcome).__name__, Unavailable(f"transport, attempt {number}"))
    if outcome == "ok":
        return Succeed(f"done on attempt {number}")
    if outcome.startswith("slow "):
        return Retry("slow", Unavailable("slow"), retry_after=float(outcome.split()[1]))
    if outcome == "busy":
        return Retry("busy", Unavailable(f"busy, attempt {number}"))
    return GiveUp(StorageError(f"refused on attempt {number}"))


async def test_loop_retries_until_success_with_the_policy_and_retry_after() -> None:
    """Retries sleep through the clock: the exponential delay, or the server's Retry-After."""
    clock = InstantClock()
    attempt = Script("busy", httpx.ConnectError("refused"), "slow 7", "ok")
    policy = RetryPolicy(max_attempts=4, jitter=0.0)
    result = await with_retries(attempt, by_text, policy=policy, clock=clock, route="GET /x")
    assert result == "done on attempt 4"
    assert clock.sleeps == [0.5, 1.0, 7.0]


async def test_loop_gives_up_at_once() -> None:
    """GiveUp raises its error on the spot: no sleep, no second attempt."""
    clock = InstantClock()
    attempt = Script("no", "ok")
    with pytest.raises(StorageError, match="refused on attempt 1"):
        await with_retries(attempt, by_text, policy=RetryPolicy(), clock=clock, route="GET /x")
    assert attempt.calls == 1 and clock.sleeps == []


async def test_loop_raises_the_last_retry_error_with_its_transport_cause() -> None:
    """Out of attempts: the last Retry's error, chained to the transport error that caused it."""
    clock = InstantClock()
    cause = httpx.ReadError("reset")
    attempt = Script("busy", "busy", cause)
    with pytest.raises(Unavailable, match="transport, attempt 3") as caught:
        await with_retries(attempt, by_text, policy=RetryPolicy(max_attempts=3), clock=clock, route="GET /x")
    assert caught.value.__cause__ is cause
    assert attempt.calls == 3 and len(clock.sleeps) == 2


async def test_loop_lets_other_exceptions_through() -> None:
    """Only httpx request errors are classified; anything else ends the call unchanged."""
    clock = InstantClock()
    attempt = Script("busy", StorageError("deadline"), "ok")
    with pytest.raises(StorageError, match="deadline"):
        await with_retries(attempt, by_text, policy=RetryPolicy(), clock=clock, route="GET /x")
    assert attempt.calls == 2


async def test_loop_without_retries_makes_one_attempt() -> None:
    """RetryPolicy.none(): a Retry verdict raises at once."""
    clock = InstantClock()
    attempt = Script("busy", "ok")
    with pytest.raises(Unavailable):
        await with_retries(attempt, by_text, policy=RetryPolicy.none(), clock=clock, route="GET /x")
    assert attempt.calls == 1 and clock.sleeps == []
