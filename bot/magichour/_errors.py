"""Errors raised by the Magic Hour client: one small hierarchy under `MagicHourError`.

`str(error)` is the technical description for logs; the catalogue's text for `code` is what a
member may read; neither holds the API key or a signed URL's query string. `error_for_status` maps
a status to its class. docs/design-notes.md, "The Magic Hour client", draws the tree.
"""

from __future__ import annotations

from bot.errors import LipsyncError

_MAX_API_MESSAGE = 300


def _clip(text: str | None) -> str | None:
    # The API's message is shown in logs and sometimes to members; keep it short and one line.
    if text is None:
        return None
    text = " ".join(text.split())
    return text if len(text) <= _MAX_API_MESSAGE else text[: _MAX_API_MESSAGE - 1] + "…"


class MagicHourError(LipsyncError):
    """Base of every Magic Hour client error.

    Attributes:
        status_code: the HTTP status, or None when no response arrived (transport error).
        message: the API's `{"message": ...}` text, if the response had one.
        route: what was being done, e.g. `POST /v1/lip-sync` (never a signed URL's query).

    What a member reads is the catalogue's text for `code` (`bot.words`), never these details.
    """

    default_code = "magichour_error"

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        message: str | None = None,
        route: str | None = None,
    ) -> None:
        super().__init__(self.default_code)
        self.detail = detail
        self.status_code = status_code
        self.message = _clip(message)
        self.route = route

    def __str__(self) -> str:
        parts = [self.route] if self.route else []
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        parts.append(self.detail)
        if self.message and self.message not in self.detail:
            parts.append(f"API says: {self.message!r}")
        return ": ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class InvalidRequest(MagicHourError):
    """400 or 422: the API refused the request's content; nothing was created or charged."""

    default_code = "magichour_invalid_request"

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = None,
        message: str | None = None,
        route: str | None = None,
    ) -> None:
        super().__init__(detail, status_code=status_code, message=message, route=route)
        # Magic Hour's own wording ("Unable to create video", a list of valid extensions) is the
        # most useful thing a member can read here.
        self.data["detail"] = self.message or "no reason given"


class Unauthorized(MagicHourError):
    """401: the API key is missing, wrong or revoked. Only the operator can fix it."""

    default_code = "magichour_unauthorized"


class InsufficientCredits(MagicHourError):
    """402: the Magic Hour account cannot pay for this."""

    default_code = "magichour_insufficient_credits"


class NotOnPlan(MagicHourError):
    """403: the mode, resolution or feature is not on the account's plan."""

    default_code = "magichour_not_on_plan"


class NotFound(MagicHourError):
    """404: no such project (or it was deleted), or an input path the API cannot find."""

    default_code = "magichour_not_found"


class RateLimited(MagicHourError):
    """429 after the retries ran out. `retry_after` is the server's hint in seconds, if any."""

    default_code = "magichour_rate_limited"

    def __init__(
        self,
        detail: str,
        *,
        status_code: int | None = 429,
        message: str | None = None,
        route: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(detail, status_code=status_code, message=message, route=route)
        self.retry_after = retry_after


class Unavailable(MagicHourError):
    """A 5xx, a timeout or a network failure after the retries ran out; trying later may work."""

    default_code = "magichour_unavailable"


class SubmissionUncertain(Unavailable):
    """A create request may have reached Magic Hour, but no job id came back.

    A job may exist and be billed. It must NOT be submitted again (there is no idempotency key);
    reconcile instead, e.g. by treating the credits as spent and telling the member.
    """

    default_code = "magichour_submission_uncertain"


class UnexpectedResponse(MagicHourError):
    """A status the client has no rule for, or a success body that does not match the schema."""

    default_code = "magichour_unexpected_response"


class StorageError(MagicHourError):
    """Uploading to or downloading from Magic Hour's storage failed (status None: transport)."""

    default_code = "magichour_storage"


class UploadUrlExpired(StorageError):
    """The presigned upload URL was refused; request fresh URLs with `create_upload_urls`."""

    default_code = "magichour_upload_url_expired"


class DownloadExpired(StorageError):
    """The download URL was refused or has expired; GET the project again for a fresh URL."""

    default_code = "magichour_download_expired"


_STATUS_ERRORS: dict[int, type[MagicHourError]] = {
    400: InvalidRequest,
    401: Unauthorized,
    402: InsufficientCredits,
    403: NotOnPlan,
    404: NotFound,
    422: InvalidRequest,
    429: RateLimited,
}


def error_for_status(status_code: int) -> type[MagicHourError]:
    """The error class for an API response status (5xx is `Unavailable`)."""
    if status_code >= 500 or status_code == 408:
        return Unavailable
    return _STATUS_ERRORS.get(status_code, UnexpectedResponse)
