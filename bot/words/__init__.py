"""One catalogue of what the bot says, in each language, and how each front end writes it.

Messages are templates keyed by code in `<language>.toml` (`en.toml` is the source), filled in with
an error's or a job's data; a `Style` says how a front end writes times, commands and names.
`language_for` maps a Discord locale to a catalogue; `context` holds the reader's language. The
placeholder kinds are listed on `_Formatter`; docs/design-notes.md, "Words and languages", gives
the reasons.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import string
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from typing import Any, Protocol

from bot.words.context import DEFAULT_LANGUAGE as DEFAULT_LANGUAGE
from bot.words.context import current as current
from bot.words.context import use as use
from bot.words.context import using as using

FALLBACK_CODE = "error"
_MISSING = "…"
_COMMANDS_TABLE = "commands"


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


# ---------------------------------------------------------------------------------- catalogues


@functools.cache
def _load(language: str) -> Mapping[str, Any]:
    text = resources.files(__package__).joinpath(f"{language}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@functools.cache
def languages() -> tuple[str, ...]:
    """Every language with a catalogue, English first: ("en", "es", "pt-BR")."""
    found = sorted(
        entry.name.removesuffix(".toml")
        for entry in resources.files(__package__).iterdir()
        if entry.name.endswith(".toml") and entry.name != f"{DEFAULT_LANGUAGE}.toml"
    )
    return (DEFAULT_LANGUAGE, *found)


def language_for(locale: str | None) -> str:
    """The catalogue for a Discord locale: "es-ES" and "es-419" -> "es", "pt-BR" -> "pt-BR", else "en"."""
    if not locale:
        return DEFAULT_LANGUAGE
    wanted = locale.replace("_", "-").lower()
    by_name = {language.lower(): language for language in languages()}
    if wanted in by_name:
        return by_name[wanted]
    return by_name.get(wanted.split("-", 1)[0], DEFAULT_LANGUAGE)


@functools.cache
def catalogue(language: str = DEFAULT_LANGUAGE) -> Mapping[str, str]:
    """The templates of one language, by code, as its file has them (no fallback)."""
    return {code: template for code, template in _load(language).items() if isinstance(template, str)}


@functools.cache
def commands(language: str = DEFAULT_LANGUAGE) -> Mapping[str, str]:
    """One language's `[commands]` table: Discord command names, descriptions and choices, by key."""
    table = _load(language).get(_COMMANDS_TABLE, {})
    return {key: value for key, value in table.items() if isinstance(value, str)} if isinstance(table, dict) else {}


def _known(language: str) -> str:
    return language if language in languages() else DEFAULT_LANGUAGE


def entry(code: str, language: str = DEFAULT_LANGUAGE) -> str | None:
    """The template for exactly `code` in `language`, else in English; None if neither has it."""
    own = catalogue(_known(language)).get(code)
    return own if own is not None else catalogue(DEFAULT_LANGUAGE).get(code)


def template_for(code: str, language: str = DEFAULT_LANGUAGE) -> str:
    """The template for `code`; for a code the catalogue doesn't know, its family's, else the generic one.

    A family is a prefix with `_error`: `magic_hour_brand_new` falls back to `magic_hour_error`.
    A code the language lacks is taken from English (tests make sure none is lacking).
    """
    found = entry(code, language)
    if found is not None:
        return found
    parts = code.split("_")
    for end in range(len(parts) - 1, 0, -1):
        family = entry("_".join(parts[:end]) + "_error", language)
        if family is not None:
            return family
    return entry(FALLBACK_CODE, language) or _MISSING


def has(code: str, language: str = DEFAULT_LANGUAGE) -> bool:
    """Whether the language's catalogue has a template of its own for `code`."""
    return code in catalogue(_known(language))


# ---------------------------------------------------------------------------------- numbers


def _separators(language: str) -> tuple[str, str]:
    return entry("format_thousands", language) or ",", entry("format_decimal", language) or "."


