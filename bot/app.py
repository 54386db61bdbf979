"""The Discord bot: its class, command tree, cogs, restart-proof buttons and command sync.

`create_bot(settings)` builds an `AutoShardedBot` (all recommended shards in one process, or
`SHARD_COUNT`/`SHARD_IDS` across several). Nothing connects until `login`, whose `setup_hook`
opens the `Services`, loads the cogs from `EXTENSIONS` (named only by extension name: the Discord
layer depends on the core, not the other way round) and resumes unfinished jobs. Commands are
synced only on request (`sync_commands`, `lipsync-bot run --sync`): Discord allows 200 command
creates a day per server.
"""

from __future__ import annotations

import asyncio
import logging
from typing import cast

import discord
from discord import app_commands
from discord.ext import commands

from bot import words
from bot.clock import Clock
from bot.config import Settings
from bot.errors import LipsyncError, NotAllowed
from bot.jobs.fetch import DISCORD_CDN, FetchPolicy
from bot.jobs.models import HooksFactory
from bot.services import Services

log = logging.getLogger(__name__)

# Loaded in this order by `setup_hook`; each module's `setup` builds its cog from the services.
EXTENSIONS: tuple[str, ...] = ("cogs.lipsync", "cogs.manage")


class Refused(app_commands.CheckFailure):
    """A check refused with an error for the member (the server allow-list, Manage Server)."""

    def __init__(self, error: LipsyncError) -> None:
        super().__init__(error.code)
        self.error = error


class LipsyncTree(app_commands.CommandTree["LipsyncBot"]):
    """The command tree: speaks the member's language, refuses servers off the allow-list.

    `cogs.errors` sets its error handler.
    """

    async def interaction_check(self, interaction: discord.Interaction[LipsyncBot], /) -> bool:
        """Answer in the member's language; refuse commands in servers the operator hasn't allowed.

        Every command (slash or menu) runs in a task of its own that starts here, so the language
        set here is the reader's for all of the command and its error handler.
        """
        words.use(words.language_for(interaction.locale.value))
        if interaction.guild_id is not None and not self.client.guild_allowed(interaction.guild_id):
            raise Refused(NotAllowed("guild_not_allowed"))
        return True


