"""`python -m bot` / `lipsync-bot`: run, render, resume, sandbox, check, migrate-db."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from bot.clock import Clock
from bot.config import GenerationMode, Settings, settings_problems
from bot.errors import ConfigurationError
from bot.terminal.output import DEFAULT_FOLDER
from bot.terminal.style import env_file

log = logging.getLogger("bot")

SANDBOX_API_KEY = "sandbox-key"


def _settings_source() -> str:
    """Where settings come from, for `--help`: the environment, then the `.env` of this folder."""
    found = env_file()
    there = "" if found.is_file() else " (there is none yet: copy .env.example)"
    return (
        f"Settings come from the environment, then from {found}{there}: the .env of the folder "
        "lipsync-bot runs in. Every setting is described in .env.example."
    )


def _modes_help() -> str:
    """`--mode`'s help, from what the bot knows of each mode: "lite: 1 credit per frame; ..."."""
    parts = [
        f"{mode.value}: {mode.credits_per_frame} credit{'s' if mode.credits_per_frame > 1 else ''} per frame"
        + (" (a paid Magic Hour plan)" if mode.needs_paid_plan else "")
        for mode in GenerationMode
    ]
    return f"{'; '.join(parts)}. Default: {GenerationMode.LITE.value}"


_RENDER_USAGE = """lipsync-bot render [options] VIDEO AUDIO
       lipsync-bot render [options] --youtube URL AUDIO
       lipsync-bot render --sandbox --demo"""


