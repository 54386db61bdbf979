"""The docs say what the code does: each statement a newcomer relies on, read from the doc, checked on the code."""

from __future__ import annotations

import argparse
import re
import tomllib
from pathlib import Path

import pytest

from bot.__main__ import _parser
from bot.config import Settings
from bot.words import human_size

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _commands() -> dict[str, argparse.ArgumentParser]:
    [sub] = [a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


# --------------------------------------------------------------------------------- README


def test_the_readme_command_table_lists_every_command() -> None:
    listed = set(re.findall(r"^\| `lipsync-bot ([a-z-]+)", README, re.M))
    assert listed == set(_commands()), "README's command table and `lipsync-bot --help` differ"


def test_ci_runs_exactly_the_readmes_test_command() -> None:
    """`.ci/run` runs the README's second command, word for word."""
    test_command = _shell_blocks(README)[1].strip()
    assert test_command.endswith("&& .venv/bin/python -m pytest")
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci


@pytest.mark.parametrize(("block", "lock"), [(0, "requirements.txt"), (1, "requirements-test.txt")])
def test_the_readme_installs_from_the_hashed_locks(block: int, lock: str) -> None:
    command = _shell_blocks(README)[block]
    assert f"pip install --require-hashes -r {lock} && " in command
    assert "pip install --no-deps --no-build-isolation -e . && " in command  # nothing resolved again


def test_the_image_installs_the_same_lock() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.txt" in dockerfile
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in dockerfile


# --------------------------------------------------------------------------------- the locks


def _lock(name: str) -> dict[str, str]:
    """name -> version of each requirement in a lock, checking each is pinned and hashed."""
    text = (ROOT / name).read_text()
    pins: dict[str, str] = {}
    for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 6)[-1]):
        first = entry.split(" ", 1)[0].strip()
        if not first or first.startswith("#"):
            continue
        assert "==" in first and "--hash=sha256:" in entry, f"{name}: {first} is not pinned and hashed"
        package, version = first.split("==")
        pins[_canonical(package)] = version
    return pins


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(requirements: list[str]) -> dict[str, str]:
    """name -> specifier of pyproject requirements."""
    found = {}
    for requirement in requirements:
        match = re.match(r"([A-Za-z0-9_.-]+)(.*)", requirement)
        assert match is not None
        found[_canonical(match[1])] = match[2].strip()
    return found


def test_the_locks_cover_pyproject_and_pin_the_test_tools_exactly() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime = _requirement_names(project["dependencies"])
    tests = _requirement_names(project["optional-dependencies"]["test"])
    run_lock, test_lock = _lock("requirements.txt"), _lock("requirements-test.txt")
    assert set(runtime) <= set(run_lock) and set(runtime) | set(tests) <= set(test_lock)
    assert {name: version for name, version in run_lock.items()} == {n: test_lock[n] for n in run_lock}
    for tool in ("ruff", "mypy"):  # run as tests: a new release must not turn a fresh clone red
        assert tests[tool] == f"=={test_lock[tool]}", f"{tool} must be pinned exactly, to the locked version"
    assert "setuptools" in run_lock  # `--no-build-isolation` builds with the locked one


# --------------------------------------------------------------------------------- .env.example


def _example_settings(tmp_path: Path) -> tuple[dict[str, str], set[str]]:
    """Every `KEY=value` of .env.example, commented-out defaults included, and the commented keys."""
    values: dict[str, str] = {}
    commented: set[str] = set()
    for line in (ROOT / ".env.example").read_text().splitlines():
        match = re.fullmatch(r"(# )?([A-Z][A-Z0-9_]*)=(.*)", line)
        if match:
            values[match[2]] = match[3]
            if match[1]:
                commented.add(match[2])
    return values, commented


def test_env_example_documents_every_setting_and_no_other(tmp_path: Path) -> None:
    values, _ = _example_settings(tmp_path)
    assert set(values) == {name.upper() for name in Settings.model_fields}


def test_env_example_shows_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading every line of .env.example (commented ones too) changes nothing but the two secrets' emptiness."""
    values, _ = _example_settings(tmp_path)
    uncommented = tmp_path / "example.env"
    uncommented.write_text("".join(f"{key}={value}\n" for key, value in values.items()))
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    from_example = Settings(_env_file=uncommented)  # type: ignore[call-arg]
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    # METRICS_PORT is off by default; its commented-out line shows the port to turn it on with.
    assert from_example.metrics_port == 9108 and defaults.metrics_port is None
    assert from_example.model_dump(exclude={"metrics_port"}) == defaults.model_dump(exclude={"metrics_port"})


def test_the_input_size_limit_is_stated_in_the_units_it_is_shown_in() -> None:
    """MAX_INPUT_BYTES: 200 MB, Magic Hour's own unit, and members see it as 200.0 MB."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("MAX_INPUT_BYTES="))
    start = max(i for i in range(at) if not lines[i].startswith("#")) + 1  # its comment block
    block = "\n".join(lines[start : at + 1])
    assert "MAX_INPUT_BYTES=200000000" in block and "200 MB" in block and "MiB" not in block
    assert human_size(Settings.model_fields["max_input_bytes"].default) == "200.0 MB"


# --------------------------------------------------------------------------------- operators.md


def test_the_operators_settings_table_gives_the_real_defaults() -> None:
    """Each `| SETTING | default |` row of docs/operators.md matches Settings' default."""
    text = (ROOT / "docs" / "operators.md").read_text()
    rows = re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", text, re.M)
    assert len(rows) >= 10
    for name, shown in rows:
        default = Settings.model_fields[name.lower()].default
        factory = Settings.model_fields[name.lower()].default_factory
        value = factory() if factory is not None else default  # type: ignore[call-arg]
        shown = shown.strip().strip("`")
        if value is None or value == []:
            assert shown.startswith(("empty", "—")), (name, shown)
        elif isinstance(value, list):
            assert shown == ",".join(str(v) for v in value), (name, shown)
        else:
            assert shown.replace(",", "").lower() in (
                str(value).lower(),
                f"{value:g}" if isinstance(value, float) else "",
            ), (
                name,
                shown,
                value,
            )


