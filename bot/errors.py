"""The bot's own error hierarchy.

Every error a member can cause or see derives from `LipsyncError` and carries a `user_message`
that is safe to show in Discord or a terminal: no secrets, no signed URLs, no stack traces.
One place per front end (the Discord error renderer, the `render` command) turns them into text.
"""

from __future__ import annotations


class LipsyncError(Exception):
    """Base for errors with a message a member may read."""

    def __init__(self, user_message: str, *, code: str = "error") -> None:
        super().__init__(user_message)
        self.user_message = user_message
        self.code = code


class InvalidInput(LipsyncError):
    """The request is wrong in a way the member can fix; nothing was spent."""

    def __init__(self, user_message: str, *, code: str = "invalid_input") -> None:
        super().__init__(user_message, code=code)


class QuotaExceeded(LipsyncError):
    """A credit limit or the active-job limit refused the job; nothing was spent."""

    def __init__(self, user_message: str, *, code: str = "quota_exceeded") -> None:
        super().__init__(user_message, code=code)


class JobFailed(LipsyncError):
    """The job could not finish; any reserved credits have been refunded."""

    def __init__(self, user_message: str, *, code: str = "job_failed") -> None:
        super().__init__(user_message, code=code)


class NotAllowed(LipsyncError):
    """The member may not do this (not the owner, missing permission, server not allowed)."""

    def __init__(self, user_message: str, *, code: str = "not_allowed") -> None:
        super().__init__(user_message, code=code)


class ConfigurationError(LipsyncError):
    """The operator's configuration is incomplete or wrong."""

    def __init__(self, user_message: str, *, code: str = "configuration") -> None:
        super().__init__(user_message, code=code)
