"""No token, key or signature leaves through a log handler, at any level."""

from __future__ import annotations

import base64
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.__main__ import _configure_logging
from bot.logsafety import MAX_MESSAGE_CHARS, REDACTED, RedactingFilter, install, redact
from tests.conftest import make_settings

APP_ID = "1234567890123456789"
# Built at run time, so no token-shaped literal sits in the repository for scanners to flag.
INTERACTION_TOKEN = base64.b64encode(f"interaction:{APP_ID}:{'q' * 40}".encode()).decode().rstrip("=")
WEBHOOK_TOKEN = "w" * 34 + "-" + "W" * 33
BOT_TOKEN = ".".join([base64.b64encode(APP_ID.encode()).decode().rstrip("="), "GabcDe", "x" * 38])
API_KEY = "mhk_live_" + "k" * 30
SIGNATURE = "deadbeef" * 8

SECRETS = (INTERACTION_TOKEN, WEBHOOK_TOKEN, BOT_TOKEN, API_KEY, SIGNATURE)

# What discord.py 2.7 logs at DEBUG (http.py, webhook/async_.py, gateway.py), with live secrets.
DISCORD_DEBUG_LINES: list[tuple[str, str, tuple[object, ...]]] = [
    (
        "discord.http",
        "%s %s with %s has returned %s",
        ("POST", f"https://discord.com/api/v10/interactions/987654321/{INTERACTION_TOKEN}/callback", None, 204),
    ),
    (
        "discord.webhook.async_",
        "Webhook ID %s with %s %s has returned status code %s",
        (APP_ID, "PATCH", f"https://discord.com/api/v10/webhooks/{APP_ID}/{INTERACTION_TOKEN}/messages/@original", 200),
    ),
    (
        "discord.webhook.async_",
        "Webhook ID %s with %s %s has returned status code %s",
        (APP_ID, "POST", f"https://discord.com/api/v10/webhooks/{APP_ID}/{WEBHOOK_TOKEN}?wait=true", 200),
    ),
    (
        "discord.gateway",
        "For Shard ID %s: WebSocket Event: %s",
        (None, {"t": "INTERACTION_CREATE", "op": 0, "d": {"id": "42", "token": INTERACTION_TOKEN, "type": 2}}),
    ),
    (
        "discord.http",
        "%s %s has received %s",
        ("GET", f"https://cdn.discordapp.com/attachments/1/2/face.mp4?ex=6650&is=664f&hm={SIGNATURE}&", {}),
    ),
    (
        "discord.http",
        "%s %s with %s has returned %s",
        ("GET", "https://discord.com/api/v10/users/@me", {"headers": {"Authorization": f"Bot {BOT_TOKEN}"}}, 200),
    ),
]


def assert_clean(text: str) -> None:
    """No secret in `text`, even where a console wrapped a long line."""
    squeezed = "".join(text.split())
    for secret in SECRETS:
        assert secret not in squeezed, secret


# --- the rules -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            f"POST https://discord.com/api/v10/interactions/987/{INTERACTION_TOKEN}/callback",
            f"POST https://discord.com/api/v10/interactions/987/{REDACTED}/callback",
        ),
        (
            f"PATCH https://discord.com/api/v10/webhooks/{APP_ID}/{WEBHOOK_TOKEN}/messages/@original",
            f"PATCH https://discord.com/api/v10/webhooks/{APP_ID}/{REDACTED}/messages/@original",
        ),
        (f"token {INTERACTION_TOKEN} expired", f"token {REDACTED} expired"),
        (f"logging in with {BOT_TOKEN}", f"logging in with {REDACTED}"),
        (f"{{'Authorization': 'Bot {BOT_TOKEN}'}}", f"{{'Authorization': '{REDACTED}'}}"),
        (f'{{"token": "{WEBHOOK_TOKEN}", "id": 1}}', f'{{"token": "{REDACTED}", "id": 1}}'),
        (f"Authorization: Bearer {API_KEY}", f"Authorization: {REDACTED}"),
        (f"sent Bearer {API_KEY} along", f"sent Bearer {REDACTED} along"),
        (f"api_key={API_KEY}&x=1", f"api_key={REDACTED}&x=1"),
        (f"client_secret = {API_KEY}", f"client_secret = {REDACTED}"),
        (
            f"PUT https://storage.example/upload/a.mp4?X-Amz-Signature={SIGNATURE}&X-Amz-Expires=900 -> 200",
            f"PUT https://storage.example/upload/a.mp4?{REDACTED} -> 200",
        ),
        (f"see 'https://cdn.example/a.png#sig={SIGNATURE}'", f"see 'https://cdn.example/a.png?{REDACTED}'"),
        ("wss://gateway.discord.gg/?encoding=json&v=10", f"wss://gateway.discord.gg/?{REDACTED}"),
    ],
)
def test_rules(line: str, expected: str) -> None:
    """Each kind of secret is replaced and the text around it kept."""
    assert redact(line) == expected
    assert redact(expected) == expected  # idempotent


@pytest.mark.parametrize(
    "line",
    [
        "Bot ready as lipsync#1234",
        "Bot shutting down; 3 jobs stay resumable",
        "job 12: rendering -> downloading (project cm1x2y3z)",
        "Magic Hour GET /v1/video-projects/abc failed (HTTP 503); retry 1 of 3 in 0.50 s",
        "PUT https://storage.example/upload/api-assets/a.mp4 -> 200 (3000 bytes)",
        "tokens: 5, max_tokens=7, token_count=3",
        "https://discord.com/api/v10/applications/123/commands",
        "bot.jobs.engine.JobEngine started",
    ],
)
def test_ordinary_lines_are_left_alone(line: str) -> None:
    """Lines without secrets come out unchanged."""
    assert redact(line) == line


