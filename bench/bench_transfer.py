"""Peak memory and speed of moving a 1 GiB file: our `MagicHourClient` beside the official SDK and curl.

    .venv/bin/python -m bench.bench_transfer [--size-mib 1024] [--dir /tmp] [--repeat 1]
        [--sides ours-download,curl-download] [--before DIR]

The sandbox runs in its own process (`--serve`) and each side in a fresh interpreter (`--side`)
that reports its own peak RSS, CPU and page faults; sides: `ours-upload`, `ours-download`,
`sdk-upload`, `sdk-download`, `curl-download` (the speed the machine allows), and with `--before
DIR`, `before-download` (`ours-download` from another checkout). `--repeat N` shows medians.
docs/benchmarks.md, "Transfers" and "Downloads beside curl", describes each side.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import platform
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

API_KEY = "bench-sandbox-key"
MiB = 1024 * 1024
SIDES = ("ours-upload", "ours-download", "sdk-upload", "sdk-download", "curl-download", "before-download")
DEFAULT_SIDES = SIDES[:5]
OUR_PEAK_LIMIT_MIB = 100


# --- measuring, inside a side's own process -----------------------------------------------------


def _proc_status_kib(field: str) -> int:
    """A `Vm*` figure of this process from /proc/self/status, in KiB (Linux)."""
    try:
        with open("/proc/self/status") as handle:
            for line in handle:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    # Elsewhere: ru_maxrss is the peak (KiB on Linux, bytes on macOS); no current figure.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _page_faults() -> int:
    """Minor page faults of this process so far: each is a page of memory the kernel had to map."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _report(side: str, started_rss_kib: int, seconds: float, cpu: float, faults: int, size: int, detail: str) -> None:
    peak_kib = _proc_status_kib("VmHWM")
    result = {
        "side": side,
        "peak_rss_mib": peak_kib / 1024,
        "start_rss_mib": started_rss_kib / 1024,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "page_faults": faults,
        "bytes": size,
        "detail": detail,
    }
    print(json.dumps(result))


async def _ours_upload(base_url: str, source: Path) -> tuple[float, str]:
    from pydantic import SecretStr

    from bot.magichour import MagicHourClient, UploadItem

    async with MagicHourClient(SecretStr(API_KEY), base_url) as mh:
        started = time.perf_counter()
        (url,) = await mh.create_upload_urls([UploadItem(type="video", extension="mp4")])
        await mh.upload_file(url.upload_url, source)
        return time.perf_counter() - started, url.file_path


async def _ours_download(base_url: str, project_id: str, out_dir: Path) -> tuple[float, str]:
    from pydantic import SecretStr

    from bot.magichour import MagicHourClient

    async with MagicHourClient(SecretStr(API_KEY), base_url) as mh:
        started = time.perf_counter()
        project = await mh.get_video_project(project_id)
        assert project.download_url is not None
        dest = out_dir / "ours-result.mp4"
        await mh.download(project.download_url, dest)
        return time.perf_counter() - started, str(dest)


def _sdk_upload(base_url: str, source: Path) -> tuple[float, str]:
    from magic_hour import Client

    client = Client(token=API_KEY, base_url=base_url)
    started = time.perf_counter()
    file_path = client.v1.files.upload_file(source)
    return time.perf_counter() - started, str(file_path)


def _sdk_download(base_url: str, project_id: str, out_dir: Path) -> tuple[float, str]:
    from magic_hour import Client

    client = Client(token=API_KEY, base_url=base_url)
    started = time.perf_counter()
    result = client.v1.video_projects.check_result(
        id=project_id, wait_for_completion=True, download_outputs=True, download_directory=str(out_dir)
    )
    paths = result.downloaded_paths or []
    return time.perf_counter() - started, str(paths[0]) if paths else ""


