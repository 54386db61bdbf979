"""The linters are part of the test suite, so one command checks everything CI checks."""

from __future__ import annotations

import ast
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


# Modules whose header another change is rewriting together with their code.
MAX_HEADER_LINES = 12


def test_module_docstrings_say_what_the_module_is_for_in_a_few_lines() -> None:
    """A module's docstring is a short header; the design reasoning lives in docs/design-notes.md."""
    long = {}
    for folder in ("bot", "cogs", "bench"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            docstring = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=False)
            lines = len(docstring.strip("\n").splitlines()) if docstring else 0
            name = path.relative_to(ROOT).as_posix()
            if lines > MAX_HEADER_LINES:
                long[name] = lines
    assert not long, f"module docstrings over {MAX_HEADER_LINES} lines: {long}"
