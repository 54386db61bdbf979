"""Every number a person types has a bound (`bot.bounds`), and a number outside it gets a clear refusal.

These are the family tests: a new setting, slash-command option or bound without its limit, its
words in every language, or room in the database fails here, by name.
"""

from __future__ import annotations

import importlib
import inspect
import math
import pkgutil
import types
import typing

import annotated_types
import discord
import pytest
from discord.ext import commands
from pydantic import ValidationError

import cogs
from bot import bounds, words
from bot.bounds import Bound, OutOfBounds
from bot.config import Settings
from bot.errors import InvalidInput

# Discord's own ids (snowflakes): numbers Discord gives, not amounts anyone chooses; and the
# budget, whose bound is a validator (it may also be "unlimited").
NOT_AMOUNTS = {"dev_guild_id", "allowed_guild_ids", "shard_ids", "bot_budget_credits"}


def _numeric_settings() -> list[str]:
    found = []
    for name, info in Settings.model_fields.items():
        args = typing.get_args(info.annotation) or (info.annotation,)
        if any(arg in (int, float) for arg in args) and name not in NOT_AMOUNTS:
            found.append(name)
    return found


def _highest(name: str) -> float:
    for item in Settings.model_fields[name].metadata:
        if isinstance(item, annotated_types.Le):
            return float(item.le)  # type: ignore[arg-type]
        if isinstance(item, annotated_types.Lt):
            return float(item.lt)  # type: ignore[arg-type]
    raise AssertionError(f"{name.upper()} has no upper bound")


def _options() -> list[tuple[str, discord.app_commands.Parameter]]:
    """Every INTEGER and NUMBER option of every slash command the cogs define."""
    found = []
    for module in pkgutil.walk_packages(cogs.__path__, "cogs."):  # the feature packages' modules too
        loaded = importlib.import_module(module.name)
        for _, cls in inspect.getmembers(loaded, inspect.isclass):
            if not (issubclass(cls, commands.Cog) and cls.__module__ == loaded.__name__):
                continue
            for command in cls.__cog_app_commands__:
                for param in getattr(command, "parameters", []):
                    kinds = (discord.AppCommandOptionType.integer, discord.AppCommandOptionType.number)
                    if param.type in kinds:
                        found.append((f"/{command.qualified_name} {param.name}", param))
    return found


def test_a_bound_refuses_what_is_outside_it() -> None:
    """Below, above, NaN, infinity and booleans are refused with the bound's code and numbers."""
    bound = Bound("credits_out_of_range", 0, 10)
    assert bound.check(0) == 0 and bound.check(10) == 10
    for value in (-1, 11, math.nan, math.inf, -math.inf, True):
        with pytest.raises(OutOfBounds) as refused:
            bound.check(value)  # type: ignore[arg-type]
        assert refused.value.code == "credits_out_of_range"
        assert (refused.value.data["low"], refused.value.data["high"]) == (0, 10)
        assert isinstance(refused.value, InvalidInput) and isinstance(refused.value, ValueError)


@pytest.mark.parametrize("language", words.languages())
@pytest.mark.parametrize("bound", bounds.ALL, ids=lambda b: b.code)
def test_every_refusal_is_worded_in_every_language(bound: Bound[int] | Bound[float], language: str) -> None:
    """Each bound's refusal has its own words, in every catalogue, with its numbers filled in."""
    assert words.has(bound.code, language), (bound.code, language)
    # Integers come as integers (Discord, pydantic, argparse); only a float can be NaN.
    odd = (math.nan, math.inf) if isinstance(bound.high, float) else ()
    for value in (bound.low - 1, bound.high + 1, *odd):
        text = words.describe(bound.code, OutOfBounds(bound, value).data, words.PLAIN, language)
        assert "{" not in text and "…" not in text, text


def test_the_bounds_fit_the_database_discord_and_magic_hour() -> None:
    """Sums of millions of bounded amounts stay far from 64 bits; options fit Discord's integers."""
    assert bounds.MAX_CREDITS * 1_000_000 < 2**63 - 1
    assert bounds.MAX_CREDITS <= bounds.MAX_DISCORD_INTEGER
    assert bounds.MAX_JOB_CREDITS == bounds.MAX_FRAMES * bounds.MAX_CREDITS_PER_FRAME <= bounds.MAX_CREDITS
    assert bounds.MAX_CLIP_SECONDS * bounds.MAX_FPS <= bounds.MAX_FRAMES
    assert bounds.MAX_ID == 2**63 - 1
    assert (bounds.MAX_PROBE_MEMORY_MIB << 20) < 2**63 - 1


@pytest.mark.parametrize("name", _numeric_settings())
def test_every_numeric_setting_is_bounded(name: str) -> None:
    """Every number an operator sets has an upper bound, and refuses NaN, infinity and beyond it."""
    highest = _highest(name)
    is_float = float in (
        typing.get_args(Settings.model_fields[name].annotation) or (Settings.model_fields[name].annotation,)
    )
    too_big: list[object] = [int(highest) + 1 if not is_float else highest * 2 + 1]
    if is_float:
        too_big += [math.nan, math.inf]
    for value in too_big:
        with pytest.raises(ValidationError):
            Settings(_env_file=None, **{name: value})  # type: ignore[call-arg, arg-type]


def test_the_budget_is_bounded_too() -> None:
    """BOT_BUDGET_CREDITS: a number within the credit bound, or `unlimited`."""
    Settings(_env_file=None, bot_budget_credits=bounds.MAX_CREDITS)  # type: ignore[call-arg]
    with pytest.raises(ValidationError, match="BOT_BUDGET_CREDITS must be 0 to"):
        Settings(_env_file=None, bot_budget_credits=bounds.MAX_CREDITS + 1)  # type: ignore[call-arg]


def test_every_numeric_option_declares_a_bound_of_its_kind() -> None:
    """Every INTEGER or NUMBER option has a lowest and highest, within one of `bot.bounds`.

    Discord refuses what lies outside before the bot sees it; the core checks the same bound again.
    """
    options = _options()
    assert len(options) >= 10  # /lipsync's window and cap, /cancel, and every manager's number
    for where, param in options:
        assert param.min_value is not None and param.max_value is not None, where
        assert abs(param.min_value) <= bounds.MAX_DISCORD_INTEGER >= abs(param.max_value), where
        fits = [b for b in bounds.ALL if b.low <= param.min_value and param.max_value <= b.high]
        assert fits, f"{where}: [{param.min_value}, {param.max_value}] is within no bound"


def test_bounds_module_names_no_discord() -> None:
    """The bounds are the core's: the cogs import them, never the other way round."""
    assert isinstance(bounds, types.ModuleType)
    assert "discord" not in inspect.getsource(bounds)