def run_side(args: argparse.Namespace) -> None:
    """One measured side, in a fresh process: import what the side needs, do the work, report."""
    side: str = args.side
    # Import the side's libraries before the baseline, so "start" is the interpreter plus imports.
    if side.startswith("ours"):
        import bot.magichour  # noqa: F401
    else:
        import magic_hour  # noqa: F401
    start_kib = _proc_status_kib("VmRSS")
    cpu_before = _cpu_seconds()
    faults_before = _page_faults()
    source = Path(args.file)
    out_dir = Path(args.out_dir)
    if side == "ours-upload":
        seconds, detail = asyncio.run(_ours_upload(args.base_url, source))
    elif side == "ours-download":
        seconds, detail = asyncio.run(_ours_download(args.base_url, args.project_id, out_dir))
    elif side == "sdk-upload":
        seconds, detail = _sdk_upload(args.base_url, source)
    else:
        seconds, detail = _sdk_download(args.base_url, args.project_id, out_dir)
    cpu, faults = _cpu_seconds() - cpu_before, _page_faults() - faults_before
    _report(side, start_kib, seconds, cpu, faults, source.stat().st_size, detail)


# --- the sandbox, in its own process ------------------------------------------------------------


def run_sandbox(data_dir: Path) -> None:
    """Serve a sandbox until SIGINT/SIGTERM (used as `--serve DIR`)."""
    from bot.sandbox import SandboxConfig, serve_forever

    config = SandboxConfig(api_key=API_KEY, credits=10**9, max_upload_bytes=64 * 2**30)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_forever(config, data_dir, host="127.0.0.1", port=0, storage_port=0))


