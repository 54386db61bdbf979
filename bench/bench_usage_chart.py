"""The managers' usage chart: what the first chart in a process costs, and what each later one costs.

Run from the repository root: `.venv/bin/python -m bench.bench_usage_chart` (`--repeat N`). Each
repeat starts a fresh interpreter that imports the bot's chart module (matplotlib is not imported
yet), then draws one chart (the import of matplotlib and the first drawing), then five more, and
reports the seconds of each step and the PNG's size. The chart: 31 days, 20 members (8 named, the
rest as "others"), a pool line: a busy server's month.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys

_CHILD = """
import datetime as dt, json, sys, time
t0 = time.perf_counter()
from bot.store import DailyUsage
from cogs.manage._chart import draw_png, csv_text
t1 = time.perf_counter()
assert 'matplotlib' not in sys.modules
days = tuple(dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(31))
by_member = {m: tuple((m * 7 + d * 13) % 90 for d in range(31)) for m in range(1, 21)}
daily = DailyUsage(days, by_member, 5000, tuple(max(0, 5000 - 40 * d) for d in range(31)))
labels = {m: f"member {m}" for m in by_member}
png = draw_png(daily, labels)
t2 = time.perf_counter()
for _ in range(5):
    draw_png(daily, labels)
t3 = time.perf_counter()
csv_text(daily, labels)
t4 = time.perf_counter()
figures = {"import": t1 - t0, "first": t2 - t1, "later": (t3 - t2) / 5, "csv": t4 - t3}
print(json.dumps({**figures, "png_kib": len(png) / 1024}))
"""


def main() -> None:
    """Run the repeats and print the medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True, check=True)
        runs.append(json.loads(out.stdout))
    print(f"{platform.machine()} · Python {platform.python_version()} · {args.repeat} fresh interpreters, medians:")
    for key, label in (
        ("import", "import the chart module (no matplotlib)"),
        ("first", "first chart (imports matplotlib)"),
        ("later", "each later chart"),
        ("csv", "the CSV"),
    ):
        print(f"  {label}: {statistics.median(run[key] for run in runs):.3f} s")
    print(f"  PNG size: {statistics.median(run['png_kib'] for run in runs):.0f} KiB")


if __name__ == "__main__":
    main()
