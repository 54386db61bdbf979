"""The catalogues: every language says everything English says, with the same placeholders.

A key a translation lacks is written in English at run time (a member reads something true), but
here it fails the build, so none ships. The `[commands]` tables give Discord the command names and
descriptions: English must be what the code says, and every name must be one Discord accepts.
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from bot import words
from cogs import texts
from cogs.locale import command_texts
from tests.cogs.conftest import Harness

TRANSLATIONS = words.languages()[1:]
# Discord's rule for command and option names (CHAT_INPUT): lowercase where the script has case.
_NAME = re.compile(r"^[-_'\w]{1,32}$")


def placeholders(template: str) -> list[tuple[str, str]]:
    """The {name:kind} fields of a template, sorted."""
    return sorted((field, spec or "") for _, field, spec, _ in string.Formatter().parse(template) if field is not None)


def test_there_are_at_least_two_translations() -> None:
    assert {"es", "pt-BR"} <= set(TRANSLATIONS)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_every_key_exists_in_every_language(language: str) -> None:
    """Nothing missing (it would be shown in English), nothing left over (a renamed key would be lost)."""
    english, translated = set(words.catalogue("en")), set(words.catalogue(language))
    assert sorted(english - translated) == [], f"{language}.toml lacks these"
    assert sorted(translated - english) == [], f"{language}.toml has keys English doesn't"
    english, translated = set(words.commands("en")), set(words.commands(language))
    assert sorted(english - translated) == [], f"{language}.toml [commands] lacks these"
    assert sorted(translated - english) == [], f"{language}.toml [commands] has keys English doesn't"


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_translations_keep_every_placeholder(language: str) -> None:
    """A dropped or renamed {placeholder} would print "…" or lose a number."""
    english = words.catalogue("en")
    differ = {
        code: (placeholders(english[code]), placeholders(template))
        for code, template in words.catalogue(language).items()
        if code in english and placeholders(english[code]) != placeholders(template)
    }
    assert differ == {}


def test_a_missing_key_falls_back_to_english_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A translation that lacks a key shows the English sentence (never the bare code), and the test above fails."""
    spanish = dict(words.catalogue("es"))
    del spanish["too_late"]
    original = words.catalogue
    monkeypatch.setattr(words, "catalogue", lambda language="en": spanish if language == "es" else original(language))
    assert words.describe("too_late", {"job": 7}, language="es").startswith("Job #7 has already rendered")
    assert words.describe("already_ended", {"job": 7}, language="es") == "El trabajo #7 ya ha terminado."


@pytest.mark.parametrize(
    ("locale", "language"),
    [
        ("es-ES", "es"),
        ("es-419", "es"),
        ("pt-BR", "pt-BR"),
        ("en-US", "en"),
        ("en-GB", "en"),
        ("fr", "en"),
        (None, "en"),
    ],
)
def test_discord_locales_map_to_catalogues(locale: str | None, language: str) -> None:
    assert words.language_for(locale) == language


@pytest.mark.parametrize("language", words.languages())
def test_numbers_follow_the_language(language: str) -> None:
    expected = {"en": "12,345 credits", "es": "12.345 créditos", "pt-BR": "12.345 créditos"}
    assert words.credits(12345, language) == expected[language]
    assert words.credits(1, language).startswith("1 ")
    assert words.seconds(2.5, language) == ("2.5 s" if language == "en" else "2,5 s")


# ---------------------------------------------------------------------------------- Discord commands


def _names(texts: Mapping[str, str]) -> Iterator[tuple[str, str]]:
    """The command and option names among a `[commands]` table's texts (not descriptions, choices or menus)."""
    for key, value in texts.items():
        if key.endswith(".description") or key.startswith("choice.") or key.startswith("Lip-sync:"):
            continue
        yield key, value


async def test_english_command_texts_are_what_the_code_says(harness: Harness) -> None:
    """en.toml's `[commands]` is exactly the English the code sends Discord, so translators see every key."""
    assert dict(words.commands("en")) == command_texts(harness.bot.tree)


@pytest.mark.parametrize("language", TRANSLATIONS)
def test_translated_command_texts_are_valid_for_discord(language: str) -> None:
    """Discord refuses the whole sync for one bad name: lowercase, no spaces, 1-32; descriptions 1-100."""
    texts = words.commands(language)
    for key, name in _names(texts):
        assert _NAME.match(name) and name == name.lower(), (key, name)
    for key, value in texts.items():
        limit = 32 if key.startswith("Lip-sync:") else 100
        assert 1 <= len(value) <= limit, (key, value)
    # Options of one command keep distinct names.
    by_command: dict[str, list[str]] = {}
    for key, name in _names(texts):
        command, _, _option = key.rpartition(".")
        if command:
            by_command.setdefault(command, []).append(name)
    assert {command: names for command, names in by_command.items() if len(set(names)) != len(names)} == {}


def test_messages_name_commands_as_members_see_them() -> None:
    """`{cmd_cancel}` and `{opt_end}` use the member's language's names, as their Discord shows them."""
    data: dict[str, Any] = {"limit": 2}
    assert "`/cancelar`" in texts.describe("active_jobs", data, "es")
    assert "`/cancel`" in texts.describe("active_jobs", data, "en")
    assert texts.describe("bad_end", lang="pt-BR") == "`fim` precisa ser de pelo menos 0,1 segundo."
