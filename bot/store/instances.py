"""The processes sharing the database, each with a heartbeat: who is alive is read here, judged elsewhere.

Every process that runs jobs registers one row under a random id (`JobStore.owner`: its job claims
name it) and bumps the row's `beats` counter at every heartbeat, one small write per heartbeat
however many jobs it runs. Nothing here compares clocks: another process decides that this one is
dead when the counter stands still for long enough by its own clock (`bot.jobs.leases`), then
deletes the row with `forget`, only if the counter is still the one it saw. A claim whose process
has no row is void, so its jobs are then claimable (`JobStore.claim`).

The heartbeat also brings back, in the same transaction, what the process must act on about the
jobs it runs: which of them another process has claimed (it lets them go), and which a member
asked to cancel through another process (it cancels them).
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from bot.store.db import Connection, Database, fetch_all, parse_ts


def new_instance_id() -> str:
    """A random id for this process: never derived from the host or pid (containers share both)."""
    return secrets.token_hex(8)


@dataclass(frozen=True, slots=True)
class Instance:
    """One registered process, as its row says."""

    id: str
    name: str
    host: str
    pid: int
    started_at: dt.datetime
    beats: int
    beat_at: dt.datetime


@dataclass(frozen=True, slots=True)
class Beat:
    """What one heartbeat wrote and read back.

    `beats`: every registered process's counter (this one's included). `registered_again`: this
    process's row had been deleted (others took it for dead) and was written anew. `claims`: who
    holds each watched job now (None: nobody). `cancels`: watched jobs a member asked to cancel,
    with who asked.
    """

    beats: dict[str, int]
    registered_again: bool = False
    claims: dict[int, str | None] = field(default_factory=dict)
    cancels: dict[int, int] = field(default_factory=dict)


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class InstanceStore:
    """This process's row and everyone's heartbeats. Reach it as `store.instances`."""

    def __init__(self, db: Database, instance_id: str, name: str | None = None) -> None:
        self._db = db
        self.id = instance_id
        self.name = name or socket.gethostname()

    async def _insert(self, conn: Connection, beats: int) -> None:
        now = self._db.now()
        await conn.execute(
            "INSERT INTO instances (id, name, host, pid, started_at, beats, beat_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
            " ON CONFLICT (id) DO UPDATE SET beats = excluded.beats, beat_at = excluded.beat_at",
            (self.id, self.name, socket.gethostname(), os.getpid(), now, beats, now),
        )

    async def register(self) -> None:
        """Write this process's row (again, if it exists): its claims count from now on."""
        await self._db.write(lambda conn: self._insert(conn, 0))

    async def beat(self, watching: Sequence[int] = ()) -> Beat:
        """One heartbeat: bump this process's counter (re-registering if its row is gone), and read
        every process's counter, and the claims and cancel requests of the jobs in `watching`."""
        ids = list(watching)

        async def body(conn: Connection) -> Beat:
            bumped = await conn.execute(
                "UPDATE instances SET beats = beats + 1, beat_at = ? WHERE id = ?", (self._db.now(), self.id)
            )
            if not bumped:
                # Taken for dead while it was frozen or cut off: a higher count than anyone saw.
                await self._insert(conn, secrets.randbelow(2**31) + 1)
            beats = {str(r[0]): int(r[1]) for r in await fetch_all(conn, "SELECT id, beats FROM instances")}
            claims: dict[int, str | None] = {}
            cancels: dict[int, int] = {}
            if ids:
                rows = await fetch_all(
                    conn,
                    f"SELECT id, claimed_by, cancel_requested_by FROM jobs WHERE id IN ({_marks(ids)})",  # noqa: S608
                    ids,
                )
                for row in rows:
                    claims[int(row[0])] = None if row[1] is None else str(row[1])
                    if row[2] is not None:
                        cancels[int(row[0])] = int(row[2])
            return Beat(beats, registered_again=not bumped, claims=claims, cancels=cancels)

        return await self._db.write(body)

    async def forget(self, stale: Mapping[str, int]) -> list[str]:
        """Delete the rows of processes taken for dead, each only if its counter is still the one seen.

        A process that beat in the meantime is alive after all and keeps its row (and its claims).
        Returns the ids deleted: their claims are void from now on.
        """
        if not stale:
            return []

        async def body(conn: Connection) -> list[str]:
            gone: list[str] = []
            for instance_id, beats in stale.items():
                if instance_id != self.id and await conn.execute(
                    "DELETE FROM instances WHERE id = ? AND beats = ?", (instance_id, beats)
                ):
                    gone.append(instance_id)
            return gone

        return await self._db.write(body)

    async def unregister(self) -> None:
        """Delete this process's row (a clean stop): its remaining claims are void at once."""
        await self._db.write(lambda conn: conn.execute("DELETE FROM instances WHERE id = ?", (self.id,)))

    async def registered(self, instance_id: str) -> bool:
        """Whether a process with this id has a row (is alive, or not yet found dead)."""
        rows = await self._db.read(lambda conn: fetch_all(conn, "SELECT 1 FROM instances WHERE id = ?", (instance_id,)))
        return bool(rows)

    async def all(self) -> list[Instance]:
        """Every registered process, oldest first."""
        rows = await self._db.read(
            lambda conn: fetch_all(
                conn, "SELECT id, name, host, pid, started_at, beats, beat_at FROM instances ORDER BY started_at, id"
            )
        )
        return [
            Instance(str(r[0]), str(r[1]), str(r[2]), int(r[3]), parse_ts(r[4]), int(r[5]), parse_ts(r[6]))
            for r in rows
        ]