def _parser() -> argparse.ArgumentParser:
    source = _settings_source()
    parser = argparse.ArgumentParser(
        prog="lipsync-bot", description="Magic Hour lip sync for Discord servers.", epilog=source
    )
    sub = parser.add_subparsers(dest="command")

    run = sub.add_parser("run", help="run the Discord bot (the default)")
    run.add_argument("--sandbox", action="store_true", help="use a built-in local Magic Hour: no credits spent")
    run.add_argument("--sync", action="store_true", help="sync slash commands (globally, or to DEV_GUILD_ID)")

    render = sub.add_parser(
        "render",
        help="render one job from the terminal",
        usage=_RENDER_USAGE,
        description="One lip-sync job from the terminal, through the same engine, ledger and database as the "
        "bot. Ctrl+C while it runs asks whether to cancel the job or leave it running for `resume`.",
        epilog=source,
    )
    # Both optional, so that `--youtube URL AUDIO` works: `_inputs_from` moves a lone file to AUDIO.
    render.add_argument("video", nargs="?", metavar="VIDEO", help="the video of a face (not with --youtube)")
    render.add_argument("audio", nargs="?", metavar="AUDIO", help="the voice to sync to")
    render.add_argument("--youtube", metavar="URL", help="a YouTube link instead of a video file (then set --end)")
    render.add_argument("--start", type=float, default=0.0, help="clip start, seconds (default 0)")
    render.add_argument("--end", type=float, help="clip end, seconds (default: the audio's length)")
    render.add_argument(
        "--mode",
        choices=[m.value for m in GenerationMode],
        default=GenerationMode.LITE.value,
        help=_modes_help(),
    )
    render.add_argument("--max-fps", type=float, help="cap the output frame rate (fewer credits)")
    render.add_argument("--name", help="a name for the job at Magic Hour")
    render.add_argument(
        "--out",
        metavar="PATH",
        help=f"where to save the result: a file, or a folder (ending in /). Default: {DEFAULT_FOLDER}/",
    )
    render.add_argument(
        "--sandbox", action="store_true", help="a trial on a built-in local Magic Hour: no Magic Hour credits spent"
    )
    render.add_argument("--demo", action="store_true", help="generate sample media for any input not given")

    resume = sub.add_parser(
        "resume", help="finish the terminal's jobs that a crash or Ctrl+C interrupted", epilog=source
    )
    resume.add_argument("--out", metavar="FOLDER", help=f"the folder for results (default: {DEFAULT_FOLDER}/)")
    resume.add_argument("--sandbox", action="store_true", help="finish a `render --sandbox` trial's jobs")

    reconcile = sub.add_parser(
        "reconcile", help="record what Magic Hour charged for a job whose fate there was unknown"
    )
    reconcile.add_argument("job", type=int, help="the job's number (its project is named '#<number> · ...')")
    reconcile.add_argument("--charged", type=int, required=True, help="the credits the Magic Hour dashboard shows")

    sandbox = sub.add_parser(
        "sandbox",
        help="serve a local Magic Hour for trials and tests",
        description="Serve a local Magic Hour: no credits spent, results are not lip-synced. Every "
        "response carries the header X-Magic-Hour-Sandbox: 1.",
        epilog="Faults: --fault ROUTE:KIND[:RATE] spoils requests to ROUTE at random with probability "
        "RATE (0-1, default 1: every request); repeat it for more. ROUTE: upload_urls, create, "
        "get_project, delete_project, account, storage_put, download. KIND: an HTTP error status "
        "(429, 500, 502, 503, 409, 404...: answered at once, nothing done, so a 429 on create makes "
        "no project); malformed (handled, then half the JSON body; JSON routes only); unknown_status "
        '(get_project: status "optimizing"); disconnect (dropped unread); lost (handled, then '
        "dropped: on create, a billed project whose id never arrives). Rates on one route add up "
        "(at most 1). The same --seed repeats the same faults. Example: lipsync-bot sandbox "
        "--fault get_project:500:0.2 --fault create:429:0.3 --seed 1",
    )
    sandbox.add_argument("--host", default="127.0.0.1")
    sandbox.add_argument("--port", type=int, default=8765)
    sandbox.add_argument("--storage-port", type=int, default=0, help="storage host port (default: any free)")
    sandbox.add_argument("--data-dir", type=Path, help="where uploads and renders go (default: a temp dir)")
    sandbox.add_argument("--queue-seconds", type=float, default=0.0, help="how long each job waits queued")
    sandbox.add_argument("--render-seconds", type=float, default=5.0, help="how long each render takes")
    sandbox.add_argument(
        "--render-seconds-per-frame",
        type=float,
        default=0.0,
        metavar="S",
        help="if set, a render takes --render-overhead + frames x S x (1 +- --render-noise) instead",
    )
    sandbox.add_argument("--render-overhead", type=float, default=0.0, metavar="S", help="see above (seconds)")
    sandbox.add_argument("--render-noise", type=float, default=0.0, metavar="F", help="relative, e.g. 0.1 (+-10%%)")
    sandbox.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="ROUTE:KIND[:RATE]",
        help="spoil requests at random, e.g. get_project:503:0.2 (repeatable; see below)",
    )
    sandbox.add_argument("--seed", type=int, default=0, help="seed for random faults and render noise (default 0)")

    sub.add_parser(
        "check",
        help="check the configuration, and that Discord and Magic Hour accept the credentials",
        description="Check the configuration, and that Discord accepts DISCORD_TOKEN and Magic Hour accepts "
        "MAGIC_HOUR_API_KEY; say exactly what is missing, and what real money still depends on.",
        epilog=source,
    )

    migrate = sub.add_parser(
        "migrate-db",
        help="copy the SQLite database into an empty PostgreSQL database",
        description="Copy every job, ledger row and limit from the SQLite database (DATABASE_PATH, or "
        "--from) into an empty PostgreSQL database, keeping ids, then check both agree. Stop the bot "
        "first; afterwards set DATABASE_URL to the same URL. The SQLite file is left as it was.",
    )
    migrate.add_argument("--to", required=True, metavar="URL", help="postgresql://user:password@host/database")
    migrate.add_argument("--from", dest="source", type=Path, help="the SQLite file (default: DATABASE_PATH)")
    return parser


def _configure_logging(settings: Settings, *, interactive: bool) -> None:
    if interactive:
        # `render` shows a live progress line: log through rich so lines print above it, and
        # only what needs attention (the progress line already tells each state change).
        from rich.logging import RichHandler

        handler: logging.Handler = RichHandler(show_path=False)
        level = max(logging.getLevelName(settings.log_level.upper()), logging.WARNING)
        logging.basicConfig(level=level, format="%(message)s", handlers=[handler])
    elif settings.log_format == "json":
        from bot.ops.logs import JsonFormatter

        json_handler = logging.StreamHandler()
        json_handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=settings.log_level.upper(), handlers=[json_handler])
    else:
        logging.basicConfig(
            level=settings.log_level.upper(),
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        )
    logging.getLogger("discord").setLevel(settings.discord_log_level.upper())
    # The bot never joins voice, so discord.py's warnings about missing voice libraries are noise.
    logging.getLogger("discord.client").addFilter(lambda record: "voice will NOT" not in record.getMessage())
    # httpx logs every request URL at INFO, and signed URLs must never reach a log.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    # Whatever the levels, nothing leaves through a handler unredacted: at DEBUG discord.py logs
    # interaction URLs and events that carry live interaction tokens.
    from bot.logsafety import install

    install()


SANDBOX_DEADLINE_MINUTES = 5.0


