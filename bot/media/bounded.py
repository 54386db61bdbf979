"""Running the probe in a child process with bounded memory, CPU time and wall time.

The reading (`bot.media.opening.read_media`) runs in a fresh interpreter (`python -m
bot.media.bounded`) that caps its own address space and CPU time, gets no environment but what an
interpreter needs, and answers with one JSON object; the parent kills it past its wall time or when
the job is cancelled. Whatever goes wrong there is one outcome, `None`, which the caller turns into
a free refusal. docs/design-notes.md, "Media", gives the reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import resource
import sys
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

MAX_ANSWER_BYTES = 1 << 16
# The environment variables a child keeps; everything else (tokens, keys, URLs) stays with the bot.
CHILD_ENVIRONMENT = ("PATH", "PYTHONPATH", "PYTHONHOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "SYSTEMROOT")


@dataclass(frozen=True)
class ProbeLimits:
    """What one probe may use. The defaults fit a 4K phone video with room to spare."""

    memory_bytes: int = 384 << 20  # address space, the interpreter and FFmpeg's libraries included
    cpu_seconds: int = 20
    wall_seconds: float = 30.0


async def run_bounded(request: dict[str, Any], limits: ProbeLimits) -> dict[str, Any] | None:
    """Run `bot.media.opening.answer_for(request)` in a bounded child; its JSON answer, or None.

    None when the child was killed (time, CPU), ran out of memory before it could answer,
    crashed, or answered something that isn't one small JSON object.
    """
    args = [json.dumps(request), str(limits.memory_bytes), str(limits.cpu_seconds)]
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        __name__,
        *args,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=child_environment(),
    )
    assert child.stdout is not None
    try:
        async with asyncio.timeout(limits.wall_seconds):
            raw = await child.stdout.read(MAX_ANSWER_BYTES + 1)
            await child.wait()
    except TimeoutError:
        log.warning("a media probe (pid %s) was stopped after %g s", child.pid, limits.wall_seconds)
        return None
    finally:
        if child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                child.kill()
            await child.wait()
    if child.returncode != 0 or len(raw) > MAX_ANSWER_BYTES:
        log.warning("a media probe ended with exit code %s", child.returncode)
        return None
    try:
        answer = json.loads(raw)
    except ValueError:
        return None
    return answer if isinstance(answer, dict) else None


def child_environment() -> dict[str, str]:
    """The probe child's environment: `CHILD_ENVIRONMENT`'s variables, nothing else."""
    return {name: os.environ[name] for name in CHILD_ENVIRONMENT if name in os.environ}


def _cap(kind: int, value: int) -> None:
    _soft, hard = resource.getrlimit(kind)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(kind, (value, hard))


def _child(argv: list[str]) -> int:
    """The child's whole life: cap itself, read the file, print one JSON answer."""
    request, memory, cpu = json.loads(argv[0]), int(argv[1]), int(argv[2])
    _cap(resource.RLIMIT_CORE, 0)  # a crash leaves no core file of a member's media behind
    _cap(resource.RLIMIT_CPU, cpu)
    from bot.media.opening import answer_for  # imported before the cap: libraries are not the file's doing

    _cap(resource.RLIMIT_AS, memory)
    try:
        payload = answer_for(request)
    except MemoryError:
        payload = {"refused": "media_too_complex", "data": {}}
    sys.stdout.write(json.dumps(payload))
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
