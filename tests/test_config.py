"""Settings: defaults, `.env.example`, list parsing and secret handling."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from bot.__main__ import main
from bot.config import GenerationMode, QuotaWindow, Settings, settings_problems

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


@pytest.mark.parametrize("command", ["check", "run"])
def test_a_mistyped_database_url_never_prints_its_password(
    command: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """`pg://` for `postgresql://` is a common slip: the error names the setting, never its value."""
    monkeypatch.chdir(tmp_path)  # no `.env` here
    for value in ("pg://user:hunter2@host/db", "postgresql://user:hunter2@host:5432x/db"):
        monkeypatch.setenv("DATABASE_URL", value)
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert "DATABASE_URL" in err and "hunter2" not in err and "user" not in err, err


MARKER = "§hunter2§"


@pytest.mark.parametrize("name", sorted(Settings.model_fields))
def test_no_setting_is_quoted_in_an_error_about_it(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every setting given a value it refuses: the words name the setting and never the value."""
    monkeypatch.setenv(name.upper(), f"1,{MARKER}" if name.endswith("_ids") else MARKER)
    try:
        Settings(_env_file=None)  # type: ignore[call-arg]
    except ValidationError as exc:
        problems = "\n".join(settings_problems(exc))
        assert name.upper() in problems and MARKER not in problems and "hunter2" not in problems, problems
    except SettingsError as exc:
        assert MARKER not in str(exc)


def test_driver_messages_lose_the_secrets() -> None:
    """What `check` prints of a database driver's error: the URL's password hidden, however quoted."""
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None,
        database_url=SecretStr("postgresql://lipsync:p%40ss@db:5432/lipsync"),
        discord_token=SecretStr("a.b.c"),
    )
    text = "cannot connect to postgresql://lipsync:p%40ss@db:5432/lipsync (password p@ss) with a.b.c"
    hidden = settings.without_secrets(text)
    assert "p%40ss" not in hidden and "p@ss" not in hidden and "a.b.c" not in hidden
    assert hidden == "cannot connect to [hidden] (password [hidden]) with [hidden]"
