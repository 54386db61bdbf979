"""Startup: how long `lipsync-bot render` takes to load, and its memory, beside the official SDK.

    .venv/bin/python -m bench.bench_startup [--repeat 9] [--before DIR]

Each side (`python`: an empty interpreter; `render --help`; `render path`: what `render` imports
before it starts work; `SDK client`: `import magic_hour` and its `Client`) runs in a fresh
interpreter, `--repeat` times in turn; the figures are medians of wall time from spawn to exit and
peak RSS (`ru_maxrss`). `--before DIR` also runs our sides from another checkout (say, `git
worktree add /tmp/before <commit>`), in the same run. docs/benchmarks.md, "Startup of `render`".
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RENDER_PATH = "import bot.__main__, bot.terminal"
SDK_CLIENT = "import magic_hour\nmagic_hour.Client(token='bench-key')"


@dataclass(frozen=True)
class Side:
    """One command to time, run from `cwd` (which decides which checkout `bot` is imported from)."""

    label: str
    argv: tuple[str, ...]
    cwd: Path


def sides(before: Path | None) -> list[Side]:
    """Every side of this run, `before` ones included when asked for."""
    python = sys.executable
    out = [Side("python", (python, "-c", "pass"), ROOT)]
    checkouts = [("before", before)] if before is not None else []
    checkouts.append(("after" if before is not None else "ours", ROOT))
    for tag, where in checkouts:
        out.append(Side(f"{tag}: render --help", (python, "-m", "bot", "render", "--help"), where))
        out.append(Side(f"{tag}: render path", (python, "-c", RENDER_PATH), where))
    out.append(Side("SDK client", (python, "-c", SDK_CLIENT), ROOT))
    return out


def run_once(side: Side) -> tuple[float, float]:
    """Seconds and peak RSS (MiB) of one run of `side` in a fresh process."""
    env = {**os.environ, "PYTHONPATH": str(side.cwd), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    proc = subprocess.Popen(side.argv, cwd=side.cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        error = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        raise RuntimeError(f"{side.label} failed ({proc.returncode}):\n{error[-2000:]}")
    if proc.stderr:
        proc.stderr.close()
    return seconds, usage.ru_maxrss / 1024  # KiB on Linux


def measure(all_sides: list[Side], repeat: int) -> dict[str, tuple[float, float]]:
    """Median seconds and peak RSS per side; each round runs every side once, in turn."""
    for side in all_sides:
        run_once(side)  # warm the file cache and compile bytecode caches where there are none
    times: dict[str, list[float]] = {side.label: [] for side in all_sides}
    peaks: dict[str, list[float]] = {side.label: [] for side in all_sides}
    for _ in range(repeat):
        for side in all_sides:
            seconds, peak = run_once(side)
            times[side.label].append(seconds)
            peaks[side.label].append(peak)
    return {label: (statistics.median(times[label]), statistics.median(peaks[label])) for label in times}


def main() -> int:
    """Measure every side and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=9, help="runs per side (default 9); medians are shown")
    parser.add_argument("--before", type=Path, help="another checkout of the project, measured as 'before'")
    args = parser.parse_args()
    all_sides = sides(args.before.resolve() if args.before else None)
    results = measure(all_sides, args.repeat)
    load = os.getloadavg()[0]
    print(
        f"\nStartup on {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()} "
        f"{platform.release()}, load average {load:.1f}, {dt.datetime.now(dt.UTC):%Y-%m-%d}; "
        f"medians of {args.repeat} runs\n"
    )
    print("| Side | Seconds | Peak RSS (MiB) |")
    print("|---|---:|---:|")
    for side in all_sides:
        seconds, peak = results[side.label]
        print(f"| {side.label} | {seconds:.3f} | {peak:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
