"""Every generation mode is known everywhere it must be: the checklist CONTRIBUTING.md gives, as a test.

Adding a member to `GenerationMode` makes this fail, by name, at each place still missing it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot import words
from bot.config import GenerationMode, Settings
from bot.sandbox.billing import CREDITS_PER_FRAME, PAID_PLAN_MODES
from cogs.manage import ManageCog

ROOT = Path(__file__).resolve().parents[1]
MODES = list(GenerationMode)


@pytest.mark.parametrize("mode", MODES, ids=str)
def test_the_sandbox_knows_the_mode_as_magic_hour_prices_it(mode: GenerationMode) -> None:
    """The sandbox's own table (bot/sandbox/billing.py) agrees with the bot's (bot/config.py)."""
    assert CREDITS_PER_FRAME.get(mode.value) == mode.credits_per_frame
    assert (mode.value in PAID_PLAN_MODES) == mode.needs_paid_plan


@pytest.mark.parametrize("mode", MODES, ids=str)
@pytest.mark.parametrize("language", words.languages())
def test_every_catalogue_names_the_mode_in_discord(mode: GenerationMode, language: str) -> None:
    """The `/lipsync` choice and the `/lipsync-admin modes` option, in every language."""
    table = words.commands(language)
    for key in (
        f"choice.{mode.value}",
        f"lipsync-admin modes.{mode.value}",
        f"lipsync-admin modes.{mode.value}.description",
    ):
        assert key in table, f"bot/words/{language}.toml [commands] lacks {key!r}"
    assert f"{mode.credits_per_frame} " in table[f"choice.{mode.value}"]


def test_managers_can_allow_each_mode() -> None:
    """`/lipsync-admin modes` (cogs/manage/_cog.py) has one switch per mode."""
    names = [parameter.name for parameter in ManageCog.modes.parameters]
    assert names == [mode.value for mode in MODES]


def test_the_mode_is_allowed_by_default_and_documented() -> None:
    assert Settings.model_fields["allowed_modes"].default_factory() == MODES  # type: ignore[call-arg, misc]
    example = (ROOT / ".env.example").read_text()
    [listed] = re.findall(r"^ALLOWED_MODES=(.*)$", example, re.M)
    assert listed.split(",") == [mode.value for mode in MODES]
    readme = (ROOT / "README.md").read_text()
    for mode in MODES:
        assert f"`{mode.value}`" in readme.split("## Costs and quotas", 1)[1], f"README's costs don't price {mode}"