def number(n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """An integer with thousands separators: 10000 -> "10,000" (in Spanish, "10.000")."""
    thousands, _ = _separators(language)
    return f"{n:,}".replace(",", thousands)


def decimal(value: float, language: str = DEFAULT_LANGUAGE, spec: str = "g") -> str:
    """A number with the language's decimal mark: 2.5 -> "2.5" (in Spanish, "2,5")."""
    _, mark = _separators(language)
    return format(value, spec).replace(".", mark)


def counted(unit: str, n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """`n` of a unit the catalogue names (`unit_<unit>_one`/`_other`): "1 job", "3 jobs"."""
    form = "one" if n == 1 else "other"
    template = entry(f"unit_{unit}_{form}", language) or "{n}"
    return template.replace("{n}", number(n, language))


def credits(n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """ "1 credit", "1,234 credits"."""
    return counted("credits", n, language)


def jobs(n: int, language: str = DEFAULT_LANGUAGE) -> str:
    """ "1 job", "3 jobs"."""
    return counted("jobs", n, language)


def seconds(value: float, language: str = DEFAULT_LANGUAGE) -> str:
    """Seconds as members read them: 2.46 -> "2.5 s"; from a minute on, a clock: 90 -> "1:30",
    3725 -> "1:02:05", and whole hours 10800 -> "3 h" (never "10800 s")."""
    if round(value, 1) < 60:
        return f"{decimal(round(value, 1), language)} s"
    hours, rest = divmod(round(value), 3600)
    minutes, secs = divmod(rest, 60)
    if hours and not minutes and not secs:
        return f"{number(hours, language)} h"
    if hours:
        return f"{number(hours, language)}:{minutes:02}:{secs:02}"
    return f"{minutes}:{secs:02}"


def human_size(size: int, language: str = DEFAULT_LANGUAGE) -> str:
    """Bytes as a short human-readable size: "812 bytes", "12.0 MB".

    Decimal units (1 MB = 1,000,000 bytes), as Magic Hour states its plans' file limits, so a
    limit set to Magic Hour's "200 MB" reads as 200.0 MB.
    """
    value = float(size)
    for unit in ("bytes", "KB", "MB"):
        if value < 1000:
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{decimal(value, language, '.1f')} {unit}"
        value /= 1000
    return f"{decimal(value, language, '.1f')} GB"


def period(window: object, language: str = DEFAULT_LANGUAGE) -> str:
    """A quota window as a time: "daily" -> "today"."""
    return entry(f"period_{window}", language) or entry("period_other", language) or _MISSING


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
    """Fills a template's placeholders, `{name}` or `{name:kind}`, in one style and language.

    The kinds:

    - `credits`: "1 credit", "1,234 credits"      - `n`: "1,234"
    - `when`: a moment (datetime or ISO text)     - `s`: seconds, "2.5 s"
    - `file`: a member-supplied name, quoted       - `size`: bytes, "12.0 MB"
    - `period`: a quota window, "today"            - `jobs`: "1 job", "3 jobs"
    - `member`: a member's id, as a mention        - `kind`: a sniffed file kind, "a PNG image"
    - `cmd_<name>` (no kind): how to run a command at this front end, e.g. `{cmd_cancel}`.
    - `opt_<name>` (no kind): how an option is written at this front end, e.g. `{opt_end}`.
    - `code`: a fixed identifier (a mode's name), set apart like a name.

    Missing or unfit data never breaks a message: the placeholder becomes "…".
    """

    def __init__(self, style: Style, language: str) -> None:
        self._style = style
        self._language = language
        # Kinds written from any value; the rest take a number (`_NUMBER_KINDS`).
        self._any_value_kinds: dict[str, Callable[[object], str]] = {
            "when": self._when,
            "file": lambda value: style.quote(str(value)),
            "code": lambda value: style.quote(str(value)),
            "period": lambda value: period(value, language),
            "kind": self._kind,
            "member": lambda value: style.member(int(str(value))),
        }

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
        for_any = self._any_value_kinds.get(kind)
        if for_any is not None:
            return for_any(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            return str(value) if kind == "" else _MISSING
        for_number = _NUMBER_KINDS.get(kind)
        return for_number(value, self._language) if for_number is not None else format(value, kind)

    def _kind(self, value: object) -> str:
        words = entry(f"kind_{value}", self._language)
        return words or fill(template_for("kind_other", self._language), {"kind": value}, self._style, self._language)

    def _when(self, value: object) -> str:
        moment = _moment(value)
        return self._style.when(moment) if moment is not None else _MISSING


def _seconds_kind(value: float, language: str) -> str:
    return seconds(float(value), language) if math.isfinite(value) else _MISSING


def _plain_number(value: float, language: str) -> str:
    return decimal(value, language) if isinstance(value, float) else str(value)


# Kinds written from a number; any other value leaves the placeholder "…".
_NUMBER_KINDS: dict[str, Callable[[float, str], str]] = {
    "credits": lambda value, language: credits(int(value), language),
    "n": lambda value, language: number(int(value), language),
    "jobs": lambda value, language: jobs(int(value), language),
    "s": _seconds_kind,
    "size": lambda value, language: human_size(int(value), language),
    "": _plain_number,
}


def fill(template: str, data: Mapping[str, object], style: Style, language: str = DEFAULT_LANGUAGE) -> str:
    """A template filled with `data` in `style`."""
    return _Formatter(style, language).vformat(template, (), {**data})


def describe(code: str, data: Mapping[str, object], style: Style = PLAIN, language: str = DEFAULT_LANGUAGE) -> str:
    """The message for `code` with its `data`, written in `style` and `language`."""
    return fill(template_for(code, language), {"code": code, **data}, style, language)
