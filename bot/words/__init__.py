"""One catalogue of what the bot says, and how each front end writes it.

Messages are templates keyed by code in `en.toml` (plain text a translator can edit), filled in
with an error's or a job's data. The template says *what*; a `Style` says *how*: the Discord layer
writes times as `<t:…:R>` timestamps and commands as `/cancel`, the terminal writes local times
and `lipsync-bot` commands. So no Discord markup and no command names live in the core.

Placeholders are `{name}` or `{name:kind}`, where kind is one of:

- `credits`: "1 credit", "1,234 credits"      - `n`: "1,234"
- `when`: a moment (datetime or ISO text)     - `s`: seconds, "2.5 s"
- `file`: a member-supplied name, quoted       - `size`: bytes, "12.0 MB"
- `period`: a quota window, "today"            - `jobs`: "1 job", "3 jobs"
- `member`: a member's id, as a mention        - `kind`: a sniffed file kind, "a PNG image"
- `cmd_<name>` (no kind): how to run a command at this front end, e.g. `{cmd_cancel}`.
- `opt_<name>` (no kind): how an option is written at this front end, e.g. `{opt_end}`.
- `code`: a fixed identifier (a mode's name), set apart like a name.

Missing data never breaks a message: the placeholder becomes "…" (and a test checks that every
code the code raises has a template).
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import string
import tomllib
from collections.abc import Mapping
from importlib import resources
from typing import Any, Protocol

FALLBACK_CODE = "error"
_MISSING = "…"


class Style(Protocol):
    """How one front end writes the parts of a message that differ between front ends."""

    def when(self, moment: dt.datetime) -> str:
        """A moment, e.g. "in 3 hours" or "2026-11-30 00:00"."""
        ...

    def command(self, name: str) -> str:
        """How to run the command `name` ("cancel", "lipsync", "quota", …) here."""
        ...

    def quote(self, text: str) -> str:
        """A name the member chose (a file name), set apart and made harmless."""
        ...

    def member(self, user_id: int) -> str:
        """A member, by id."""
        ...

    def option(self, name: str) -> str:
        """A command option ("end", "max_fps", …) as the member types it here."""
        ...


class PlainStyle:
    """Plain text: UTC times, quoted names, commands by their Discord names (for logs)."""

    def when(self, moment: dt.datetime) -> str:
        """The moment in UTC, to the minute."""
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def command(self, name: str) -> str:
        """The command as Discord names it."""
        return f"/{name}"

    def quote(self, text: str) -> str:
        """The name in quotes."""
        return f"“{text}”"

    def member(self, user_id: int) -> str:
        """The member's id."""
        return f"member {user_id}"

    def option(self, name: str) -> str:
        """The option's name."""
        return name


PLAIN = PlainStyle()


def number(n: int) -> str:
    """An integer with thousands separators: 10000 -> "10,000"."""
    return f"{n:,}"


def credits(n: int) -> str:
    """ "1 credit", "1,234 credits"."""
    return f"{number(n)} credit{'' if n == 1 else 's'}"


def seconds(value: float) -> str:
    """Seconds as members read them: 2.0 -> "2 s", 2.46 -> "2.5 s"."""
    return f"{round(value, 1):g} s"


def human_size(size: int) -> str:
    """Bytes as a short human-readable size: "812 bytes", "12.0 MB"."""
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1024:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


_PERIODS = {"daily": "today", "weekly": "this week", "monthly": "this month"}


def _moment(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


class _Formatter(string.Formatter):
    def __init__(self, style: Style, language: str) -> None:
        self._style = style
        self._language = language

    def get_value(self, key: int | str, args: Any, kwargs: Any) -> Any:  # noqa: ANN401 - Formatter's signature
        if isinstance(key, str) and key.startswith("cmd_"):
            return self._style.command(key[4:])
        if isinstance(key, str) and key.startswith("opt_"):
            return self._style.option(key[4:])
        if isinstance(key, str) and key in kwargs and kwargs[key] is not None:
            return kwargs[key]
        return _MISSING

    def format_field(self, value: Any, format_spec: str) -> str:  # noqa: ANN401 - Formatter's signature
        if value is _MISSING:
            return str(_MISSING)
        try:
            return self._field(value, format_spec)
        except (TypeError, ValueError, OverflowError):
            return _MISSING

    def _field(self, value: object, kind: str) -> str:
        if kind == "when":
            moment = _moment(value)
            return self._style.when(moment) if moment is not None else _MISSING
        if kind in ("file", "code"):
            return self._style.quote(str(value))
        if kind == "period":
            return _PERIODS.get(str(value), "this period")
        if kind == "kind":
            words = catalogue(self._language).get(f"kind_{value}")
            return words if words else fill(template_for("kind_other", self._language), {"kind": value}, self._style)
        if kind == "member":
            return self._style.member(int(str(value)))
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value) if kind == "" else _MISSING
        if kind == "credits":
            return credits(int(value))
        if kind == "n":
            return number(int(value))
        if kind == "jobs":
            return f"{number(int(value))} job{'' if int(value) == 1 else 's'}"
        if kind == "s":
            return seconds(float(value)) if math.isfinite(value) else _MISSING
        if kind == "size":
            return human_size(int(value))
        if kind == "":
            return f"{value:g}" if isinstance(value, float) else str(value)
        return format(value, kind)


@functools.cache
def catalogue(language: str = "en") -> Mapping[str, str]:
    """The templates of one language, by code."""
    text = resources.files(__package__).joinpath(f"{language}.toml").read_text(encoding="utf-8")
    entries = tomllib.loads(text)
    return {code: template for code, template in entries.items() if isinstance(template, str)}


def template_for(code: str, language: str = "en") -> str:
    """The template for `code`; for a code the catalogue doesn't know, its family's, else the generic one.

    A family is a prefix with `_error`: `magic_hour_brand_new` falls back to `magic_hour_error`.
    """
    entries = catalogue(language)
    if code in entries:
        return entries[code]
    parts = code.split("_")
    for end in range(len(parts) - 1, 0, -1):
        family = "_".join(parts[:end]) + "_error"
        if family in entries:
            return entries[family]
    return entries[FALLBACK_CODE]


def fill(template: str, data: Mapping[str, object], style: Style, language: str = "en") -> str:
    """A template filled with `data` in `style`."""
    return _Formatter(style, language).vformat(template, (), {**data})


def describe(code: str, data: Mapping[str, object], style: Style = PLAIN, language: str = "en") -> str:
    """The message for `code` with its `data`, written in `style`."""
    return fill(template_for(code, language), {"code": code, **data}, style, language)


def has(code: str, language: str = "en") -> bool:
    """Whether the catalogue has a template of its own for `code`."""
    return code in catalogue(language)
