"""A throwaway PostgreSQL server for tests and benchmarks: `initdb` and `pg_ctl` in a temporary folder.

`TempPostgres().start()` makes a cluster listening only on a Unix socket in its own folder
(no TCP port, so nothing else on the machine can reach it and no port can clash), with
durability off (`fsync`, `synchronous_commit`, `full_page_writes`): it is thrown away after the
run. PostgreSQL refuses to run as root, so when the tests run as root (CI does) the cluster is
created and run as the unprivileged user `nobody`, through `runuser`.

The server binaries are looked for in `$PG_BINDIR`, then in Debian's `/usr/lib/postgresql/<n>/bin`
(newest first), then on `PATH`. `PostgresUnavailable` says why a server could not be started.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

_PORT = 5432  # only names the socket file: the server listens on no TCP port
_SETTINGS = (
    "-c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    " -c max_connections=300 -c shared_buffers=64MB"
)


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server could be started here."""


def find_bindir() -> Path:
    """The folder holding `initdb`, `pg_ctl` and `postgres`."""
    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: _version(p.parent.name), reverse=True)
    candidates.extend(debian)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise PostgresUnavailable(
        "PostgreSQL's server programs (initdb, pg_ctl) were not found: install the Debian package "
        "`postgresql`, or set PG_BINDIR to the folder that holds them"
    )


def _version(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in name.split(".") if part.isdigit())


class TempPostgres:
    """One throwaway cluster; `url(dbname)` reaches a database on it."""

    def __init__(self) -> None:
        self.bindir: Path | None = None
        self.base: Path | None = None
        self._as: list[str] = []
        self._names = itertools.count(1)

    @property
    def socket_dir(self) -> Path:
        """Where the server's Unix socket is."""
        assert self.base is not None, "start() first"
        return self.base

    def url(self, dbname: str = "postgres") -> str:
        """A `postgresql://` URL for one database, over the Unix socket, as the superuser `postgres`."""
        return f"postgresql://postgres@/{dbname}?host={self.socket_dir}&port={_PORT}"

    def start(self) -> TempPostgres:
        """initdb and start; raise `PostgresUnavailable` (with the server's log) if either fails."""
        self.bindir = find_bindir()
        self.base = Path(tempfile.mkdtemp(prefix="lipsync-pg-"))
        if os.geteuid() == 0:
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root, and `runuser` is missing to start PostgreSQL as `nobody`")
            nobody = pwd.getpwnam("nobody")
            os.chown(self.base, nobody.pw_uid, nobody.pw_gid)
            self._as = [runuser, "-u", "nobody", "--"]
        data = self.base / "data"
        self._run(
            [str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"],
            "initdb",
        )
        self.start_server()
        return self

    def _pg_ctl(self, *args: str) -> list[str]:
        assert self.bindir is not None and self.base is not None, "start() first"
        return [str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), *args]

    def _started(self, action: str, *args: str) -> None:
        assert self.base is not None
        options = f"-k {self.base} -p {_PORT} {_SETTINGS}"
        # The server's output goes to its log file: a pipe would keep `_run` waiting for its end.
        self._run(self._pg_ctl("-l", str(self.base / "server.log"), "-o", options, "-w", *args, action), action)

    def start_server(self) -> None:
        """Start the cluster's server (again): `start()` does it once; an outage test calls it after `stop_server`."""
        self._started("start")

    def stop_server(self, mode: str = "fast") -> None:
        """Stop the server but keep its data (an outage until `start_server`); `mode` as pg_ctl's `-m`."""
        self._run(self._pg_ctl("-m", mode, "-w", "stop"), "stop")

    def restart(self, mode: str = "fast") -> None:
        """Restart the server: every connection is cut (`fast`: as an operator's restart; `immediate`: a crash)."""
        self._started("restart", "-m", mode)

    def _run(self, command: list[str], what: str) -> None:
        env = {**os.environ, "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}
        done = subprocess.run([*self._as, *command], capture_output=True, text=True, env=env, check=False)
        if done.returncode != 0:
            log = ""
            if self.base is not None and (self.base / "server.log").exists():
                log = (self.base / "server.log").read_text(errors="replace")[-2000:]
            raise PostgresUnavailable(f"PostgreSQL {what} failed:\n{done.stdout}{done.stderr}{log}")

    def new_database_name(self) -> str:
        """A name no database on this cluster has had yet."""
        return f"t{os.getpid()}_{next(self._names)}"

    def stop(self) -> None:
        """Stop the server at once and remove its folder."""
        if self.bindir is not None and self.base is not None and (self.base / "data").exists():
            with contextlib.suppress(PostgresUnavailable):
                self._run(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.base / "data"), "-m", "immediate", "stop"], "stop"
                )
        if self.base is not None:
            shutil.rmtree(self.base, ignore_errors=True)
            self.base = None


@contextlib.contextmanager
def running_postgres() -> Iterator[TempPostgres]:
    """A started server for a test, stopped after it. Where PostgreSQL can't start, the test is
    skipped on a developer's machine and fails in CI (`CI` set): there it must run."""
    import pytest

    server = TempPostgres()
    try:
        server.start()
    except PostgresUnavailable as exc:
        server.stop()
        if os.environ.get("CI"):
            pytest.fail(f"CI must run the PostgreSQL tests, but: {exc}", pytrace=False)
        pytest.skip(f"PostgreSQL is not available: {exc}")
    try:
        yield server
    finally:
        server.stop()


async def create_database(server: TempPostgres, name: str | None = None) -> str:
    """A new empty database on `server`; its URL."""
    import asyncpg

    name = name or server.new_database_name()
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    finally:
        await conn.close()
    return server.url(name)


async def drop_database(server: TempPostgres, url: str) -> None:
    """Drop the database `url` names (closing whatever is still connected to it)."""
    import asyncpg

    name = url.split("/", 3)[3].split("?", 1)[0]
    conn = await asyncpg.connect(server.url())
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()