def _sandbox_database(settings: Settings) -> Path:
    db = settings.database_path
    return db.with_name(f"{db.stem}-sandbox{db.suffix}")


def sandbox_folder(settings: Settings) -> Path:
    """Where a trial's sandbox keeps its account, uploads and projects: beside the trial's database."""
    db = _sandbox_database(settings)
    return db.with_name(db.stem)


def _sandboxed(settings: Settings, base_url: str, *, trial: bool = False) -> Settings:
    """Settings pointed at a local sandbox, with a database of its own so trials never touch real quotas.

    `trial` (`render --sandbox`, the operator at the terminal): its own allowance, TRIAL_CREDITS,
    instead of a member's and the bot's budget, so trying things out doesn't run dry after a few
    clips. `run --sandbox` keeps the operator's limits: it rehearses what members will meet.
    """
    update: dict[str, object] = {
        "magic_hour_base_url": base_url,
        "magic_hour_api_key": SecretStr(SANDBOX_API_KEY),
        "database_path": _sandbox_database(settings),
        "database_url": None,  # a trial never touches the real (PostgreSQL) ledger either
        "poll_initial_seconds": min(settings.poll_initial_seconds, 1.0),
        "poll_max_seconds": min(settings.poll_max_seconds, 2.0),
        # A sandbox render takes seconds: a job still unfinished after minutes has gone wrong.
        "job_deadline_minutes": min(settings.job_deadline_minutes, SANDBOX_DEADLINE_MINUTES),
    }
    if trial:
        update |= {"default_member_credits": settings.trial_credits, "bot_budget_credits": "unlimited"}
    return settings.model_copy(update=update)


@contextlib.asynccontextmanager
async def _maybe_sandbox(
    settings: Settings, enabled: bool, render_seconds: float = 3.0, *, trial: bool = False, clock: Clock | None = None
) -> AsyncIterator[Settings]:
    """A local Magic Hour for the command's lifetime, if `enabled`, and the settings that use it.

    Persistent (its folder beside the trial database): a job left running when the command ends
    is still known to the next trial's sandbox, so `resume --sandbox` finishes it.
    """
    if not enabled:
        yield settings
        return
    from bot.sandbox import Sandbox, SandboxConfig

    config = SandboxConfig(api_key=SANDBOX_API_KEY, queue_seconds=1.0, render_seconds=render_seconds)
    folder = sandbox_folder(settings)
    async with Sandbox(config, data_dir=folder, clock=clock, persistent=True) as sandbox:
        log.info("sandbox Magic Hour at %s (its files in %s)", sandbox.base_url, folder)
        yield _sandboxed(settings, sandbox.base_url, trial=trial)