# --- through real handlers -----------------------------------------------------------------------


@pytest.fixture
def stream_logger() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger of its own (outside the logging tree, so nothing else adds handlers to it) with a
    real StreamHandler at DEBUG, the filter installed on it."""
    stream = io.StringIO()
    logger = logging.Logger("tests.logsafety.isolated", level=logging.DEBUG)
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logger.addHandler(handler)
    install(logger)
    yield logger, stream
    handler.close()


def test_debug_records_come_out_redacted(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """discord.py's own DEBUG lines, logged through a real handler, lose their secrets and keep the rest."""
    logger, stream = stream_logger
    for _, message, args in DISCORD_DEBUG_LINES:
        logger.debug(message, *args)
    output = stream.getvalue()
    assert_clean(output)
    assert output.count(REDACTED) >= len(DISCORD_DEBUG_LINES)
    assert f"/webhooks/{APP_ID}/{REDACTED}/messages/@original" in output
    assert "/callback" in output and "INTERACTION_CREATE" in output and "has returned status code 200" in output


def test_tracebacks_are_redacted(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """An exception whose text quotes a token-bearing URL is logged with the token replaced."""
    logger, stream = stream_logger
    try:
        raise RuntimeError(
            f"404, message='Not Found', url='https://discord.com/api/v10/webhooks/1/{INTERACTION_TOKEN}'"
        )
    except RuntimeError:
        logger.exception("follow-up failed")
    output = stream.getvalue()
    assert "Traceback (most recent call last)" in output and "RuntimeError" in output
    assert_clean(output)


def test_a_broken_format_never_prints_raw_arguments(
    stream_logger: tuple[logging.Logger, io.StringIO], capsys: pytest.CaptureFixture[str]
) -> None:
    """Arguments that don't fit the format are shown redacted, not dumped raw by logging's error report."""
    logger, stream = stream_logger
    logger.debug("%d seconds", f"https://discord.com/api/v10/webhooks/1/{WEBHOOK_TOKEN}")
    assert_clean(stream.getvalue() + capsys.readouterr().err)
    assert REDACTED in stream.getvalue()


def test_install_is_idempotent(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """Installing twice leaves one filter per handler."""
    logger, _ = stream_logger
    install(logger)
    (handler,) = logger.handlers
    assert sum(isinstance(f, RedactingFilter) for f in handler.filters) == 1


# --- as the bot configures logging ---------------------------------------------------------------


@pytest.fixture
def pristine_logging() -> Iterator[None]:
    """Root without handlers, as at start-up (pytest's own capture handlers set aside for the test);
    every logger and handler the test touches is put back afterwards."""
    root = logging.getLogger()
    names = ("discord", "discord.client", "httpx", "httpcore")
    saved = {name: (logging.getLogger(name).level, logging.getLogger(name).filters[:]) for name in names}
    saved_level = root.level
    yield
    root.setLevel(saved_level)
    for name, (level, filters) in saved.items():
        logging.getLogger(name).setLevel(level)
        logging.getLogger(name).filters[:] = filters


@pytest.mark.parametrize(
    ("interactive", "log_format"), [(False, "text"), (True, "text"), (False, "json")], ids=["run", "render", "json"]
)
@pytest.mark.usefixtures("pristine_logging")
def test_configured_logging_redacts_discord_debug_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], interactive: bool, log_format: str
) -> None:
    """With DISCORD_LOG_LEVEL=DEBUG, discord.py's loggers go out through the bot's handlers redacted."""
    settings = make_settings(
        tmp_path, "http://127.0.0.1:9", log_level="DEBUG", discord_log_level="DEBUG", log_format=log_format
    )
    root = logging.getLogger()
    pytest_handlers = root.handlers[:]  # pytest adds its capture handlers for each test phase
    for handler in pytest_handlers:
        root.removeHandler(handler)
    try:
        _configure_logging(settings, interactive=interactive)
        ours = root.handlers[:]
        assert ours and all(any(isinstance(f, RedactingFilter) for f in h.filters) for h in ours)
        for name, message, args in DISCORD_DEBUG_LINES:
            logging.getLogger(name).debug(message, *args)
    finally:
        for handler in root.handlers[:]:
            root.removeHandler(handler)
        for handler in pytest_handlers:
            root.addHandler(handler)
    captured = capsys.readouterr()
    output = captured.out + captured.err
    assert "WebSocket Event" in output and REDACTED in output
    assert_clean(output)
    if log_format == "json":
        lines = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
        assert lines and all(line["level"] == "DEBUG" and line["logger"].startswith("discord") for line in lines)


def test_no_value_can_forge_or_flood_a_log_line(stream_logger: tuple[logging.Logger, io.StringIO]) -> None:
    """Whatever a logged value holds, each record is one line of bounded length."""
    logger, stream = stream_logger
    logger.warning("webhook for project %s", "p1\nINFO bot: job 1: done\r\x1b[2K\u2028more")
    logger.warning("file %s", "x" * 900_000)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 2
    assert lines[0].endswith("webhook for project p1\\nINFO bot: job 1: done\\r\\x1b[2K\\u2028more")
    assert len(lines[1]) < MAX_MESSAGE_CHARS + 200 and "[898,005 more characters cut]" in lines[1]
