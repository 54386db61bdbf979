"""What each command imports: the terminal's commands and the engine start without discord.py.

Checked in a fresh interpreter each time (this test process has imported everything already).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# discord.py (and the aiohttp it brings) serve only `lipsync-bot run`; aiohttp also serves the
# sandbox and a webhook receiver, which a plain `render` doesn't start.
NOT_FOR_THE_TERMINAL = ("discord", "aiohttp", "cogs")


def loaded_after(code: str) -> list[str]:
    """The top-level packages a fresh interpreter has loaded after running `code`."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120
    )
    loaded: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return loaded


@pytest.mark.parametrize(
    "code",
    [
        "import bot.__main__",
        # Everything `render`, `resume` and `reconcile` import before they start work.
        "import bot.__main__, bot.terminal, bot.services",
        "import bot.jobs.engine, bot.jobs.run, bot.jobs.poller, bot.jobs.forecast",
    ],
)
def test_the_terminal_path_does_not_import_discord(code: str) -> None:
    """`lipsync-bot render` and the engine never load discord.py or aiohttp."""
    loaded = loaded_after(code)
    assert not [name for name in NOT_FOR_THE_TERMINAL if name in loaded], loaded


def test_render_help_does_not_import_discord() -> None:
    """`lipsync-bot render --help` answers without loading discord.py."""
    code = (
        "import sys, bot.__main__ as m\n"
        "try:\n    m.main(['render', '--help'])\nexcept SystemExit:\n    pass\n"
        "assert 'discord' not in sys.modules, 'discord imported'"
    )
    loaded = loaded_after(code)
    assert "discord" not in loaded and "bot" in loaded


def test_run_still_has_discord() -> None:
    """The bot itself still loads discord.py (the check above is not vacuous)."""
    assert "discord" in loaded_after("import bot.app")
