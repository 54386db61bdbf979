"""`bot.app`: the discord import boundary, the bot's shape, command sync and the server allow-list."""

from __future__ import annotations

import ast
from collections.abc import AsyncIterator
from pathlib import Path

import discord
import pytest
import simcord
from discord import app_commands
from discord.ext import commands
from pydantic import ValidationError

from bot.app import EXTENSIONS, LipsyncBot, LipsyncTree, create_bot, sync_commands
from tests.cogs.conftest import expected_error
from tests.conftest import make_settings

ROOT = Path(__file__).resolve().parents[1]
ALLOWED_TO_IMPORT_DISCORD = {"bot/app.py", "bot/__main__.py"}
UNREACHABLE_API = "http://127.0.0.1:9"  # nothing here talks to Magic Hour
ALLOWED_GUILD = 1_111_111_111_111_111_111


def discord_imports(source: str) -> list[int]:
    """Line numbers of every import of `discord` or a submodule, at any depth (functions too)."""
    lines = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        if any(name == "discord" or name.startswith("discord.") for name in names):
            lines.append(node.lineno)
    return lines


def test_only_the_discord_layer_imports_discord() -> None:
    """The engine, store, client and sandbox never import discord: they stay usable and testable alone."""
    offenders = []
    for path in sorted((ROOT / "bot").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ALLOWED_TO_IMPORT_DISCORD:
            continue
        offenders += [f"{rel}:{line}" for line in discord_imports(path.read_text())]
    assert offenders == []


def test_the_boundary_check_sees_every_form_of_import() -> None:
    """`import discord`, `from discord...`, aliases, and imports inside functions all count."""
    source = "import os, discord as d\nfrom discord.ext import commands\ndef f():\n    import discord.ui\n"
    assert discord_imports(source) == [1, 2, 4]
    assert discord_imports("from discordant import x\nimport discordlike\n") == []


def test_create_bot_needs_only_the_guilds_intent(tmp_path: Path) -> None:
    """Slash commands need no privileged intent; the command tree is the project's own."""
    bot = create_bot(make_settings(tmp_path, UNREACHABLE_API))
    assert isinstance(bot, LipsyncBot) and isinstance(bot.tree, LipsyncTree)
    assert bot.intents.value == discord.Intents(guilds=True).value
    assert not bot.intents.message_content and not bot.intents.members
    assert bot.allowed_mentions is not None and bot.allowed_mentions.everyone is False
    assert EXTENSIONS == ("cogs.lipsync", "cogs.manage")


def test_one_process_shards_automatically_by_default(tmp_path: Path) -> None:
    """Without SHARD_COUNT the bot is an AutoShardedBot that asks Discord how many shards to run."""
    bot = create_bot(make_settings(tmp_path, UNREACHABLE_API))
    assert isinstance(bot, commands.AutoShardedBot)
    assert getattr(bot, "shard_count", 0) is None and getattr(bot, "shard_ids", 0) is None


async def test_a_process_runs_the_shards_it_is_given(tmp_path: Path, engine_outside_simcord: None) -> None:
    """SHARD_COUNT=4 and SHARD_IDS=1,3: this process connects shards 1 and 3 of 4, and serves their servers."""
    settings = make_settings(tmp_path, UNREACHABLE_API, shard_count=4, shard_ids="1,3")
    bot = create_bot(settings)
    assert (bot.shard_count, bot.shard_ids) == (4, [1, 3])
    env = simcord.Env(bot)
    await env.start()
    try:
        assert sorted(bot.shards) == [1, 3]
    finally:
        await bot.close()
        await env.shutdown()


def test_shard_settings_are_checked(tmp_path: Path) -> None:
    """SHARD_IDS needs SHARD_COUNT, and each id must be one of its shards."""
    with pytest.raises(ValidationError, match="SHARD_IDS needs SHARD_COUNT"):
        make_settings(tmp_path, UNREACHABLE_API, shard_ids="0")
    with pytest.raises(ValidationError, match="between 0 and SHARD_COUNT - 1"):
        make_settings(tmp_path, UNREACHABLE_API, shard_count=2, shard_ids="2")


@pytest.fixture
async def running(tmp_path: Path, engine_outside_simcord: None) -> AsyncIterator[tuple[simcord.Env, LipsyncBot]]:
    """The real bot in simcord, allowed in the server with id `ALLOWED_GUILD` only."""
    bot = create_bot(make_settings(tmp_path, UNREACHABLE_API, allowed_guild_ids=[ALLOWED_GUILD]))
    env = simcord.Env(bot, shard_count=1)  # unset SHARD_COUNT: Discord's recommendation, one here
    await env.start()
    try:
        yield env, bot
    finally:
        await bot.close()
        await env.shutdown()
    assert [error for error in env.errors if not expected_error(error)] == []


async def test_every_command_is_documented(running: tuple[simcord.Env, LipsyncBot]) -> None:
    """Each command and subcommand has a description and a docstring, and runs only in servers."""
    _, bot = running
    commands = bot.tree.get_commands()
    assert sorted(c.name for c in commands) == [
        "Lip-sync: use this video",
        "Lip-sync: use this voice",
        "cancel",
        "forget-me",
        "jobs",
        "lipsync",
        "lipsync-admin",
        "lipsync-settings",
        "lipsync-status",
        "queue",
        "quota",
    ]
    for walked in bot.tree.walk_commands():
        assert walked.description and walked.description != "…", walked.qualified_name
        if isinstance(walked, app_commands.Command):
            assert walked.callback.__doc__, walked.qualified_name
    for command in commands:
        if isinstance(command, app_commands.ContextMenu):  # the message menus: their callbacks say what they do
            assert command.type is discord.AppCommandType.message and command.callback.__doc__, command.name
        assert command.guild_only, command.name
        assert len(command.name) <= 32


async def test_sync_to_one_dev_server(running: tuple[simcord.Env, LipsyncBot]) -> None:
    """With a dev guild, commands are published to that server only (instant, no global quota)."""
    env, bot = running
    guild = env.create_guild("Dev", id=ALLOWED_GUILD)
    synced = await sync_commands(bot, guild.id)
    assert sorted(c.name for c in synced) == [
        "Lip-sync: use this video",
        "Lip-sync: use this voice",
        "cancel",
        "forget-me",
        "jobs",
        "lipsync",
        "lipsync-admin",
        "lipsync-settings",
        "lipsync-status",
        "queue",
        "quota",
    ]
    assert await bot.tree.fetch_commands() == []
    assert len(await bot.tree.fetch_commands(guild=discord.Object(id=guild.id))) == 11


async def test_allow_list_leaves_other_servers_and_refuses_commands(running: tuple[simcord.Env, LipsyncBot]) -> None:
    """Invited elsewhere, the bot leaves; in an allowed server it answers; commands check the list too."""
    env, bot = running
    await sync_commands(bot, None)
    allowed = env.create_guild("Allowed", id=ALLOWED_GUILD)
    other = env.create_guild("Somewhere else")
    await env.settle()
    assert bot.get_guild(allowed.id) is not None
    assert bot.get_guild(other.id) is None  # it left

    channel = allowed.create_text_channel("general")
    alice = allowed.add_member(env.create_user("alice"))
    ok = await alice.slash(channel, "jobs")
    assert ok.response is not None and "haven't started any" in ok.response.content
    # Between an operator's change and the bot leaving, commands are refused.
    bot.settings.allowed_guild_ids.remove(allowed.id)
    bot.settings.allowed_guild_ids.append(2)
    refused = await alice.slash(channel, "jobs")
    assert refused.ephemeral and refused.response is not None
    assert refused.response.content == "This bot isn't enabled on this server."


async def test_close_stops_the_services(tmp_path: Path, engine_outside_simcord: None) -> None:
    """Closing the bot closes the engine and store (unfinished jobs stay resumable)."""
    bot = create_bot(make_settings(tmp_path, UNREACHABLE_API))
    async with simcord.run(bot, shard_count=1):
        services = bot.services
        await bot.close()
    with pytest.raises(RuntimeError, match="not open"):
        _ = bot.services
    with pytest.raises(Exception):  # noqa: B017 - any error: the connection is closed
        await services.store.jobs.get(1)
