"""Timestamps and ids in the shapes Magic Hour uses."""

from __future__ import annotations

import datetime as dt
import secrets
import string

_ID_ALPHABET = string.ascii_lowercase + string.digits


def iso(when: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and a `Z`, e.g. `2026-01-01T12:00:00.000Z`."""
    utc = when.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def iso_from_unix(seconds: int) -> str:
    """`iso` for a Unix timestamp."""
    return iso(dt.datetime.fromtimestamp(seconds, dt.UTC))


def new_id() -> str:
    """A cuid-like id: `c` and 24 lowercase letters or digits."""
    return "c" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(24))
