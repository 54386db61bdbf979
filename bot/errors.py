"""The bot's own error hierarchy: a code and its data, never a sentence.

Every error a member can cause or see derives from `LipsyncError` and carries a `code` (what
happened, e.g. `clip_too_long`) and `data` (the numbers and names that go with it, e.g.
`length=75.0, limit=60.0`). Words are made from those at the edges, through one catalogue
(`bot.words`): the Discord layer with Discord markup, the terminal with plain text and local
times. A job that fails stores the same code and data, so its message can be shown (or shown
again, in another language) long after the error was raised.

`user_message` is the plain-text wording, for logs and for code that has no edge of its own.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping

Datum = str | int | float | bool | None | dt.datetime
"""What an error's data may hold: JSON scalars, and datetimes (stored as ISO 8601 text)."""


class LipsyncError(Exception):
    """Base for errors with a message a member may read (made from `code` and `data`)."""

    default_code = "error"

    def __init__(self, code: str | None = None, /, **data: Datum) -> None:
        self.code = code or self.default_code
        self.data: dict[str, Datum] = data
        super().__init__(self.code)

    @property
    def user_message(self) -> str:
        """The message in plain text (no markup, times in UTC)."""
        from bot.words import PLAIN, describe  # the catalogue imports nothing from here

        return describe(self.code, self.data, PLAIN)

    def __str__(self) -> str:
        details = ", ".join(f"{k}={v!r}" for k, v in self.data.items())
        return f"{self.code} ({details})" if details else self.code


class InvalidInput(LipsyncError):
    """The request is wrong in a way the member can fix; nothing was spent."""

    default_code = "invalid_input"


class QuotaExceeded(LipsyncError):
    """A credit limit or the active-job limit refused the job; nothing was spent."""

    default_code = "quota_exceeded"


class JobFailed(LipsyncError):
    """The job could not finish; whatever it held is closed as the ledger rules say."""

    default_code = "job_failed"


class NotAllowed(LipsyncError):
    """The member may not do this (not the owner, missing permission, server not allowed)."""

    default_code = "not_allowed"


class ConfigurationError(LipsyncError):
    """The operator's configuration is incomplete or wrong: a sentence for the operator's terminal.

    The one error that carries its own words: it is never shown to members or stored.
    """

    default_code = "configuration"

    def __init__(self, text: str) -> None:
        super().__init__(self.default_code, text=text)


def json_data(data: Mapping[str, Datum]) -> dict[str, str | int | float | bool | None]:
    """Error data as JSON scalars (datetimes as ISO 8601 text), for the database."""
    return {key: value.isoformat() if isinstance(value, dt.datetime) else value for key, value in data.items()}
