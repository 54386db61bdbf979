"""The linters are part of the test suite, so one command checks everything CI checks."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name: str) -> str:
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if found is None:
        pytest.fail(f"{name} is not installed: install the test extras (pip install -e '.[test]')")
    return found


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["ruff", "check", "."], id="ruff-check"),
        pytest.param(["ruff", "format", "--check", "."], id="ruff-format"),
        pytest.param(["mypy"], id="mypy-strict"),
    ],
)
def test_tool_passes(args: list[str]) -> None:
    """ruff and mypy --strict pass on the whole project."""
    result = subprocess.run([_tool(args[0]), *args[1:]], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_core_does_not_import_discord() -> None:
    """Only cogs/, bot/app.py and bot/__main__.py may import discord: the engine stays testable alone."""
    offenders = []
    for path in (ROOT / "bot").rglob("*.py"):
        rel = path.relative_to(ROOT).as_posix()
        if rel in ("bot/app.py", "bot/__main__.py"):
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import discord", "from discord")):
                offenders.append(f"{rel}: {stripped}")
    assert offenders == []
