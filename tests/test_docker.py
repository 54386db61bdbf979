"""The Docker image and compose.yaml, as Docker builds the container's environment (no engine needed).

Docker starts a container with the image's `ENV`, then puts every line of `--env-file` (or
compose's `env_file:`) over it, then compose's `environment:` over that. An empty line such as
`METRICS_PORT=` still overrides: the variable is set, to nothing. These tests apply exactly that to
the image and to a copy of `.env.example`, build the bot's `Settings` from the result, and check
where the database and the work files land (on the volume, or lost with the container) and what
the HEALTHCHECK's probe asks (the port the bot really serves).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import yaml

from bot.__main__ import _sandboxed
from bot.config import Settings
from bot.ops import probe

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Image:
    """What the final stage of the Dockerfile sets for a container."""

    env: dict[str, str] = field(default_factory=dict)
    workdir: PurePosixPath = field(default_factory=lambda: PurePosixPath("/"))
    volumes: list[PurePosixPath] = field(default_factory=list)
    exposed: list[int] = field(default_factory=list)
    healthcheck: list[str] = field(default_factory=list)


def _instructions(text: str) -> Iterator[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    logical = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            logical += line[:-1] + " "
            continue
        logical += line
        name, _, rest = logical.partition(" ")
        yield name.upper(), rest.strip()
        logical = ""


def _expand(value: str, env: Mapping[str, str]) -> str:
    """`$NAME` and `${NAME}` replaced by what the image set so far, as ENV does."""
    return re.sub(r"\$(\w+)|\$\{(\w+)\}", lambda match: env.get(match[1] or match[2], ""), value)


def read_image(path: Path = ROOT / "Dockerfile") -> Image:
    """The last stage's ENV, WORKDIR, VOLUME, EXPOSE and HEALTHCHECK, as Docker applies them."""
    image = Image()
    for name, rest in _instructions(path.read_text()):
        if name == "FROM":
            image = Image()  # each stage starts anew; the last one is the image
        elif name == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                image.env[key] = _expand(value, image.env)
        elif name == "WORKDIR":
            image.workdir = image.workdir / rest  # a relative WORKDIR is relative to the previous one
        elif name == "VOLUME":
            image.volumes += [PurePosixPath(v) for v in re.findall(r'"([^"]+)"', rest) or rest.split()]
        elif name == "EXPOSE":
            image.exposed += [int(port.split("/")[0]) for port in rest.split()]
        elif name == "HEALTHCHECK":
            image.healthcheck = re.findall(r'"([^"]+)"', rest.partition("CMD")[2])
    return image


def read_env_file(path: Path, host: Mapping[str, str] | None = None) -> dict[str, str]:
    """A file as `docker run --env-file` reads it: `KEY=VALUE` taken literally, `#` lines skipped.

    A bare `KEY` passes the host's value on (and nothing when the host has none).
    """
    found: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if sep:
            found[key.strip()] = value
        elif host is not None and key.strip() in host:
            found[key.strip()] = host[key.strip()]
    return found


