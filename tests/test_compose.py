"""compose.yaml: the bot processes it runs are checked for health, stop cleanly, and never share an identity."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[1]


def _bots() -> dict[str, dict[str, Any]]:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return {name: service for name, service in compose["services"].items() if name.startswith("bot")}


def _seconds(text: str) -> float:
    units = {"s": 1, "m": 60}
    return float(text[:-1]) * units[text[-1]]


def test_every_bot_process_has_a_health_check_and_a_stop_grace_period_longer_than_its_own() -> None:
    """Docker asks `/healthz`, and waits for the bot's clean stop (STOP_GRACE_SECONDS) before it kills."""
    bots = _bots()
    assert len(bots) >= 2
    for name, bot in bots.items():
        assert bot["healthcheck"]["test"] == ["CMD", "python", "-m", "bot.ops.probe"], name
        grace = float(bot["environment"].get("STOP_GRACE_SECONDS", Settings.model_fields["stop_grace_seconds"].default))
        assert _seconds(bot["stop_grace_period"]) >= grace + 5, name


def test_bot_processes_have_names_and_shards_of_their_own() -> None:
    """Two containers must not look alike (names for people; job claims use a random id anyway)."""
    bots = _bots().values()
    for key in ("INSTANCE_NAME", "SHARD_IDS"):
        values = [bot["environment"][key] for bot in bots]
        assert len(set(values)) == len(values), key
    hostnames = [bot["hostname"] for bot in bots]
    assert len(set(hostnames)) == len(hostnames)
    assert all(bot["environment"]["DATABASE_URL"].startswith("postgresql://") for bot in bots)