def _inputs_from(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    """VIDEO and AUDIO as meant: with --youtube, a lone file is the AUDIO (argparse fills VIDEO first)."""
    video = None if args.video is None else Path(args.video)
    audio = None if args.audio is None else Path(args.audio)
    if args.youtube is not None and audio is None:
        return None, video
    return video, audio


async def _render(settings: Settings, args: argparse.Namespace) -> int:
    from bot.terminal import Output, RenderOptions, render

    fields = {
        "youtube_url": args.youtube,
        "start": args.start,
        "end": args.end,
        "mode": GenerationMode(args.mode),
        "max_fps": args.max_fps,
        "name": args.name,
    }
    video, audio = _inputs_from(args)
    options = RenderOptions(video=video, audio=audio, fields=fields, out=Output.parse(args.out), demo=args.demo)
    async with _maybe_sandbox(settings, args.sandbox, trial=True) as effective:
        return await render(effective, options, console=Console(), sandbox=args.sandbox)


async def _resume(settings: Settings, args: argparse.Namespace) -> int:
    from bot.terminal import Output, resume

    out = Output.parse(args.out, folder_only=True)
    async with _maybe_sandbox(settings, args.sandbox, trial=True) as effective:
        return await resume(effective, out=out, console=Console(), sandbox=args.sandbox)


async def _reconcile(settings: Settings, args: argparse.Namespace) -> int:
    from bot.terminal import reconcile

    return await reconcile(settings, args.job, args.charged, console=Console())


async def _run(settings: Settings, args: argparse.Namespace) -> int:
    # discord.py only here: the terminal's commands start faster without it.
    import aiohttp
    import discord

    from bot.app import create_bot, sync_commands
    from bot.safety import is_sandbox, money_risks

    async with _maybe_sandbox(settings, args.sandbox, render_seconds=20.0) as effective:
        if effective.discord_token is None:
            raise ConfigurationError("DISCORD_TOKEN is not set. Put it in `.env` (see `.env.example`).")
        if effective.magic_hour_api_key is None:
            raise ConfigurationError(
                "MAGIC_HOUR_API_KEY is not set. Put it in `.env`, or try the bot with `lipsync-bot run --sandbox`."
            )
        sandbox = args.sandbox or await is_sandbox(effective)
        risks = [] if sandbox else money_risks(effective)
        if risks:
            raise ConfigurationError("Not starting against real Magic Hour credits:\n- " + "\n- ".join(risks))
        bot = create_bot(effective, sandbox=sandbox)
        async with bot:
            try:
                await bot.login(effective.discord_token.get_secret_value())
            except discord.LoginFailure as exc:
                raise ConfigurationError("Discord rejected DISCORD_TOKEN: reset it in the Developer Portal.") from exc
            except (aiohttp.ClientConnectionError, OSError) as exc:
                raise ConfigurationError(f"Can't reach Discord ({type(exc).__name__}): check the network.") from exc
            if args.sync:
                # Deliberate only: Discord allows 200 command creates a day per server.
                await sync_commands(bot, effective.dev_guild_id)
            async with bot.services.serve_ops():  # /metrics and /healthz, when METRICS_PORT is set
                await bot.connect()
    return 0


async def _sandbox(args: argparse.Namespace) -> int:
    from bot.sandbox import Faults, SandboxConfig, parse_fault_spec, serve_forever

    try:
        faults = [parse_fault_spec(text) for text in args.fault]
        Faults().apply(faults)  # refuse rates that add up past 1 before anything starts
        config = SandboxConfig(
            api_key=SANDBOX_API_KEY,
            queue_seconds=args.queue_seconds,
            render_seconds=args.render_seconds,
            render_seconds_per_frame=args.render_seconds_per_frame,
            render_overhead_seconds=args.render_overhead,
            render_noise=args.render_noise,
            render_seed=args.seed,
        )
    except ValueError as exc:  # pydantic's ValidationError is one
        if isinstance(exc, ValidationError):
            detail = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        else:
            detail = str(exc)
        raise ConfigurationError(f"sandbox: {detail}") from exc
    with contextlib.ExitStack() as stack:
        data_dir = args.data_dir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lipsync-sandbox-")))
        await serve_forever(
            config,
            data_dir=data_dir,
            host=args.host,
            port=args.port,
            storage_port=args.storage_port,
            faults=faults,
            seed=args.seed,
        )
    return 0


async def _check(settings: Settings) -> int:
    from bot.checks import run_checks

    return await run_checks(settings, Console())


async def _migrate_db(settings: Settings, args: argparse.Namespace) -> int:
    from bot.store import StoreError
    from bot.store.db import is_postgres_url
    from bot.store.transfer import copy_to_postgres, describe

    if not is_postgres_url(args.to):
        print("--to must be a postgresql:// URL", file=sys.stderr)
        return 2
    source: Path = args.source or settings.database_path
    try:
        report = await copy_to_postgres(source, args.to)
    except StoreError as exc:
        print(f"Nothing was copied: {exc}", file=sys.stderr)
        return 1
    print(describe(report))
    if report.problems_after != report.problems_before:
        print("The copy does not check out the same as the original; keep using SQLite.", file=sys.stderr)
        return 1
    print("Done. Set DATABASE_URL to this URL and start the bot.")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of `lipsync-bot` and `python -m bot`."""
    args = _parser().parse_args(argv)
    command = args.command or "run"
    if command == "run" and args.command is None:
        args = _parser().parse_args(["run", *(argv or [])])
    try:
        settings = Settings()
    except ValidationError as exc:
        print("Configuration error:\n" + "\n".join(settings_problems(exc)), file=sys.stderr)
        return 2
    except SettingsError as exc:  # a list setting that isn't a list: its message names the setting only
        print(f"Configuration error: {exc}", file=sys.stderr)
        return 2
    _configure_logging(settings, interactive=command in ("render", "resume"))
    try:
        if command == "render":
            return asyncio.run(_render(settings, args))
        if command == "resume":
            return asyncio.run(_resume(settings, args))
        if command == "reconcile":
            return asyncio.run(_reconcile(settings, args))
        if command == "sandbox":
            return asyncio.run(_sandbox(args))
        if command == "check":
            return asyncio.run(_check(settings))
        if command == "migrate-db":
            return asyncio.run(_migrate_db(settings, args))
        return asyncio.run(_run(settings, args))
    except ConfigurationError as exc:
        print(exc.user_message, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
