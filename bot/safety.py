"""Safe defaults for real money: what must be settled before the bot spends Magic Hour credits.

Any server that invites a public bot gets managers who could give themselves any allowance, and
nothing else caps what the bot spends. So against anything but the sandbox, `run` refuses to start
until the operator has said which servers may use it (or that any may) and what the bot may spend
per window (or that it may spend without limit); `check` reports the same. The sandbox is known
for certain, never guessed from a URL: the operator said `--sandbox`, or the server identified
itself as the sandbox.
"""

from __future__ import annotations

from bot.config import Settings
from bot.magichour import MagicHourClient, MagicHourError


def money_risks(settings: Settings) -> list[str]:
    """What the operator hasn't decided yet that real money depends on, in words for the operator."""
    risks: list[str] = []
    if not settings.allowed_guild_ids and not settings.allow_any_server:
        risks.append(
            "ALLOWED_GUILD_IDS is empty, so any server that invites the bot could spend your Magic Hour "
            "credits. List your server ids, or set ALLOW_ANY_SERVER=true to accept that."
        )
    if settings.bot_budget_credits is None:
        risks.append(
            "BOT_BUDGET_CREDITS is not set, so nothing caps what the bot spends per quota window. Set a "
            "number of credits, or BOT_BUDGET_CREDITS=unlimited to accept that."
        )
    return risks


async def is_sandbox(settings: Settings) -> bool:
    """True only when the configured API says it is the sandbox (False if it can't be asked)."""
    if settings.magic_hour_api_key is None:
        return False
    try:
        async with MagicHourClient(settings.magic_hour_api_key, settings.magic_hour_base_url) as client:
            return (await client.get_account()).sandbox
    except MagicHourError:
        return False
