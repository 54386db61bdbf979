"""Probing hostile media: peak memory and time of the bounded probe on each file of the corpus.

Run: `.venv/bin/python -m bench.bench_hostile_media` (add `--unbounded` to also time plain PyAV,
as the bot used to probe, on the worst file: it takes gigabytes). The corpus is
`bot.testmedia_hostile.CORPUS`, generated into a temporary folder, with two ordinary files at the
frame-size limit for comparison. Each file is probed by a fresh
process (as the bot would, `probe_video`/`probe_audio`) that reports its own peak RSS and its
probe child's (`VmHWM` via `getrusage`), and the wall time of the probe. Then four probes of the
worst file at once, as four jobs would run. Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bot.testmedia import run_ffmpeg
from bot.testmedia_hostile import CORPUS, make_corpus

WORST = "bomb-16k.mov"

ONE = """
import asyncio, json, resource, sys, time
from pathlib import Path
from bot.media import probe_audio, probe_video

async def main(slot, path):
    probe = probe_video if slot == "video" else probe_audio
    started = time.perf_counter()
    try:
        await probe(Path(path), filename=Path(path).name)
        outcome = "read"
    except Exception as exc:
        outcome = getattr(exc, "code", type(exc).__name__)
    seconds = time.perf_counter() - started
    self_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"outcome": outcome, "seconds": seconds, "bot_mib": self_mib, "probe_mib": child_mib}))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""

UNBOUNDED = """
import json, resource, sys, time
import av
started = time.perf_counter()
try:
    with av.open(sys.argv[1]) as container:
        outcome = f"opened: {len(container.streams)} streams"
except Exception as exc:
    outcome = type(exc).__name__
seconds = time.perf_counter() - started
mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"outcome": outcome, "seconds": seconds, "mib": mib}))
"""


def run(script: str, *args: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True, timeout=300
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


async def concurrent(path: Path, count: int) -> tuple[float, list[dict[str, object]]]:
    started = time.perf_counter()
    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", ONE, "video", str(path), stdout=asyncio.subprocess.PIPE
        )
        for _ in range(count)
    ]
    outputs = [json.loads((await p.communicate())[0]) for p in processes]
    return time.perf_counter() - started, outputs


async def largest_accepted(folder: Path) -> list[tuple[str, str, Path]]:
    """Ordinary files at the frame-size limit, for comparison: what a big legitimate probe costs."""
    uhd, square = folder / "4k.mp4", folder / "4096-444.webm"
    source = ["-f", "lavfi", "-i"]
    h264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac"]
    vp9 = ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-pix_fmt", "yuv444p"]
    await run_ffmpeg(
        [*source, "testsrc2=size=3840x2160:rate=30:duration=2", *source, "sine=duration=2", *h264, str(uhd)]
    )
    await run_ffmpeg([*source, "testsrc2=size=4096x4096:rate=30:duration=1", *vp9, str(square)])
    return [
        ("4k.mp4", "accepted: 2 s of 3840×2160 H.264 and AAC", uhd),
        ("4096-444.webm", "accepted: 1 s of 4096×4096 VP9 4:4:4", square),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--unbounded", action="store_true", help="also open the worst file with plain PyAV")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-hostile-") as tmp:
        files = asyncio.run(make_corpus(Path(tmp)))
        print(f"{os.cpu_count()} cores\n")
        print("| File | What it is | Outcome | Probe child peak (MiB) | Bot process peak (MiB) | Seconds |")
        print("|---|---|---|---:|---:|---:|")
        rows = [(item.name, item.what, item.slot, files[item.name]) for item in CORPUS]
        rows += [(name, what, "video", path) for name, what, path in asyncio.run(largest_accepted(Path(tmp)))]
        for name, what, slot, path in rows:
            result = run(ONE, slot, str(path))
            print(
                f"| `{name}` | {what} | `{result['outcome']}` | {result['probe_mib']:.0f} | "
                f"{result['bot_mib']:.0f} | {result['seconds']:.2f} |"
            )
        seconds, outputs = asyncio.run(concurrent(files[WORST], 4))
        peak = max(float(o["probe_mib"]) for o in outputs)  # type: ignore[arg-type]
        slowest = max(float(o["seconds"]) for o in outputs)  # type: ignore[arg-type]
        print(f"\nFour probes of `{WORST}` at once: {seconds:.2f} s in all, slowest {slowest:.2f} s,", end=" ")
        print(f"peak child {peak:.0f} MiB")
        if args.unbounded:
            result = run(UNBOUNDED, str(files[WORST]))
            print(
                f"Plain PyAV on `{WORST}` (no bounds): {result['outcome']}, "
                f"{result['mib']:.0f} MiB, {result['seconds']:.2f} s"
            )


if __name__ == "__main__":
    main()
