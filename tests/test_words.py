"""The catalogue of what the bot says: every code the code can produce has words, in every style."""

from __future__ import annotations

import ast
import datetime as dt
import re
import string
from pathlib import Path

import pytest

from bot import words
from bot.config import QuotaWindow
from bot.magichour import _errors as client_errors
from bot.store import LimitKind
from bot.terminal import TERMINAL
from bot.terminal import describe as terminal_describe
from cogs.texts import DISCORD, style_for

ROOT = Path(__file__).resolve().parents[1]
_RAISERS = {"InvalidInput", "JobFailed", "QuotaExceeded", "NotAllowed", "MediaError", "LipsyncError"}
# Calls whose first string argument (after a state, for `end`) is a catalogue code.
_CODE_CALLS = {"end": 1, "show": 0, "describe": 0}


def _codes_in_source() -> set[str]:
    """Every literal code passed to an error or an ending in bot/ and cogs/."""
    codes: set[str] = set()
    for path in [*ROOT.joinpath("bot").rglob("*.py"), *ROOT.joinpath("cogs").rglob("*.py")]:
        if "sandbox" in path.parts:
            continue  # the sandbox speaks Magic Hour's language, not the bot's
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
            index = 0 if name in _RAISERS else _CODE_CALLS.get(name)
            if index is None or len(node.args) <= index:
                continue
            arg = node.args[index]
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                codes.add(arg.value)
    return codes


def test_every_code_raised_has_its_own_words() -> None:
    """A code with no template would fall back to "Something went wrong (code)": a member learns nothing."""
    found = _codes_in_source()
    assert len(found) > 50  # the scan sees the code base, not nothing
    missing = sorted(code for code in found if not words.has(code))
    assert missing == []


def test_every_family_of_codes_made_at_run_time_has_words() -> None:
    """Codes built from data: quota refusals per limit, probe refusals per slot, client errors."""
    made = [f"quota_{kind.value}" for kind in LimitKind if kind is not LimitKind.ACTIVE_JOBS]
    made += [f"{code}_spent" for code in made]
    made += [f"{base}{slot}" for base in ("not_media", "still_image") for slot in ("", "_video", "_audio")]
    made += [f"{slot}_content_type" for slot in ("video", "audio")]
    made += [
        cls.default_code
        for cls in vars(client_errors).values()
        if isinstance(cls, type) and hasattr(cls, "default_code")
    ]
    assert [code for code in made if not words.has(code)] == []


def test_unknown_magic_hour_errors_fall_back_to_their_family() -> None:
    """`magic_hour_<something new>` reads as Magic Hour's error with its detail, not a bare code."""
    text = words.describe("magic_hour_brand_new_code", {"detail": "Out of cheese."})
    assert text == "Magic Hour couldn't render this job (Out of cheese.). Please try again later."


@pytest.mark.parametrize("language", words.languages())
@pytest.mark.parametrize("style", ["plain", "discord", "terminal"])
def test_every_template_fills_in_every_style_and_language(style: str, language: str) -> None:
    """No template breaks a formatter; placeholders it has no data for read "…", never raise."""
    styles: dict[str, words.Style] = {"plain": words.PLAIN, "discord": style_for(language), "terminal": TERMINAL}
    sample = {
        "filename": "clip`.mp4",
        "resets_at": dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        "window": QuotaWindow.DAILY.value,
        "available": 1500,
        "requested": 45,
        "limit": 60,
        "owner": 42,
        "kind": "png",
    }
    for code, template in words.catalogue(language).items():
        text = words.fill(template, sample, styles[style], language)
        assert "{" not in text and "}" not in text, (code, text)


def test_placeholders_use_known_kinds() -> None:
    """A typo in a kind (`{n:credit}`) would silently print "…"; every kind used is one the formatter knows."""
    kinds = {"", "credits", "n", "when", "s", "file", "code", "size", "period", "jobs", "member", "kind"}
    for code, template in words.catalogue().items():
        for _, _, spec, _ in string.Formatter().parse(template):
            if spec is not None:
                assert spec in kinds, (code, spec)


def test_numbers_have_thousands_separators() -> None:
    data = {"available": 10000, "estimate": 12345, "hold": 23456, "window": "daily"}
    assert words.describe("quota_member", data).startswith(
        "You have 10,000 credits left today, less than this clip's likely cost of 12,345 credits (23,456 credits held"
    )


def test_discord_names_cant_break_out_of_their_code_span() -> None:
    """A file named with backticks stays inside one code span (no markdown or mention injection)."""
    text = words.describe("empty_file", {"filename": "a`<@1>`b.mp4"}, DISCORD)
    empty = r"`[^`]*` is empty \(0 bytes\): there's nothing in it to lip-sync\. Check the file and give it again\."
    assert re.fullmatch(empty, text), text


# Discord's slash commands by their English names; a message template must name them through a
# `{…:command}` placeholder, so each edge writes them its own way (`/cancel`, `lipsync-bot …`).
_SLASH = re.compile(r"(?<![\w/.])/(lipsync|cancel|jobs|quota|queue|forget-me|usage|lipsync-admin|lipsync-status)\b")


@pytest.mark.parametrize("language", words.languages())
def test_no_template_carries_discord_markup_of_its_own(language: str) -> None:
    """Discord's timestamps and command names come from its style, never from the catalogue's text."""
    for code, template in words.catalogue(language).items():
        assert "<t:" not in template and "<@" not in template and "<#" not in template, (code, template)
        assert not _SLASH.search(template), (code, template)


def test_the_terminal_writes_a_reset_time_as_a_local_clock_time() -> None:
    """`lipsync-bot render` prints when an allowance resets as a time a person reads, not `<t:…:R>`."""
    resets = dt.datetime(2026, 3, 4, 5, 6, tzinfo=dt.UTC)
    data = {"available": 10, "requested": 45, "window": QuotaWindow.DAILY.value, "resets_at": resets}
    text = terminal_describe("quota_member", data)
    assert "<t:" not in text and "/" not in text
    assert resets.astimezone().strftime("%Y-%m-%d %H:%M") in text
    assert "<t:" in words.describe("quota_member", data, DISCORD)