class LipsyncBot(commands.AutoShardedBot):
    """The lip-sync bot: slash commands only, so no privileged intents and no prefix."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        status_interval: float | None = None,
        sandbox: bool = False,
        fetch_policy: FetchPolicy = DISCORD_CDN,
    ) -> None:
        # Guilds is the only intent needed: channels, roles and upload limits come from its cache.
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=discord.Intents(guilds=True),
            tree_cls=LipsyncTree,
            allowed_mentions=discord.AllowedMentions.none(),
            help_command=None,
            shard_count=settings.shard_count,  # None: as many as Discord recommends
            # Without SHARD_IDS, every shard of shard_count: discord.py's default, None (its stub says list).
            shard_ids=list(settings.shard_ids) or cast("list[int]", None),
        )
        self.settings = settings
        self.sandbox = sandbox
        self._fetch_policy = fetch_policy
        # How often a status message may be edited; None leaves it to the Discord layer's default,
        # 0 edits at once, without the bot-wide pace either (tests read every update as it comes).
        self.status_interval = status_interval
        # Set by the cog that presents jobs: rebuilds a resumed job's status message and poster.
        self.hooks_factory: HooksFactory | None = None
        self._clock = clock
        self._services: Services | None = None
        self._resume_task: asyncio.Task[None] | None = None
        self._gateway_up = False  # connected to Discord's gateway (the health check asks)

    @property
    def gateway_connected(self) -> bool:
        """True while the gateway connection is up (between connect/resume and a disconnect)."""
        return self._gateway_up and not self.is_closed()

    @property
    def services(self) -> Services:
        """The engine, store and clients, open from `setup_hook` until `close`."""
        if self._services is None:
            raise RuntimeError("services are not open yet: they open in setup_hook")
        return self._services

    def guild_allowed(self, guild_id: int) -> bool:
        """True unless the operator restricted the bot to other servers."""
        allowed = self.settings.allowed_guild_ids
        return not allowed or guild_id in allowed

    async def setup_hook(self) -> None:
        """Open services, load cogs (they register buttons and handlers), and start resuming jobs."""
        self._services = await Services.open(
            self.settings, clock=self._clock, sandbox=self.sandbox, fetch_policy=self._fetch_policy
        )
        self._services.health.watch_gateway(lambda: self.gateway_connected)
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        self._resume_task = asyncio.create_task(self._resume_jobs(), name="resume-jobs")

    async def _resume_jobs(self) -> None:
        # After READY, so that resumed jobs find their guilds (upload limits) in the cache, and so
        # that a job failed at once for lack of a submission can post its status straight away.
        await self.wait_until_ready()
        if self.hooks_factory is None:
            log.error("no cog presents jobs, so unfinished jobs can't be resumed")
            return
        try:
            # Jobs from the terminal (no server) are the terminal's: `lipsync-bot resume` takes them.
            # Then keep this process's job leases, and take over jobs of processes that died.
            resumed = await self.services.engine.start_leases(
                self.hooks_factory, where=lambda job: job.guild_id is not None
            )
        except Exception:
            log.exception("could not resume unfinished jobs")
            return
        if resumed:
            log.info("resumed %d unfinished job(s): %s", len(resumed), ", ".join(f"#{job.id}" for job in resumed))

    async def on_connect(self) -> None:
        """The gateway connected (the health check reports it)."""
        self._gateway_up = True

    async def on_resumed(self) -> None:
        """The gateway session resumed after a drop."""
        self._gateway_up = True

    async def on_disconnect(self) -> None:
        """The gateway dropped; discord.py reconnects by itself."""
        self._gateway_up = False

    async def on_ready(self) -> None:
        """Leave servers that were joined while the bot was offline and aren't allowed."""
        log.info("logged in as %s in %d server(s)", self.user, len(self.guilds))
        for guild in self.guilds:
            await self._leave_if_not_allowed(guild)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """Anyone can invite a bot, and every server spends the operator's credits: check the list."""
        await self._leave_if_not_allowed(guild)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """A server coming back after an outage (or a join, as some gateways report it): check it too."""
        await self._leave_if_not_allowed(guild)

    async def _leave_if_not_allowed(self, guild: discord.Guild) -> None:
        if self.guild_allowed(guild.id):
            return
        log.warning("leaving server %s (%s): not in ALLOWED_GUILD_IDS", guild.id, guild.name)
        try:
            await guild.leave()
        except discord.HTTPException as exc:
            log.warning("could not leave server %s: %s", guild.id, exc)

    async def close(self) -> None:
        """Stop the engine (unfinished jobs stay resumable), then disconnect."""
        if self._resume_task is not None:
            self._resume_task.cancel()
        if self._services is not None:
            services, self._services = self._services, None
            await services.aclose()
        await super().close()


def create_bot(
    settings: Settings, *, clock: Clock | None = None, sandbox: bool = False, fetch_policy: FetchPolicy = DISCORD_CDN
) -> LipsyncBot:
    """Build the bot from settings.

    `clock` replaces the system clock and `fetch_policy` Discord's CDN (tests); `sandbox` is `--sandbox`.
    """
    return LipsyncBot(settings, clock=clock, sandbox=sandbox, fetch_policy=fetch_policy)


async def sync_commands(
    bot: commands.Bot | commands.AutoShardedBot, guild_id: int | None
) -> list[app_commands.AppCommand]:
    """Publish the slash commands: to one server (instantly, for development) or globally.

    Call it deliberately (`lipsync-bot run --sync`), never on every start: command creates are
    rate limited per day. The bot must be logged in (so that `setup_hook` has added the cogs).
    """
    if guild_id is None:
        synced = await bot.tree.sync()
    else:
        guild = discord.Object(id=guild_id)
        bot.tree.copy_global_to(guild=guild)
        synced = await bot.tree.sync(guild=guild)
    log.info("synced %d command(s) %s", len(synced), f"to server {guild_id}" if guild_id else "globally")
    # Their ids are new: the Discord layer writes command hints as mentions with them.
    bot.dispatch("commands_synced", synced)
    return synced
