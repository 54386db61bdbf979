"""`/lipsync-admin`: server managers set limits, grant credits, choose modes and see usage.

The group asks Discord to show it only to members with Manage Server (`default_permissions`), but
a server's admins can override that per command, so every subcommand checks the permission again
when it runs.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import TYPE_CHECKING

import discord
from discord import app_commands
from discord.ext import commands

from bot import bounds
from bot.app import Refused
from bot.config import GenerationMode, Settings
from bot.errors import InvalidInput, NotAllowed
from bot.store import Store
from cogs import role_ids, texts
from cogs.manage._chart import CHART_MEMBERS, usage_files
from cogs.manage._member import MemberLimits, member_text
from cogs.manage._quota import allowance_role
from cogs.manage._texts import grant_text, settings_text, usage_text

if TYPE_CHECKING:
    pass

# Running jobs listed on a member's screen (a member runs at most a few at a time).
MAX_JOBS_SHOWN = 10

# Discord refuses numbers outside these before the bot sees them; the store checks them again.
Credits = app_commands.Range[int, 0, bounds.MAX_CREDITS]

# Subcommands that only show things: a member without the permission is told they can't *see* them.
READ_ONLY = frozenset({"usage", "settings", "member"})


def _guild_id(interaction: discord.Interaction) -> int:
    if interaction.guild_id is None:
        raise NotAllowed("no_guild")
    return interaction.guild_id


def _per(settings: Settings) -> str:
    return texts.per_window(settings.quota_window)


async def _names(guild: discord.Guild | None, members: Iterable[int | None]) -> dict[int | None, str]:
    """Display names of the chart's named members (the busiest, `CHART_MEMBERS`), for the chart and the CSV.

    The bot has no member list (no privileged intents), so each is read from Discord, at most
    `CHART_MEMBERS` reads per chart; other members, and members who left, are named by id.
    """
    names: dict[int | None, str] = {}
    if guild is None:
        return names
    for member_id in [m for m in members if m is not None][:CHART_MEMBERS]:
        found = guild.get_member(member_id)
        if found is None:
            try:
                found = await guild.fetch_member(member_id)
            except discord.HTTPException:
                continue
        names[member_id] = found.display_name
    return names


@app_commands.guild_only()
@app_commands.default_permissions(manage_guild=True)
class ManageCog(commands.GroupCog, group_name="lipsync-admin", group_description="Lip-sync limits and usage"):
    """Managers' commands: limits for the server, its roles and members, grants, modes and usage."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        super().__init__()

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Require Manage Server when the command runs, whatever the server's command overrides say."""
        if interaction.guild_id is None or not interaction.permissions.manage_guild:
            command = interaction.command
            read_only = command is not None and command.name in READ_ONLY
            raise Refused(NotAllowed("manage_only_view" if read_only else "manage_only"))
        return True

    async def _reply(self, interaction: discord.Interaction, text: str) -> None:
        await interaction.response.send_message(text, ephemeral=True, allowed_mentions=discord.AllowedMentions.none())

    @app_commands.command(name="member-limit", description="Set a member's own allowance (no credits: clear it)")
    @app_commands.describe(member="Whose allowance", credits="Credits per period; empty to remove their own limit")
    async def member_limit(
        self, interaction: discord.Interaction, member: discord.Member, credits: Credits | None = None
    ) -> None:
        """Give one member their own allowance per period, or remove it."""
        guild_id = _guild_id(interaction)
        if credits is None:
            cleared = await self.store.limits.clear_member_limit(guild_id, member.id)
            text = texts.describe("member_limit_cleared" if cleared else "member_limit_none", {"member": member.id})
        else:
            await self.store.limits.set_member_limit(guild_id, member.id, credits, by_user_id=interaction.user.id)
            text = texts.describe(
                "member_limit_set",
                {"member": member.id, "credits": credits, "per": _per(self.settings)},
            )
        await self._reply(interaction, text)

    @app_commands.command(name="role-limit", description="Set the allowance for a role (no credits: clear it)")
    @app_commands.describe(role="Which role", credits="Credits per period; empty to remove the role's limit")
    async def role_limit(
        self, interaction: discord.Interaction, role: discord.Role, credits: Credits | None = None
    ) -> None:
        """Give members with a role this allowance (a member gets their best role's), or remove it."""
        guild_id = _guild_id(interaction)
        if credits is None:
            cleared = await self.store.limits.clear_role_limit(guild_id, role.id)
            text = texts.describe("role_limit_cleared" if cleared else "role_limit_none", {"role": role.mention})
        else:
            await self.store.limits.set_role_limit(guild_id, role.id, credits, by_user_id=interaction.user.id)
            text = texts.describe(
                "role_limit_set",
                {"role": role.mention, "credits": credits, "per": _per(self.settings)},
            )
        await self._reply(interaction, text)

    @app_commands.command(name="server-limit", description="Set every member's default allowance here")
    @app_commands.describe(credits="Credits per member per period; empty for the bot's default")
    async def server_limit(self, interaction: discord.Interaction, credits: Credits | None = None) -> None:
        """Set the allowance members get unless a role or member limit applies."""
        await self.store.limits.set_server_default(_guild_id(interaction), credits)
        code = "server_limit_set" if credits is not None else "server_limit_default"
        value = credits if credits is not None else self.settings.default_member_credits
        await self._reply(interaction, texts.describe(code, {"credits": value, "per": _per(self.settings)}))

    @app_commands.command(name="server-pool", description="Cap what the whole server may use per period")
    @app_commands.describe(credits="Credits for all members together per period; empty for no cap")
    async def server_pool(self, interaction: discord.Interaction, credits: Credits | None = None) -> None:
        """Set (or remove) a cap on the whole server's use per period."""
        await self.store.limits.set_server_pool(_guild_id(interaction), credits)
        if credits is None:
            text = texts.describe("server_pool_cleared")
        else:
            text = texts.describe("server_pool_set", {"credits": credits, "per": _per(self.settings)})
        await self._reply(interaction, text)

    @app_commands.command(name="grant", description="Give a member extra credits for the current period")
    @app_commands.describe(member="Who gets them", credits="How many (negative takes back a grant)", note="Why")
    async def grant(
        self,
        interaction: discord.Interaction,
        member: discord.Member,
        credits: app_commands.Range[int, -bounds.MAX_CREDITS, bounds.MAX_CREDITS],
        note: app_commands.Range[str, 1, 200] | None = None,
    ) -> None:
        """Add credits to one member's allowance until the period resets, or take some back.

        Taking back takes at most what the member has not used or is not holding for a running
        job (`Balance.takeable`), so it never drives their balance below zero; the answer says
        what was really taken. Should a job be charged between that reading and the take-back,
        the store still takes no more than their allowance plus grants, and the answer says by
        how much they are now over.
        """
        if credits == 0:
            raise InvalidInput("zero_grant")
        guild_id = _guild_id(interaction)
        roles = role_ids(member)
        amount = credits
        if credits < 0:
            before = await self.store.usage.balance(guild_id, member.id, roles)
            amount = -before.take_back(-credits)
        entry = None
        if amount != 0:
            entry = await self.store.quota.grant(
                guild_id, member.id, amount, by_user_id=interaction.user.id, note=note, role_ids=roles
            )
        balance = await self.store.usage.balance(guild_id, member.id, roles)
        taken = entry.amount if entry is not None else None
        await self._reply(
            interaction,
            grant_text(member.id, credits, taken, balance, self.settings.quota_window),
        )

    @app_commands.command(name="member", description="One member's credits, limits, running jobs and grants")
    @app_commands.describe(member="Whose figures")
    async def member(self, interaction: discord.Interaction, member: discord.Member) -> None:
        """Show one member's balance (as they see it), the limits that apply, running jobs and grants."""
        guild_id = _guild_id(interaction)
        balance = await self.store.usage.balance(guild_id, member.id, role_ids(member))
        recent = await self.store.jobs.recent_for_member(guild_id, member.id, MAX_JOBS_SHOWN)
        limits = MemberLimits(
            guild=await self.store.limits.guild_settings(guild_id),
            ceiling=self.settings.server_credits_ceiling,
        )
        text = member_text(
            member.id,
            balance,
            limits,
            [job for job in recent if not job.terminal],
            self.settings.quota_window,
            role_id=await allowance_role(self.store, balance, member),
        )
        await self._reply(interaction, text)

    @app_commands.command(name="modes", description="Choose which generation modes members may use here")
    @app_commands.describe(lite="Allow lite", standard="Allow standard", pro="Allow pro (2 credits per frame)")
    async def modes(self, interaction: discord.Interaction, lite: bool, standard: bool, pro: bool) -> None:
        """Allow exactly the chosen modes in this server (only modes the bot offers: the store refuses others)."""
        chosen = [
            mode
            for mode, on in (
                (GenerationMode.LITE, lite),
                (GenerationMode.STANDARD, standard),
                (GenerationMode.PRO, pro),
            )
            if on
        ]
        if not chosen:
            raise InvalidInput("no_modes")
        await self.store.limits.set_allowed_modes(_guild_id(interaction), chosen)
        await self._reply(interaction, texts.describe("modes_set", {"modes": ", ".join(m.value for m in chosen)}))

    @app_commands.command(name="max-clip", description="Set the longest clip members may render here")
    @app_commands.describe(seconds="Longest clip in seconds; empty for the bot's maximum")
    async def max_clip(
        self,
        interaction: discord.Interaction,
        seconds: app_commands.Range[float, bounds.MIN_CLIP_SECONDS, bounds.MAX_CLIP_SECONDS] | None = None,
    ) -> None:
        """Limit the clip length (up to the bot's own maximum: the store refuses more)."""
        await self.store.limits.set_max_clip_seconds(_guild_id(interaction), seconds)
        code = "max_clip_set" if seconds is not None else "max_clip_default"
        value = seconds if seconds is not None else self.settings.max_clip_seconds
        await self._reply(interaction, texts.describe(code, {"seconds": value}))

    @app_commands.command(name="max-jobs", description="How many jobs one member may run at once here")
    @app_commands.describe(count="Jobs at a time; empty for the bot's default")
    async def max_jobs(
        self, interaction: discord.Interaction, count: app_commands.Range[int, 1, bounds.MAX_COUNT] | None = None
    ) -> None:
        """Set how many jobs one member may have running at the same time (up to the bot's own default)."""
        await self.store.limits.set_max_active_jobs(_guild_id(interaction), count)
        code = "max_jobs_set" if count is not None else "max_jobs_default"
        value = count if count is not None else self.settings.max_active_jobs_per_member
        await self._reply(interaction, texts.describe(code, {"count": value}))

    @app_commands.command(name="usage", description="Credits used in this server in the current period")
    async def usage(self, interaction: discord.Interaction) -> None:
        """Show this period's usage (totals, the pool's remainder, by member with grants, by mode, jobs to check).

        Attached: a chart of credits per UTC day by member with the pool's remainder, and the same
        figures as CSV. Drawing takes a moment, so the answer is deferred first.
        """
        guild_id = _guild_id(interaction)
        await interaction.response.defer(ephemeral=True, thinking=True)
        report = await self.store.quota.usage(guild_id)
        grants = await self.store.usage.grant_totals(guild_id, report.since, report.until)
        pool = await self.store.usage.pool_limit(guild_id)
        daily = await self.store.usage.daily(guild_id)
        labels = await _names(interaction.guild, daily.by_member)
        png, csv_bytes = await usage_files(daily, labels)
        window = self.settings.quota_window
        text = usage_text(report, grants=grants, pool_limit=pool, window=window, attached=True)
        stamp = daily.days[-1].isoformat()
        await interaction.edit_original_response(
            content=text,
            attachments=[
                discord.File(io.BytesIO(png), filename=f"lipsync-usage-{stamp}.png"),
                discord.File(io.BytesIO(csv_bytes), filename=f"lipsync-usage-{stamp}.csv"),
            ],
            allowed_mentions=discord.AllowedMentions.none(),
        )

    @app_commands.command(name="settings", description="Show the limits and modes that apply here")
    async def show_settings(self, interaction: discord.Interaction) -> None:
        """Show the server's own settings, with the bot's defaults for the rest."""
        guild_id = _guild_id(interaction)
        await self._reply(
            interaction,
            settings_text(
                await self.store.limits.guild_settings(guild_id),
                default_member_credits=self.settings.default_member_credits,
                allowed_modes=self.settings.allowed_modes,
                max_clip_seconds=self.settings.max_clip_seconds,
                max_active_jobs=self.settings.max_active_jobs_per_member,
                member_limits=await self.store.limits.member_limits(guild_id),
                role_limits=await self.store.limits.role_limits(guild_id),
                window=self.settings.quota_window,
            ),
        )
