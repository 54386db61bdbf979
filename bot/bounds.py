"""Bounds on every number a person types: one bound per kind of number, all of them here.

A number set in `.env`, typed in a command or a form, or passed on the command line must fit what
the database stores (64-bit integers, finite floats: SQLite stores NaN as NULL, and JSON has no
infinity), what Discord sends (integers up to 2**53 - 1) and what Magic Hour accepts (at most
120,000 frames, `max_fps_limit` >= 1, `end_seconds` >= 0.1, 2 credits a frame for `pro`, uploads
up to 10 GB). Settings declare them as field bounds, slash commands as `app_commands.Range`, and
the core checks them again with `Bound.check`, refusing with `OutOfBounds`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Generic, TypeVar

from bot.errors import InvalidInput

N = TypeVar("N", int, float)

# Magic Hour's own limits.
MAX_FRAMES = 120_000  # the most frames one job may render
MIN_FPS = 1.0  # `max_fps_limit` must be at least 1
# The highest frame-rate cap the bot passes on (and the highest rate it prices a source at).
MAX_FPS = 60.0
MAX_CREDITS_PER_FRAME = 2  # `pro`
MIN_CLIP_SECONDS = 0.1  # `end_seconds` >= 0.1: the shortest window

# The longest clip: one Magic Hour renders at any cap the bot allows (120,000 frames at 60 fps).
MAX_CLIP_SECONDS = MAX_FRAMES / MAX_FPS
# How far into a source a window may start or end: a day, longer than any video the bot can fetch.
MAX_SOURCE_SECONDS = 86_400.0
# What one job can cost: every frame Magic Hour renders, in `pro`.
MAX_JOB_CREDITS = MAX_FRAMES * MAX_CREDITS_PER_FRAME
# Any allowance, pool, budget, ceiling or grant. A trillion credits is billions of dollars at Magic
# Hour's prices, yet millions of such rows still sum far below 2**63, and it fits Discord's options.
MAX_CREDITS = 10**12
# Jobs at once (in flight, transfers, per member) and render counts: far above what one process runs.
MAX_COUNT = 1_000
MAX_ID = 2**63 - 1  # a job's number: SQLite's INTEGER and PostgreSQL's BIGINT
MAX_DISCORD_INTEGER = 2**53 - 1  # the most an INTEGER or NUMBER option of a slash command may be
MAX_INPUT_BYTES = 10_000_000_000  # Magic Hour's largest upload (10 GB, its Business plan)
# The address space a probe child may have: a terabyte, more than any machine the bot runs on, and
# far below where the byte count (MiB << 20) overflows the 64-bit limit the kernel takes.
MAX_PROBE_MEMORY_MIB = 1 << 20
# Any wait a setting asks for (deadline, lease, retries, polls): a week is more than any job needs,
# and far from where a datetime overflows.
MAX_WAIT_SECONDS = 7 * 86_400.0


class OutOfBounds(InvalidInput, ValueError):
    """A typed number outside its bound: the bound's code, with `value`, `low` and `high`.

    Also a `ValueError`, so code that checked numbers by hand before keeps catching it.
    """

    def __init__(self, bound: Bound[int] | Bound[float], value: float) -> None:
        shown: float | str = value if math.isfinite(value) else str(value)
        super().__init__(bound.code, value=shown, low=bound.low, high=bound.high)
        self.bound = bound
        self.value = value


@dataclass(frozen=True)
class Bound(Generic[N]):
    """The lowest and highest a kind of number may be, and the catalogue code that refuses it."""

    code: str
    low: N
    high: N

    def contains(self, value: float) -> bool:
        """Whether `value` is finite and within the bound."""
        return math.isfinite(value) and self.low <= value <= self.high

    def check(self, value: N) -> N:
        """`value` itself, or `OutOfBounds`."""
        if isinstance(value, bool) or not self.contains(value):
            raise OutOfBounds(self, value)
        return value


# Credits a limit, pool, budget or ceiling may be set to.
CREDITS: Bound[int] = Bound("credits_out_of_range", 0, MAX_CREDITS)
# One grant (or, negative, a take-back); and what a member's allowance plus grants may reach.
GRANT: Bound[int] = Bound("grant_out_of_range", -MAX_CREDITS, MAX_CREDITS)
GRANT_TOTAL: Bound[int] = Bound("grant_total_out_of_range", -MAX_CREDITS, MAX_CREDITS)
# What Magic Hour charged for one job, as the operator reads it off the dashboard.
JOB_CHARGE: Bound[int] = Bound("charge_out_of_range", 0, MAX_JOB_CREDITS)
CLIP_SECONDS: Bound[float] = Bound("clip_seconds_out_of_range", MIN_CLIP_SECONDS, MAX_CLIP_SECONDS)
SOURCE_SECONDS: Bound[float] = Bound("window_out_of_range", 0.0, MAX_SOURCE_SECONDS)
FPS: Bound[float] = Bound("bad_max_fps", MIN_FPS, MAX_FPS)
JOBS_AT_ONCE: Bound[int] = Bound("count_out_of_range", 1, MAX_COUNT)
JOB_ID: Bound[int] = Bound("job_id_out_of_range", 1, MAX_ID)

ALL: tuple[Bound[int] | Bound[float], ...] = (
    CREDITS,
    GRANT,
    GRANT_TOTAL,
    JOB_CHARGE,
    CLIP_SECONDS,
    SOURCE_SECONDS,
    FPS,
    JOBS_AT_ONCE,
    JOB_ID,
)
