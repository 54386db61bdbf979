"""Keeping secrets out of log lines, whatever a library decides to log.

`RedactingFilter` rewrites every record that passes a handler (what it removes is listed on it),
and `install` puts it on every handler of the root logger. It also keeps each record to one line
and at most `MAX_MESSAGE_CHARS`. docs/design-notes.md, "Logging", says why.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[REDACTED]"
MAX_MESSAGE_CHARS = 2000
# Every control character but tab: each would let a value start a line of its own or rewrite one.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")

_URL_STOP = r"""\s'"<>`\\"""  # characters that end a URL inside a log line
# Names of fields that hold secrets (names, not secrets: hence the noqa).
_SECRET_KEYS = r"(?:[a-z_]*token|[a-z_]*secret|password|api[_-]?key|authorization|proxy-authorization)"  # noqa: S105

_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    # Discord webhook and interaction URLs: the segment after the id is the token.
    (re.compile(rf"(/(?:webhooks|interactions)/[0-9]+/)[^/?#{_URL_STOP}]+"), rf"\g<1>{REDACTED}"),
    # `"token": "…"`, `'client_secret': '…'` in JSON and Python reprs.
    (
        re.compile(rf"""(["']{_SECRET_KEYS}["']\s*:\s*)(["'])(?:(?!\2).)*\2""", re.IGNORECASE),
        rf"\g<1>\g<2>{REDACTED}\g<2>",
    ),
    # `Authorization: Bot …`, `token=…`, `api_key = …` in headers, queries and prose.
    (
        re.compile(
            rf"""(\b{_SECRET_KEYS}\s*[:=]\s*)(?:(?:Bearer|Bot|Basic|Token)\s+)?[^\s,;&'"{{}}()\[\]]+""",
            re.IGNORECASE,
        ),
        rf"\g<1>{REDACTED}",
    ),
    (re.compile(r"\b(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.IGNORECASE), rf"\g<1>{REDACTED}"),
    # Interaction tokens on their own: base64 of "interaction:…".
    (re.compile(r"aW50ZXJhY3Rpb246[A-Za-z0-9_+/=.:-]*"), REDACTED),
    # Discord bot tokens (and JWTs): three base64url parts.
    (re.compile(r"\b[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{6,}\.[A-Za-z0-9_-]{20,}"), REDACTED),
    # Query strings and fragments of URLs: signatures of signed URLs live there.
    (re.compile(rf"\b((?:https?|wss?)://[^?#{_URL_STOP}]*)[?#][^{_URL_STOP}]*", re.IGNORECASE), rf"\g<1>?{REDACTED}"),
)

_TRACEBACKS = logging.Formatter()


def redact(text: str) -> str:
    """`text` with every secret the rules know of replaced by `[REDACTED]`."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    return text


def one_line(text: str) -> str:
    """`text` as one log line: control characters escaped, and cut at `MAX_MESSAGE_CHARS`."""
    text = _CONTROL.sub(lambda match: match.group().encode("unicode_escape").decode("ascii"), text)
    if len(text) > MAX_MESSAGE_CHARS:
        text = f"{text[:MAX_MESSAGE_CHARS]}… [{len(text) - MAX_MESSAGE_CHARS:,} more characters cut]"
    return text


class RedactingFilter(logging.Filter):
    """A handler filter that redacts secrets from each record's message, args and traceback.

    What it removes (each replaced by `[REDACTED]`):

    - the token segment of Discord webhook and interaction URLs;
    - interaction tokens anywhere (they start with the base64 of `interaction:`);
    - Discord bot tokens (three base64url parts joined by dots; JWTs have the same shape);
    - `Bearer …` values, and the value of any `Authorization` header or `token`/`secret`/
      `password`/`api_key` field in `key: value`, `key=value`, JSON or Python-repr form;
    - the query string and fragment of every http(s) and ws(s) URL.

    Control characters in a message (newlines, carriage returns, terminal escapes) are written as
    escapes, and a message past `MAX_MESSAGE_CHARS` is cut, saying how much was cut. The record's
    message is formatted (`msg % args`), redacted, and stored back with no args, but only when
    something had to go; a record with an exception gets its traceback formatted and redacted into
    `exc_text`, and `exc_info` dropped, so no handler can print the raw traceback again.

    It never drops a record. It is idempotent, so a record that passes several handlers (each
    with the filter) comes out the same.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record in place; always keep it."""
        try:
            message = record.getMessage()
            broken = False
        except Exception:  # a broken format: the handler's error report would print msg and args raw
            message = f"{record.msg!s} (arguments that did not fit: {record.args!r})"
            broken = True
        redacted = one_line(redact(message))
        if broken or redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and record.exc_info != (None, None, None):
            record.exc_text = record.exc_text or _TRACEBACKS.formatException(record.exc_info)
            record.exc_info = None
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install(logger: logging.Logger | None = None) -> RedactingFilter:
    """Put one `RedactingFilter` on every handler of `logger` (the root logger by default).

    Handlers that already have one are left as they are. Handlers added later are not covered,
    so call this after the last handler is configured.
    """
    target = logger if logger is not None else logging.getLogger()
    shared = RedactingFilter()
    for handler in target.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(shared)
    return shared