def test_operators_guide_does_not_promise_refunds_for_unknown_jobs() -> None:
    """Section 4 states the settlement rule as the code has it: unknown jobs keep their reservation."""
    section = (ROOT / "docs" / "operators.md").read_text().split("## 4.", 1)[1].split("## 5.", 1)[0]
    assert "refunded in full" not in section
    assert "fate at Magic Hour is unknown" in section and "what Magic Hour charged" in section


def test_docs_say_the_ledger_may_be_postgresql() -> None:
    for path in (ROOT / "README.md", ROOT / "docs" / "operators.md"):
        for sentence in re.split(r"(?<=[.:])\s", path.read_text()):
            if "ledger" in sentence and "SQLite" in sentence:
                assert "PostgreSQL" in sentence, (path.name, sentence)


def test_a_sandbox_through_the_base_url_is_said_to_use_the_configured_database() -> None:
    text = " ".join((ROOT / "docs" / "operators.md").read_text().split())
    assert "then the bot uses the database you configured (`DATABASE_PATH` or `DATABASE_URL`), by design" in text


def test_the_cog_tests_readme_names_a_command_that_exists() -> None:
    text = (ROOT / "tests" / "cogs" / "README.md").read_text()
    [command] = re.findall(r"`\.venv/bin/pytest ([^`]+)`", text)
    for target in command.split():
        assert (ROOT / target).exists(), target
    joined = " ".join(text.split())
    assert "`--ignore tests/cogs/test_fuzz.py`" in joined and (ROOT / "tests/cogs/test_fuzz.py").exists()
    fuzz = (ROOT / "tests/cogs/test_fuzz.py").read_text()  # the numbers of examples it quotes
    assert '"150" if IN_CI else "300"' in fuzz and "FUZZ_EXAMPLES" in fuzz


# --------------------------------------------------------------------------------- the project explains itself

_SCANNED = ("bot", "cogs", "tests", "docs", "bench", ".ci")
_TOP = ("README.md", "CONTRIBUTING.md", "Dockerfile", "compose.yaml", ".env.example", "pyproject.toml")
_SUFFIXES = {".py", ".md", ".toml", ".sql", ".yaml", ".yml", ".txt", ".example", ""}
# Written as pieces, so this file doesn't match itself.
_OUTSIDE = [
    re.compile("DESIGN" + r"\.md", re.I),
    re.compile(r"\.\./" + "shared"),
    re.compile("shared/" + "reference"),
    re.compile("/" + "work/"),
]
_NUMBERED = [
    re.compile(r"\b" + "issues?" + r" ?#?\d+\b", re.I),  # an issue by number
    re.compile(r"\b" + "gaps?" + r" ?#?\d+\b", re.I),  # a gap by number
    re.compile(r"\b(PR|pull request) ?#\d+", re.I),
    re.compile(r"\(" + r"#\d+\)"),  # a number in parentheses, a tracker's way to cite
]


def _project_files() -> list[Path]:
    files = [ROOT / name for name in _TOP if (ROOT / name).exists()]
    for folder in _SCANNED:
        files += [
            path
            for path in (ROOT / folder).rglob("*")
            if path.is_file() and path.suffix in _SUFFIXES and "__pycache__" not in path.parts
        ]
    return files


def test_the_project_refers_to_nothing_outside_it_and_to_no_tracker_numbers() -> None:
    """A newcomer can follow every reference: no design document kept elsewhere, no issue or gap numbers."""
    files = _project_files()
    assert len(files) > 150
    found = []
    for path in files:
        text = path.read_text(errors="replace")
        for pattern in _OUTSIDE + _NUMBERED:
            found += [f"{path.relative_to(ROOT)}: {match[0]!r}" for match in pattern.finditer(text)]
    assert found == []


def test_the_design_notes_carry_the_design() -> None:
    """docs/design-notes.md stands alone: the layers, a job's life, the rules and the quota."""
    text = (ROOT / "docs" / "design-notes.md").read_text()
    for heading in ("## Rules that hold everywhere", "## Layers", "## A job's life", "## Quota"):
        assert heading in text


def test_contributing_names_only_files_that_exist() -> None:
    """CONTRIBUTING.md's layout and worked example point at real files and folders."""
    text = (ROOT / "CONTRIBUTING.md").read_text()
    paths = set(re.findall(r"\b((?:bot|cogs|tests|docs|bench)/[\w./-]*[\w/])", text))
    assert len(paths) > 15
    missing = sorted(p for p in paths if not (ROOT / p).exists())
    assert missing == []
    assert "tests/test_modes.py" in paths  # the worked example's checklist is a test
