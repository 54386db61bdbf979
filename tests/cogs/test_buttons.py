"""The buttons' custom ids: every button is rebuilt from its own id, and no two kinds share one."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from enum import StrEnum
from typing import Any

import discord
import pytest

from cogs.buttons import IdButton, Part
from cogs.lipsync._views import DYNAMIC_ITEMS
from cogs.manage._forget import ForgetButton

# Every button the bot registers: the job's (`cogs.lipsync`) and `/forget-me`'s (`cogs.manage`).
ALL_BUTTONS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (*DYNAMIC_ITEMS, ForgetButton)


def _samples(part: Part) -> list[int | str]:
    return list(part) if issubclass(part, StrEnum) else [0, 7, 123456789012345678]


def _every_button() -> list[IdButton]:
    buttons: list[IdButton] = []
    for kind in ALL_BUTTONS:
        assert issubclass(kind, IdButton), f"{kind.__name__} should derive from IdButton"
        values = [_samples(part) for _, part in kind._parts]
        make: Callable[..., IdButton] = kind  # each kind's constructor takes its parts in order
        buttons.extend(make(*combination) for combination in itertools.product(*values))
    return buttons


@pytest.mark.parametrize("button", _every_button(), ids=lambda button: button.custom_id)
def test_every_button_is_rebuilt_from_its_own_id(button: IdButton) -> None:
    match = button.template.fullmatch(button.custom_id)
    assert match is not None, button.custom_id
    rebuilt = asyncio.run(type(button).from_custom_id(None, button.item, match))  # type: ignore[arg-type]
    assert type(rebuilt) is type(button)
    assert rebuilt.custom_id == button.custom_id
    for name in ("job_id", "user_id", "how"):
        assert getattr(rebuilt, name, None) == getattr(button, name, None)


def test_no_two_kinds_of_button_claim_the_same_id() -> None:
    for button in _every_button():
        claimants: list[Any] = [
            kind for kind in ALL_BUTTONS if kind.__discord_ui_compiled_template__.fullmatch(button.custom_id)
        ]
        assert claimants == [type(button)], button.custom_id
