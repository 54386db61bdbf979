"""The bot's one settings object, read from the environment and `.env`.

Built once in `bot.__main__` and passed down; nothing reads settings at import time.
Every field is documented in `.env.example`.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_BASE_URL = "https://api.magichour.ai"


class QuotaWindow(StrEnum):
    """How often members' allowances reset."""

    DAILY = "daily"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class GenerationMode(StrEnum):
    """Magic Hour lip-sync generation modes; `pro` costs twice as much per frame.

    What the bot knows of each mode is in `_MODE_FACTS` below, and nowhere else in the bot (the
    sandbox keeps its own table, to check the bot's); CONTRIBUTING.md lists what else a new mode needs.
    """

    LITE = "lite"
    STANDARD = "standard"
    PRO = "pro"

    @property
    def credits_per_frame(self) -> int:
        """Credits Magic Hour charges for each rendered frame in this mode."""
        return _MODE_FACTS[self][0]

    @property
    def needs_paid_plan(self) -> bool:
        """Whether Magic Hour refuses this mode on its Free plan."""
        return _MODE_FACTS[self][1]


# Per mode: (credits per rendered frame, needs a paid Magic Hour plan).
_MODE_FACTS: dict[GenerationMode, tuple[int, bool]] = {
    GenerationMode.LITE: (1, False),
    GenerationMode.STANDARD: (1, True),
    GenerationMode.PRO: (2, True),
}


