"""Settings: defaults, `.env.example`, list parsing and secret handling."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import ValidationError

from bot.config import GenerationMode, QuotaWindow, Settings

ROOT = Path(__file__).resolve().parents[1]


def test_env_example_loads_and_documents_every_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    """`.env.example` is valid as it ships and names every field of `Settings`."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    settings = Settings(_env_file=ROOT / ".env.example")  # type: ignore[call-arg]
    assert settings.discord_token is None
    assert settings.allowed_guild_ids == []
    assert settings.quota_window is QuotaWindow.DAILY
    assert settings.quota_reset_time == dt.time(0, 0)
    text = (ROOT / ".env.example").read_text()
    missing = [name.upper() for name in Settings.model_fields if f"{name.upper()}=" not in text]
    assert missing == []


def test_comma_separated_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    """Operators write lists as `1,2,3`, not JSON."""
    monkeypatch.setenv("ALLOWED_GUILD_IDS", "11, 22")
    monkeypatch.setenv("ALLOWED_MODES", "lite,pro")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.allowed_guild_ids == [11, 22]
    assert settings.allowed_modes == [GenerationMode.LITE, GenerationMode.PRO]


def test_secrets_never_print(monkeypatch: pytest.MonkeyPatch) -> None:
    """Secrets are SecretStr: repr and str of the settings don't show them."""
    monkeypatch.setenv("DISCORD_TOKEN", "discord-secret-value")
    monkeypatch.setenv("MAGIC_HOUR_API_KEY", "mh-secret-value")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    shown = f"{settings!r} {settings} {settings.model_dump()}"
    assert "discord-secret-value" not in shown
    assert "mh-secret-value" not in shown
    assert settings.magic_hour_api_key is not None
    assert settings.magic_hour_api_key.get_secret_value() == "mh-secret-value"


def test_budget_is_a_number_or_unlimited() -> None:
    """BOT_BUDGET_CREDITS takes a number or `unlimited`; unset stays unset (which `run` refuses)."""
    assert Settings(_env_file=None).bot_budget_credits is None  # type: ignore[call-arg]
    unlimited = Settings(_env_file=None, bot_budget_credits="Unlimited")  # type: ignore[call-arg, arg-type]
    assert unlimited.bot_budget_credits == "unlimited" and unlimited.budget_credits is None
    capped = Settings(_env_file=None, bot_budget_credits="5000")  # type: ignore[call-arg, arg-type]
    assert capped.budget_credits == 5000
    with pytest.raises(ValidationError):
        Settings(_env_file=None, bot_budget_credits="-1")  # type: ignore[call-arg, arg-type]
    with pytest.raises(ValidationError):
        Settings(_env_file=None, bot_budget_credits="lots")  # type: ignore[call-arg, arg-type]