def _start_sandbox(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.bench_transfer", "--serve", str(data_dir)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    base_url = ""
    for line in proc.stdout:
        if "API base URL:" in line:
            base_url = line.split("API base URL:", 1)[1].strip()
        if "Press Ctrl-C" in line:
            break
    if not base_url:
        proc.kill()
        raise RuntimeError("the sandbox did not start")
    return proc, base_url


def _stop_sandbox(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _peak_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as handle:
            for line in handle:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _cpu_of(pid: int) -> float:
    """User + system CPU seconds of another process so far (Linux; NaN elsewhere)."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _warm(path: Path) -> None:
    """Read `path` once, so every side is served from the page cache.

    The first read of a sparse file makes the kernel fill a gigabyte of page cache with zeros
    (seconds of the sandbox's CPU on this kind of machine), which would land on whichever side
    happens to run first.
    """
    with path.open("rb", buffering=0) as handle:
        while handle.read(8 * MiB):
            pass


async def _prepare_download(base_url: str, data_dir: Path, work: Path, size: int) -> str:
    """A finished sandbox project whose result is a sparse file of `size` bytes; return its id."""
    from pydantic import SecretStr

    from bot.magichour import LipSyncRequest, MagicHourClient, UploadItem
    from bot.testmedia import make_audio, make_sparse_file, make_video

    video = await make_video(work / "face.mp4", seconds=1.0)
    audio = await make_audio(work / "voice.mp3", seconds=1.0)
    async with MagicHourClient(SecretStr(API_KEY), base_url) as mh:
        video_url, audio_url = await mh.create_upload_urls(
            [UploadItem(type="video", extension="mp4"), UploadItem(type="audio", extension="mp3")]
        )
        await mh.upload_file(video_url.upload_url, video)
        await mh.upload_file(audio_url.upload_url, audio)
        job = await mh.create_lip_sync(
            LipSyncRequest.from_paths(
                audio_file_path=audio_url.file_path,
                video_file_path=video_url.file_path,
                start_seconds=0.0,
                end_seconds=1.0,
            )
        )
        project = await mh.get_video_project(job.id)
        if not project.is_complete:
            raise RuntimeError(f"sandbox project ended {project.status}: {project.error}")
    # The sandbox keeps results as outputs/sandbox-<id>.mp4 and serves whatever file is there.
    (result,) = (data_dir / "outputs").glob(f"*{job.id}*")
    make_sparse_file(result, size)
    _warm(result)
    return job.id


def _run_measured(
    side: str, base_url: str, source: Path, project_id: str, out_dir: Path, before: Path | None
) -> dict[str, object]:
    if side == "curl-download":
        return _run_curl(base_url, project_id, out_dir, source.stat().st_size)
    where = before if side == "before-download" else None
    completed = subprocess.run(
        [
            sys.executable,
            # This file by path, so another checkout's side is measured by this benchmark's code.
            str(Path(__file__).resolve()),
            "--side",
            "ours-download" if side == "before-download" else side,
            "--base-url",
            base_url,
            "--file",
            str(source),
            "--project-id",
            project_id,
            "--out-dir",
            str(out_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
        # Another checkout's `bot`: its cwd and its path come first.
        cwd=where,
        env={**os.environ, "PYTHONPATH": str(where)} if where is not None else None,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{side} failed:\n{completed.stderr[-3000:]}")
    result: dict[str, object] = json.loads(completed.stdout.strip().splitlines()[-1])
    result["side"] = side
    return result


def _run_curl(base_url: str, project_id: str, out_dir: Path, size: int) -> dict[str, object]:
    """curl fetching the same signed URL (fresh from a project read), timed and measured from outside."""
    curl = shutil.which("curl")
    if curl is None:
        raise RuntimeError("curl is not installed (Debian: apt-get install curl)")
    url = asyncio.run(_download_url(base_url, project_id))
    dest = out_dir / "curl-result.mp4"
    # GNU time reports curl's own peak RSS (a child forked from this process would count ours).
    gnu_time = shutil.which("time") or ("/usr/bin/time" if Path("/usr/bin/time").exists() else None)
    peak_file = out_dir / "curl-peak.txt"
    prefix = [gnu_time, "--format=%M", f"--output={peak_file}"] if gnu_time else []
    started = time.perf_counter()
    proc = subprocess.Popen([*prefix, curl, "--silent", "--show-error", "--fail", "--output", str(dest), url])
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"curl failed ({os.waitstatus_to_exitcode(status)})")
    peak = int(peak_file.read_text().split()[-1]) / 1024 if gnu_time else float("nan")
    return {
        "side": "curl-download",
        "peak_rss_mib": peak,
        "start_rss_mib": float("nan"),
        "seconds": seconds,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
        "page_faults": usage.ru_minflt,
        "bytes": size,
        "detail": str(dest),
    }


async def _download_url(base_url: str, project_id: str) -> str:
    from pydantic import SecretStr

    from bot.magichour import MagicHourClient

    async with MagicHourClient(SecretStr(API_KEY), base_url) as mh:
        project = await mh.get_video_project(project_id)
    assert project.download_url is not None
    return project.download_url


def _chosen_sides(args: argparse.Namespace) -> tuple[list[str], Path | None]:
    """The sides to run, in order, and the other checkout `before-download` runs from (if any)."""
    chosen = [side for side in args.sides.split(",") if side]
    unknown = [side for side in chosen if side not in SIDES]
    if unknown:
        raise SystemExit(f"unknown sides: {unknown}; choose from {SIDES}")
    before = Path(args.before).resolve() if args.before else None
    if before is not None and "before-download" not in chosen:
        chosen.insert(0, "before-download")
    if before is None and "before-download" in chosen:
        raise SystemExit("before-download needs --before DIR")
    return chosen, before


def _check_and_free(side: str, result: dict[str, object], data_dir: Path, size: int) -> None:
    """Check the work was really done, then free the disk space it used."""
    detail = str(result["detail"])
    if side.endswith("upload"):
        stored = data_dir / "uploads" / detail
        assert stored.stat().st_size == size, f"{side}: stored {stored.stat().st_size} bytes"
        stored.unlink()
    else:
        got = Path(detail)
        assert got.stat().st_size == size, f"{side}: downloaded {got.stat().st_size} bytes"
        got.unlink()


def orchestrate(args: argparse.Namespace) -> int:
    """Run every chosen side (`--repeat` times, in turn) against one sandbox process and print the table."""
    size = args.size_mib * MiB
    chosen, before = _chosen_sides(args)
    with tempfile.TemporaryDirectory(prefix="bench-transfer-", dir=args.dir) as tmp_name:
        tmp = Path(tmp_name)
        data_dir, out_dir, work = tmp / "sandbox", tmp / "out", tmp / "work"
        for folder in (data_dir, out_dir, work):
            folder.mkdir()
        from bot.testmedia import make_sparse_file

        source = make_sparse_file(work / "big.mp4", size)
        proc, base_url = _start_sandbox(data_dir)
        results: list[dict[str, object]] = []
        try:
            project_id = asyncio.run(_prepare_download(base_url, data_dir, work, size))
            for _ in range(args.repeat):
                for side in chosen:
                    server_before = _cpu_of(proc.pid)
                    result = _run_measured(side, base_url, source, project_id, out_dir, before)
                    result["server_cpu_seconds"] = _cpu_of(proc.pid) - server_before
                    _check_and_free(side, result, data_dir, size)
                    results.append(result)
                    print(f"  {side}: {float(str(result['seconds'])):.2f} s", file=sys.stderr)
            sandbox_peak = _peak_of(proc.pid)
        finally:
            _stop_sandbox(proc)
            shutil.rmtree(data_dir, ignore_errors=True)

    print_table(results, chosen, size, sandbox_peak, args.repeat)
    ours = [float(str(r["peak_rss_mib"])) for r in results if str(r["side"]).startswith("ours")]
    if ours and max(ours) >= OUR_PEAK_LIMIT_MIB:
        print(f"FAIL: our client peaked at {max(ours):.0f} MiB (limit {OUR_PEAK_LIMIT_MIB} MiB)")
        return 1
    return 0


def _figure(result: dict[str, object], key: str) -> float:
    return float(str(result.get(key, "nan")))


def print_table(
    results: list[dict[str, object]], sides: list[str], size: int, sandbox_peak: float, repeat: int
) -> None:
    """The figures as a Markdown table (medians over the runs), with the machine they were measured on."""
    print(
        f"\nTransfer of {size / MiB:.0f} MiB through the sandbox on {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}, "
        f"load average {os.getloadavg()[0]:.1f}, {dt.datetime.now(dt.UTC):%Y-%m-%d}; "
        f"medians of {repeat} run(s)\n"
    )
    curl = [_figure(r, "seconds") for r in results if r["side"] == "curl-download"]
    curl_median = statistics.median(curl) if curl else None
    print(
        "| Side | Peak RSS (MiB) | After imports (MiB) | Growth (MiB) | Seconds | CPU s | Page faults "
        "| Sandbox CPU s | MiB/s | × curl | Runs (s) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for side in sides:
        mine = [r for r in results if r["side"] == side]
        peak = statistics.median(_figure(r, "peak_rss_mib") for r in mine)
        start = statistics.median(_figure(r, "start_rss_mib") for r in mine)
        seconds = statistics.median(_figure(r, "seconds") for r in mine)
        cpu = statistics.median(_figure(r, "cpu_seconds") for r in mine)
        faults = statistics.median(_figure(r, "page_faults") for r in mine)
        server = statistics.median(_figure(r, "server_cpu_seconds") for r in mine)
        ratio = f"{seconds / curl_median:.2f}" if curl_median and side.endswith("download") else ""
        runs = ", ".join(f"{_figure(r, 'seconds'):.2f}" for r in mine)
        print(
            f"| {side} | {peak:.1f} | {start:.1f} | {peak - start:.1f} | {seconds:.2f} | {cpu:.2f} | "
            f"{faults:,.0f} | {server:.2f} | {size / MiB / seconds:.0f} | {ratio} | {runs} |"
        )
    print(f"\nSandbox process peak RSS over the whole run: {sandbox_peak:.1f} MiB")


def main() -> int:
    """Parse arguments and run the orchestrator, one side, or the sandbox."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size-mib", type=int, default=1024, help="file size in MiB (default 1024)")
    parser.add_argument("--dir", default=None, help="where to put temporary files (default: system temp)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per side, in turn (default 1); medians shown")
    parser.add_argument(
        "--sides", default=",".join(DEFAULT_SIDES), help=f"comma-separated, from {', '.join(SIDES)} (default: all)"
    )
    parser.add_argument("--before", metavar="DIR", help="another checkout: adds before-download, its ours-download")
    parser.add_argument("--serve", metavar="DATA_DIR", help=argparse.SUPPRESS)
    parser.add_argument("--side", choices=SIDES, help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--project-id", help=argparse.SUPPRESS)
    parser.add_argument("--out-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run_sandbox(Path(args.serve))
        return 0
    if args.side:
        run_side(args)
        return 0
    return orchestrate(args)


if __name__ == "__main__":
    sys.exit(main())