def settings_in(env: Mapping[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Settings:
    """The bot's settings with exactly this environment (the container's working folder has no .env)."""
    for name in Settings.model_fields:
        monkeypatch.delenv(name.upper(), raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.chdir(tmp_path)
    return Settings()


def _on(path: PurePosixPath, volumes: list[PurePosixPath]) -> bool:
    return any(path == volume or volume in path.parents for volume in volumes)


def _in_container(workdir: PurePosixPath, path: Path) -> PurePosixPath:
    return workdir / PurePosixPath(path.as_posix())  # an absolute path stays as it is


@dataclass(frozen=True)
class Outcome:
    """Where the container keeps things, and what its probe asks."""

    database: PurePosixPath
    sandbox_database: PurePosixPath
    work_dir: PurePosixPath
    metrics: tuple[str, int] | None
    probe_url: str | None


def outcome(settings: Settings, workdir: PurePosixPath) -> Outcome:
    """What a container with these settings does with its files and its health check."""
    trial = _sandboxed(settings, "http://127.0.0.1:1")
    return Outcome(
        database=_in_container(workdir, settings.database_path),
        sandbox_database=_in_container(workdir, trial.database_path),
        work_dir=_in_container(workdir, settings.work_dir),
        metrics=None if settings.metrics_port is None else (settings.metrics_host, settings.metrics_port),
        probe_url=probe.healthz_url(settings),
    )


def env_example_copy(tmp_path: Path) -> Path:
    """`cp .env.example .env` and the two secrets filled in, as the README says."""
    text = (ROOT / ".env.example").read_text()
    text = text.replace("\nDISCORD_TOKEN=\n", "\nDISCORD_TOKEN=a.b.c\n")
    text = text.replace("\nMAGIC_HOUR_API_KEY=\n", "\nMAGIC_HOUR_API_KEY=mh-key\n")
    copy = tmp_path / "operator.env"
    copy.write_text(text)
    return copy


def test_the_env_file_reader_reads_as_docker_does(tmp_path: Path) -> None:
    """The simulation's --env-file reader: empty values set the variable empty, nothing is unquoted."""
    env = tmp_path / "x.env"
    env.write_text('# a comment\n\nEMPTY=\nQUOTED="a b"\n  SPACED=1\nFROM_HOST\nNOT_ON_HOST\n')
    assert read_env_file(env, {"FROM_HOST": "h"}) == {"EMPTY": "", "QUOTED": '"a b"', "SPACED": "1", "FROM_HOST": "h"}


def test_docker_run_with_a_copied_env_example_keeps_the_database_on_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`docker run --env-file .env -v lipsync-data:/data lipsync-bot` with `.env` copied from `.env.example`.

    The ledger, the trial ledger and the work files are on the volume (a re-created container keeps
    them), and the HEALTHCHECK's probe asks the port and address the bot serves `/healthz` on.
    """
    image = read_image()
    assert image.volumes == [PurePosixPath("/data")]
    assert image.healthcheck == ["python", "-m", "bot.ops.probe"]
    env = {**image.env, **read_env_file(env_example_copy(tmp_path))}
    settings = settings_in(env, monkeypatch, tmp_path)
    seen = outcome(settings, image.workdir)
    assert _on(seen.database, image.volumes), f"the ledger would be lost with the container: {seen.database}"
    assert _on(seen.sandbox_database, image.volumes), seen.sandbox_database
    assert _on(seen.work_dir, image.volumes), seen.work_dir
    assert seen.metrics == ("0.0.0.0", 9108), "metrics (and /healthz) must be served where Docker can probe"
    assert seen.probe_url == "http://127.0.0.1:9108/healthz"
    assert image.exposed == [9108]
    # With or without the --env-file, the same places: an operator who adds it later loses nothing.
    assert outcome(settings_in(image.env, monkeypatch, tmp_path), image.workdir) == seen


def test_relative_paths_an_operator_sets_still_land_on_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An `.env` written for a run outside Docker (relative paths, metrics on 9200) still keeps its data."""
    image = read_image()
    mine = tmp_path / "mine.env"
    mine.write_text("DATABASE_PATH=data/mine.sqlite3\nWORK_DIR=data/work\nMETRICS_PORT=9200\n")
    seen = outcome(settings_in({**image.env, **read_env_file(mine)}, monkeypatch, tmp_path), image.workdir)
    assert _on(seen.database, image.volumes) and _on(seen.work_dir, image.volumes), seen
    assert seen.probe_url == "http://127.0.0.1:9200/healthz"  # the probe follows the bot's port


def test_an_env_file_that_turns_metrics_off_turns_the_probe_off_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`METRICS_PORT=` (set, empty) stops the bot serving /healthz; the probe says so instead of asking 9108."""
    image = read_image()
    off = tmp_path / "off.env"
    off.write_text("METRICS_PORT=\n")
    settings_in({**image.env, **read_env_file(off)}, monkeypatch, tmp_path)
    assert probe.healthz_url() is None
    assert probe.main() == 1
    assert "METRICS_PORT is empty" in capsys.readouterr().out


def _compose_environment(service: Mapping[str, object]) -> dict[str, str]:
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dict(item.partition("=")[::2] for item in environment)
    assert isinstance(environment, dict)
    return {str(k): str(v) for k, v in environment.items()}


def test_compose_bots_keep_their_work_files_and_health_check_with_a_copied_env_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """compose.yaml: image ENV, then `env_file: .env` (a copy of `.env.example`), then `environment:`."""
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    image = read_image()
    copied = read_env_file(env_example_copy(tmp_path))
    bots = {name: service for name, service in compose["services"].items() if service.get("build")}
    assert len(bots) >= 1
    for name, service in bots.items():
        assert service.get("env_file") in (".env", [".env"]), name
        mounts = [PurePosixPath(str(volume).split(":")[1]) for volume in service.get("volumes", [])]
        env = {**image.env, **copied, **_compose_environment(service)}
        settings = settings_in(env, monkeypatch, tmp_path)
        seen = outcome(settings, image.workdir)
        assert settings.database_url is not None, f"{name}: the processes share PostgreSQL"
        assert _on(seen.work_dir, mounts), f"{name}: work files at {seen.work_dir}, not on {mounts}"
        assert seen.metrics is not None and seen.probe_url == f"http://127.0.0.1:{seen.metrics[1]}/healthz", name


@pytest.mark.parametrize("name", ["DATABASE_PATH", "WORK_DIR", "METRICS_PORT", "METRICS_HOST"])
def test_env_example_leaves_the_images_settings_alone(name: str) -> None:
    """No active line of `.env.example` names a setting the image owns: a copy can't move or stop them."""
    assert name in read_image().env
    assert name not in read_env_file(ROOT / ".env.example")
