"""Dependency floors: the libraries that face the network or members' files stay past known advisories."""

from __future__ import annotations

import tomllib
from importlib.metadata import version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# The first release with every advisory known when this was written fixed: aiohttp serves the
# webhook and metrics ports; PyAV's wheels bundle the FFmpeg that reads members' files.
PAST_ADVISORIES = {"aiohttp": Version("3.14.3"), "av": Version("18.1")}


def floors() -> dict[str, Version]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    found = {}
    for line in project["dependencies"]:
        requirement = Requirement(line)
        lows = [Version(spec.version) for spec in requirement.specifier if spec.operator == ">="]
        if lows:
            found[requirement.name] = max(lows)
    return found


@pytest.mark.parametrize("name", sorted(PAST_ADVISORIES))
def test_floors_are_past_known_advisories(name: str) -> None:
    assert floors()[name] >= PAST_ADVISORIES[name]
    assert Version(version(name)) >= PAST_ADVISORIES[name]  # and what is installed meets it
