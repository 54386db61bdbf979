"""RetryPolicy delays, Retry-After parsing and URL redaction."""

from __future__ import annotations

import random

import pytest

from bot.magichour import RetryPolicy, redact_url
from bot.magichour._retry import is_retryable_status, parse_retry_after


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
        (None, None),
        ("-3", None),
        ("soon", None),
        ("nan", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
    ],
)
def test_parse_retry_after(header: str | None, seconds: float | None) -> None:
    """Only non-negative numbers count; dates and garbage are ignored."""
    assert parse_retry_after(header) == seconds


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
