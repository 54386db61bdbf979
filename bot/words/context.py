"""The reader's language, held in a context variable, as Red-DiscordBot's i18n holds its locale.

Set once per interaction (by the command tree's and the components' checks) and once per job (around
its hooks, for its owner); texts read `current()` when given no language. A task copies it when it is
created, so work started for a reader keeps that reader's language.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar

DEFAULT_LANGUAGE = "en"

_reader: ContextVar[str] = ContextVar("reader_language", default=DEFAULT_LANGUAGE)


def current() -> str:
    """The language of whoever the text being written is for (English when nobody set one)."""
    return _reader.get()


def use(language: str) -> None:
    """Make `language` the reader's for the rest of this task (an interaction's own task)."""
    _reader.set(language)


@contextlib.contextmanager
def using(language: str) -> Iterator[str]:
    """Write in `language` inside the block (and in tasks started there), then as before."""
    token = _reader.set(language)
    try:
        yield language
    finally:
        _reader.reset(token)