class Settings(BaseSettings):
    """Everything an operator can configure. Secrets are `SecretStr` and never printed."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", env_ignore_empty=True)

    # Secrets
    discord_token: SecretStr | None = None
    magic_hour_api_key: SecretStr | None = None

    # Where things live
    magic_hour_base_url: str = DEFAULT_BASE_URL
    database_path: Path = Path("data/lipsync-bot.sqlite3")
    # PostgreSQL instead of the SQLite file, for several processes: postgresql://user:password@host/db
    database_url: SecretStr | None = None
    work_dir: Path = Path("data/work")
    # How long a process's claim on a job holds unless renewed; a dead process's jobs wait this long.
    job_lease_seconds: float = Field(default=30.0, ge=3)

    # Discord
    dev_guild_id: int | None = None
    allowed_guild_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # Against the real API an empty ALLOWED_GUILD_IDS stops `run`, unless the operator accepts that
    # any server that invites the bot may spend their credits.
    allow_any_server: bool = False
    log_level: str = "INFO"
    discord_log_level: str = "WARNING"
    # Discord sharding: the total number of shards, and which of them this process runs. Unset:
    # one process, with as many shards as Discord recommends.
    shard_count: int | None = Field(default=None, ge=1)
    shard_ids: Annotated[list[int], NoDecode] = Field(default_factory=list)
    # "text" (one readable line per record) or "json" (one JSON object per line, for log shippers).
    log_format: Literal["text", "json"] = "text"

    # Job limits
    max_clip_seconds: float = Field(default=60.0, gt=0)
    max_input_bytes: int = Field(default=200_000_000, gt=0)  # 200 MB, Magic Hour's Free plan limit
    default_max_fps: float = Field(default=30.0, ge=1)
    allowed_modes: Annotated[list[GenerationMode], NoDecode] = Field(default_factory=lambda: list(GenerationMode))
    max_jobs_in_flight: int = Field(default=4, ge=1)
    max_concurrent_transfers: int = Field(default=4, ge=1)
    max_active_jobs_per_member: int = Field(default=1, ge=1)
    job_deadline_minutes: float = Field(default=60.0, gt=0)
    # How long a rendered (paid) result's download and delivery are retried before a link is sent.
    delivery_retry_minutes: float = Field(default=60.0, ge=0)
    # Each member's file is probed in a child process with this much address space and time; a
    # file that needs more is refused (free). The defaults fit 4K phone videos.
    probe_memory_mib: int = Field(default=384, ge=64)
    probe_timeout_seconds: float = Field(default=30.0, gt=0)

    # Polling
    poll_initial_seconds: float = Field(default=5.0, gt=0)
    poll_max_seconds: float = Field(default=20.0, gt=0)
    # Poll near each render's forecast finish, learnt from the bot's own finished renders.
    poll_forecast: bool = True
    forecast_min_renders: int = Field(default=5, ge=2)

    # Metrics and health (optional): Prometheus metrics on /metrics and /healthz, on this port.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"

    # Webhooks (optional): Magic Hour tells the bot when a render ends, so it needn't wait for a poll.
    webhook_secret: SecretStr | None = None
    # Loopback by default: put a TLS proxy in front (docs/operators.md), or set 0.0.0.0 on purpose.
    webhook_host: str = "127.0.0.1"
    webhook_port: int | None = Field(default=None, ge=0, le=65535)
    webhook_path: str = "/magic-hour/webhook"

    @property
    def webhooks_enabled(self) -> bool:
        """Webhooks are received only with both a port and a signing secret."""
        return self.webhook_port is not None and self.webhook_secret is not None

    # Quota
    quota_window: QuotaWindow = QuotaWindow.DAILY
    quota_reset_time: dt.time = dt.time(0, 0)
    default_member_credits: int = Field(default=600, ge=0)
    # What a `render --sandbox` trial may spend per window, in the trial's own database (no Magic
    # Hour credits): generous, so trying things out doesn't run dry after a few clips.
    trial_credits: int = Field(default=100_000, ge=0)
    # Credits per window across every server. Against the real API it must be set: a number, or
    # "unlimited" when the operator accepts no cap.
    bot_budget_credits: int | Literal["unlimited"] | None = None
    # The most any one server's managers can set or grant, and what any server can spend per window.
    server_credits_ceiling: int | None = Field(default=None, ge=0)

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: SecretStr | None) -> SecretStr | None:
        # The URL holds a password: the messages below say what is wrong, never what was written.
        if value is None:
            return value
        url = urllib.parse.urlsplit(value.get_secret_value())
        if url.scheme not in ("postgresql", "postgres"):
            raise ValueError("DATABASE_URL must be a postgresql:// URL (leave it empty for SQLite)")
        try:
            url.port  # noqa: B018 - parsing it is the check
        except ValueError:
            raise ValueError("DATABASE_URL's port must be a number from 0 to 65535") from None
        return value

    @model_validator(mode="after")
    def _shards(self) -> Settings:
        if self.shard_ids and self.shard_count is None:
            raise ValueError("SHARD_IDS needs SHARD_COUNT (the total number of shards across every process)")
        if self.shard_count is not None and any(not 0 <= i < self.shard_count for i in self.shard_ids):
            raise ValueError("SHARD_IDS must each be between 0 and SHARD_COUNT - 1")
        if len(set(self.shard_ids)) != len(self.shard_ids):
            raise ValueError("SHARD_IDS lists a shard twice")
        return self

    @property
    def database(self) -> Path | str:
        """Where the store lives: the PostgreSQL URL if set, else the SQLite file."""
        return self.database_url.get_secret_value() if self.database_url is not None else self.database_path

    @field_validator("log_format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("allowed_guild_ids", "allowed_modes", "shard_ids", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        # Lets operators write `ALLOWED_GUILD_IDS=1,2,3` instead of JSON.
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, int):
            return [value]
        return value

    @field_validator("bot_budget_credits", mode="before")
    @classmethod
    def _budget_words(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() == "unlimited":
            return "unlimited"
        return value

    @field_validator("bot_budget_credits")
    @classmethod
    def _budget_not_negative(cls, value: int | str | None) -> int | str | None:
        if isinstance(value, int) and value < 0:
            raise ValueError("BOT_BUDGET_CREDITS must be 0 or more, or 'unlimited'")
        return value

    def without_secrets(self, text: str) -> str:
        """`text` with every secret setting's value (and the database URL's password) hidden."""
        held = (self.discord_token, self.magic_hour_api_key, self.webhook_secret)
        secrets = [value.get_secret_value() for value in held if value is not None]
        if self.database_url is not None:
            url = self.database_url.get_secret_value()
            password = urllib.parse.urlsplit(url).password
            secrets += [url, *([password, urllib.parse.unquote(password)] if password else [])]
        for secret in sorted(filter(None, secrets), key=len, reverse=True):
            text = text.replace(secret, "[hidden]")
        return text

    @property
    def budget_credits(self) -> int | None:
        """The bot-wide budget per window; None when unlimited (or not set)."""
        return None if self.bot_budget_credits in (None, "unlimited") else int(self.bot_budget_credits)


def env_file_path() -> Path:
    """The `.env` file `Settings` reads: the one in the folder the program runs in."""
    return Path.cwd() / str(Settings.model_config.get("env_file") or ".env")


def settings_problems(error: ValidationError) -> list[str]:
    """One line per invalid setting, named as the operator writes it (`DATABASE_URL: ...`).

    Never the value: pydantic's own text quotes it (`input_value='pg://user:password@...'`), and a
    mistyped secret is still a secret.
    """
    lines = []
    for problem in error.errors(include_url=False, include_context=False, include_input=False):
        message = problem["msg"].removeprefix("Value error, ")
        if not problem["loc"]:  # a rule across settings: its message names them
            lines.append(message)
            continue
        field, *within = problem["loc"]
        name = str(field).upper() + "".join(f" (item {part + 1})" for part in within if isinstance(part, int))
        lines.append(f"{name}: {message}")
    return lines
