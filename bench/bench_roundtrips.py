"""Database round trips of one lip-sync job, from submit to delivery, on SQLite and PostgreSQL, by call site.

    python -m bench.bench_roundtrips [--jobs 5] [--backends sqlite,postgresql] [--before DIR] [--sites]

Each backend runs in a fresh child process: the bot's services against an in-process sandbox
(instant renders), `--jobs` jobs one after another, each counted from `engine.submit` until
`engine.wait` returns. A round trip is one statement reaching the database driver, transaction
control included (`bot.store.trips`). Trips the process makes whatever it runs (its heartbeat,
the lease and cancel loops) are shown apart as "background"; "per job" is everything else.
`--before DIR` runs the same children on another checkout's `bot` (e.g. `git archive` of the
commit before a change), counted by this checkout's counter. PostgreSQL is a throwaway server
(`tests/store/pgserver.py`).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench-key"


def load_counter() -> Any:
    """This checkout's counter, whichever checkout's `bot` is imported."""
    spec = importlib.util.spec_from_file_location("trips_counter", ROOT / "bot" / "store" / "trips.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def run_child(backend: str, url: str | None, jobs: int) -> dict[str, Any]:
    from pydantic import SecretStr

    from bot.config import Settings
    from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, JobUpdate, LinkProvider
    from bot.sandbox import Sandbox, SandboxConfig
    from bot.services import Services
    from bot.store import JobRecord, JobState
    from bot.testmedia import make_audio, make_video

    trips = load_counter()

    class Quiet:
        async def update(self, update: JobUpdate) -> None:
            return None

    class Discard:
        async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
            if result is not None:
                result.unlink()
            return Delivery(kind="local")

    with tempfile.TemporaryDirectory(prefix="bench-trips-") as tmp:
        work = Path(tmp)
        await make_video(work / "face.mp4", seconds=2.0, fps=30, size=(160, 120))
        await make_audio(work / "voice.mp3", seconds=1.5)
        async with Sandbox(SandboxConfig(api_key=KEY), data_dir=work / "sandbox") as sandbox:
            settings = Settings(
                _env_file=None,  # type: ignore[call-arg]
                magic_hour_api_key=SecretStr(KEY),
                magic_hour_base_url=sandbox.base_url,
                database_path=work / "bot.sqlite3",
                database_url=None if url is None else SecretStr(url),
                work_dir=work / "jobs",
                poll_initial_seconds=0.05,
                poll_max_seconds=0.1,
                default_member_credits=10**6,
            )
            async with await Services.open(settings) as services:
                counter = trips.TripCounter().attach(services.store)
                per_job: list[int] = []
                sites: dict[str, int] = {}
                statements: dict[str, int] = {}
                background = 0
                for index in range(jobs + 1):  # the first warms up (statement caches, history)
                    request = JobRequest(
                        user_id=1,
                        guild_id=1,
                        video=InputSource(filename="face.mp4", path=work / "face.mp4"),
                        audio=InputSource(filename="voice.mp3", path=work / "voice.mp3"),
                    )
                    counter.reset()
                    record = await services.engine.submit(request, JobHooks(sink=Quiet(), deliverer=Discard()))
                    final = await services.engine.wait(record.id)
                    assert final.state is JobState.DONE, final
                    if index == 0:
                        continue
                    per_job.append(counter.foreground)
                    background += counter.total - counter.foreground
                    for site, n in counter.sites.items():
                        sites[site] = sites.get(site, 0) + n
                    for sql, n in counter.statements.items():
                        statements[sql] = statements.get(sql, 0) + n
    return {
        "backend": backend,
        "per_job": per_job,
        "background": background / jobs,
        "sites": {s: n / jobs for s, n in sites.items()},
        "statements": {s: n / jobs for s, n in statements.items()},
    }


def child_main(args: argparse.Namespace) -> None:
    figures = asyncio.run(run_child(args.backend, args.url, args.jobs))
    print(json.dumps(figures), flush=True)


def run_side(code: Path, backend: str, url: str | None, jobs: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(code)}
    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--backend", backend, "--jobs", str(jobs)]
    if url is not None:
        command += ["--url", url]
    out = subprocess.run(command, env=env, cwd=code, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{backend} on {code} failed:\n{out.stderr[-3000:]}")
    figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return figures


def parent(args: argparse.Namespace) -> None:
    sides = [("after", ROOT)] + ([("before", Path(args.before).resolve())] if args.before else [])
    backends = args.backends.split(",")
    server = None
    results: list[tuple[str, dict[str, Any]]] = []
    try:
        for backend in backends:
            for label, code in sides:
                url = None
                if backend == "postgresql":
                    if server is None:
                        sys.path.insert(0, str(ROOT))
                        from tests.store.pgserver import TempPostgres

                        server = TempPostgres().start()
                    from tests.store.pgserver import create_database

                    url = asyncio.run(create_database(server))
                results.append((label, run_side(code, backend, url, args.jobs)))
    finally:
        if server is not None:
            server.stop()
    print(
        f"{args.jobs} jobs each, one at a time, instant sandbox renders;"
        f" Python {sys.version.split()[0]}, {os.cpu_count()} cores"
    )
    print(f"{'side':8} {'backend':11} {'trips/job':>10} {'min':>5} {'max':>5} {'background/job':>15}")
    for label, f in results:
        per = f["per_job"]
        print(
            f"{label:8} {f['backend']:11} {sum(per) / len(per):>10.1f} {min(per):>5} {max(per):>5}"
            f" {f['background']:>15.1f}"
        )
    if args.sites:
        for label, f in results:
            print(f"\n{label} / {f['backend']}: round trips per job by call site")
            for site, n in sorted(f["sites"].items(), key=lambda item: -item[1]):
                print(f"  {n:6.1f}  {site}")
            print("  by statement:")
            for sql, n in sorted(f["statements"].items(), key=lambda item: -item[1])[:25]:
                print(f"  {n:6.1f}  {sql}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=5)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--before", help="another checkout to count too (its `bot` package)")
    parser.add_argument("--sites", action="store_true", help="also print the trips by call site and statement")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--backend", default="sqlite")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.child:
        child_main(args)
    else:
        parent(args)


if __name__ == "__main__":
    main()
