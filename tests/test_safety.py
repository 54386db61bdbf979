"""Safe defaults for real money: `run` and `check` against an endpoint that isn't the sandbox."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from bot.checks import _check_spending
from bot.config import Settings
from bot.safety import is_sandbox, money_risks
from bot.sandbox import Sandbox
from tests.conftest import SANDBOX_KEY, make_settings
from tests.test_cli import acli


def _settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg, arg-type]


def test_open_defaults_are_risks_until_the_operator_decides() -> None:
    """No server list and no budget are each a risk; saying "any server" and "unlimited" accepts them."""
    risks = money_risks(_settings())
    assert len(risks) == 2
    assert "ALLOWED_GUILD_IDS" in risks[0] and "ALLOW_ANY_SERVER=true" in risks[0]
    assert "BOT_BUDGET_CREDITS" in risks[1] and "unlimited" in risks[1]
    assert money_risks(_settings(allowed_guild_ids="1,2", bot_budget_credits=5000)) == []
    assert money_risks(_settings(allow_any_server=True, bot_budget_credits="unlimited")) == []


async def test_the_sandbox_is_known_only_when_it_says_so(tmp_path: Path, sandbox: Sandbox) -> None:
    """`is_sandbox` asks the endpoint; a stand-in that doesn't identify itself is real money."""
    settings = make_settings(tmp_path, sandbox.base_url)
    assert await is_sandbox(settings)
    sandbox.config.identify = False
    assert not await is_sandbox(settings)
    assert not await is_sandbox(make_settings(tmp_path, "http://127.0.0.1:9"))  # nothing answers there


async def test_check_fails_on_open_defaults_against_real_money(tmp_path: Path, sandbox: Sandbox) -> None:
    """`check` reports each risk as a failure, except against the sandbox, which is exempt."""
    settings = make_settings(tmp_path, sandbox.base_url)
    [exempt] = await _check_spending(settings)
    assert exempt.ok and "sandbox" in exempt.detail
    sandbox.config.identify = False
    results = await _check_spending(settings)
    assert [r.ok for r in results] == [False, False]
    decided = make_settings(
        tmp_path, sandbox.base_url, allowed_guild_ids=[1], bot_budget_credits=20_000, server_credits_ceiling=5000
    )
    [fine] = await _check_spending(decided)
    assert (
        fine.ok
        and fine.detail == "restricted to 1 server(s); budget 20,000 credits per window, at most 5,000 per server"
    )


async def test_run_refuses_to_start_against_real_money_with_open_defaults(tmp_path: Path, sandbox: Sandbox) -> None:
    """`lipsync-bot run` stops before connecting to Discord, and says what to set."""
    sandbox.config.identify = False  # a proxy or another endpoint of the real API
    code, out = await acli(
        ["run"],
        cwd=tmp_path,
        DISCORD_TOKEN="x.y.z",
        MAGIC_HOUR_API_KEY=SANDBOX_KEY,
        MAGIC_HOUR_BASE_URL=sandbox.base_url,
    )
    assert code == 2, out
    assert "Not starting against real Magic Hour credits" in out
    assert "ALLOWED_GUILD_IDS is empty" in out and "BOT_BUDGET_CREDITS is not set" in out
    assert SecretStr(SANDBOX_KEY).get_secret_value() not in out
