"""`lipsync-bot check`: say exactly what is missing or wrong before the bot is started."""

from __future__ import annotations

import os
import urllib.parse
from dataclasses import dataclass

import httpx
from rich.console import Console

from bot.config import GenerationMode, Settings, env_file_path
from bot.magichour import MagicHourClient, MagicHourError, Unauthorized
from bot.safety import is_sandbox, money_risks
from bot.store import QuotaPolicy, Store
from bot.testmedia import ffmpeg_exe

DISCORD_API = "https://discord.com/api/v10"


@dataclass(frozen=True)
class CheckResult:
    """One line of the report."""

    name: str
    ok: bool
    detail: str


async def _check_discord(settings: Settings) -> CheckResult:
    if settings.discord_token is None:
        return CheckResult("Discord token", False, "DISCORD_TOKEN is not set (Developer Portal → Bot → Reset Token).")
    token = settings.discord_token.get_secret_value()
    if token.count(".") != 2:
        return CheckResult("Discord token", False, "DISCORD_TOKEN doesn't look like a bot token (three parts).")
    try:
        async with httpx.AsyncClient(timeout=10.0) as http:
            response = await http.get(f"{DISCORD_API}/users/@me", headers={"Authorization": f"Bot {token}"})
    except httpx.HTTPError as exc:
        return CheckResult("Discord token", False, f"Discord is unreachable ({type(exc).__name__}).")
    if response.status_code == httpx.codes.UNAUTHORIZED:
        return CheckResult("Discord token", False, "Discord rejected DISCORD_TOKEN: reset it in the Developer Portal.")
    if response.status_code != httpx.codes.OK:
        return CheckResult("Discord token", False, f"Discord answered HTTP {response.status_code}.")
    return CheckResult("Discord token", True, f"logs in as {response.json().get('username', '?')}")


async def _check_magic_hour(settings: Settings) -> list[CheckResult]:
    if settings.magic_hour_api_key is None:
        return [CheckResult("Magic Hour key", False, "MAGIC_HOUR_API_KEY is not set (magichour.ai → Developer Hub).")]
    try:
        async with MagicHourClient(settings.magic_hour_api_key, settings.magic_hour_base_url) as client:
            account = await client.get_account()
    except Unauthorized:
        return [CheckResult("Magic Hour key", False, "Magic Hour rejected MAGIC_HOUR_API_KEY.")]
    except MagicHourError as exc:
        return [CheckResult("Magic Hour", False, f"{settings.magic_hour_base_url} failed: {exc.user_message}")]
    results = [CheckResult("Magic Hour", True, f"{account.credits} credits, {account.tier} tier")]
    paid_modes = {mode for mode in settings.allowed_modes if mode.needs_paid_plan}
    if account.tier == "free" and paid_modes:
        names = ", ".join(sorted(m.value for m in paid_modes))
        free = ",".join(m.value for m in GenerationMode if not m.needs_paid_plan)
        results.append(
            CheckResult("Modes", False, f"{names} need a Creator plan or better; set ALLOWED_MODES={free} or upgrade.")
        )
    return results


async def _check_database(settings: Settings) -> CheckResult:
    # A PostgreSQL URL may hold a password: only its host and database name are ever shown.
    where = str(settings.database_path) if settings.database_url is None else _postgres_place(settings)
    try:
        if settings.database_url is None:
            settings.database_path.parent.mkdir(parents=True, exist_ok=True)
        async with await Store.open(settings.database, policy=QuotaPolicy.from_settings(settings)) as store:
            problems = await store.check_invariants()
    except Exception as exc:
        # A driver's message may quote the URL it was given; the password never reaches the screen.
        return CheckResult("Database", False, settings.without_secrets(f"{where}: {exc}"))
    if problems:
        return CheckResult("Database", False, "; ".join(problems[:3]))
    return CheckResult("Database", True, where)


def _postgres_place(settings: Settings) -> str:
    assert settings.database_url is not None
    url = urllib.parse.urlsplit(settings.database_url.get_secret_value())
    return f"PostgreSQL {url.hostname or 'local socket'}{url.path}"


async def _check_spending(settings: Settings) -> list[CheckResult]:
    """The safe defaults for real money (`bot.safety`); the sandbox, known for certain, is exempt."""
    if await is_sandbox(settings):
        return [CheckResult("Spending", True, "the API is the sandbox: no real credits are spent")]
    risks = money_risks(settings)
    if risks:
        return [CheckResult("Spending", False, risk) for risk in risks]
    servers = (
        f"restricted to {len(settings.allowed_guild_ids)} server(s)"
        if settings.allowed_guild_ids
        else "any server may use the bot (ALLOW_ANY_SERVER=true)"
    )
    budget = settings.budget_credits
    cap = f"budget {budget:,} credits per window" if budget is not None else "no budget cap (unlimited)"
    ceiling = settings.server_credits_ceiling
    per_server = f", at most {ceiling:,} per server" if ceiling is not None else ""
    return [CheckResult("Spending", True, f"{servers}; {cap}{per_server}")]


def _settings_file() -> CheckResult:
    """Where the settings were read from: the environment, then the `.env` of the working folder."""
    found = env_file_path()
    if found.is_file():
        return CheckResult("Settings", True, f"the environment, then {found}")
    return CheckResult("Settings", True, f"the environment only: there is no {found} (copy .env.example there)")


def _check_ffmpeg() -> CheckResult:
    try:
        exe = ffmpeg_exe()
    except Exception as exc:
        return CheckResult("ffmpeg", False, f"not available: {exc}")
    return CheckResult("ffmpeg", os.access(exe, os.X_OK), exe)


async def run_checks(settings: Settings, console: Console) -> int:
    """Print one line per check; exit code 0 only when everything passed."""
    results = [_settings_file(), await _check_discord(settings), *await _check_magic_hour(settings)]
    results += [await _check_database(settings), _check_ffmpeg()]
    if settings.webhooks_enabled:
        results.append(
            CheckResult("Webhooks", True, f"listening on port {settings.webhook_port}{settings.webhook_path}")
        )
    else:
        results.append(CheckResult("Webhooks", True, "off: finished renders are found by polling"))
    results += await _check_spending(settings)
    for result in results:
        mark = "[green]ok[/green]  " if result.ok else "[red]FAIL[/red]"
        console.print(f"{mark} {result.name}: {result.detail}")
    return 0 if all(r.ok for r in results) else 1
