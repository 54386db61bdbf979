"""What a job will likely cost and what is held until it finishes: one `Quote`, from one function.

The bot sets aside the larger of two figures: its own estimate of what Magic Hour will bill (the
frames it will render, `bot.media.estimate_credits`) and what Magic Hour holds when the job is
created (30 fps over the window, `bot.media.queue_hold_credits`). Members are told both, in one
sentence, everywhere: the estimate is the likely cost, the hold is what must fit now and is given
back down to the real charge when the job ends. A refusal says which of the two didn't fit.

`Pricing.quote` is the one function that makes the figures; `quote_of` makes them again from what a
job recorded (its window, the rate its probe trusted, its cap and mode), so a status message, a list
of jobs and the terminal show the same figures the reservation was made from.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace

from bot import media
from bot.config import GenerationMode
from bot.store import JobRecord


class Binding(enum.StrEnum):
    """Which figure sets the hold: the bot's estimate, or Magic Hour's 30 fps hold at create."""

    ESTIMATE = "estimate"
    MAGIC_HOUR = "magic_hour"


class Short(enum.StrEnum):
    """Which figure didn't fit what a member has."""

    ESTIMATE = "estimate"  # even the likely cost is more than is left
    HOLD = "hold"  # the likely cost fits, what is held until the job ends doesn't


@dataclass(frozen=True)
class Quote:
    """A job's price before it starts: `estimate` (its likely cost) and `hold` (set aside until it ends)."""

    estimate: int
    hold: int

    @property
    def binds(self) -> Binding:
        """Which figure the hold is: the estimate, or Magic Hour's larger hold at create."""
        return Binding.ESTIMATE if self.hold <= self.estimate else Binding.MAGIC_HOUR

    def fits(self, available: int) -> bool:
        """Whether the hold (the larger figure) fits in `available` credits."""
        return self.hold <= available

    def short_of(self, available: int) -> Short | None:
        """Which figure doesn't fit in `available` credits (the estimate first), or None if both do."""
        if self.estimate > available:
            return Short.ESTIMATE
        if self.hold > available:
            return Short.HOLD
        return None

    def holding(self, held: int | None) -> Quote:
        """This quote with the hold raised to what is really held (a top-up at create); never lowered."""
        return self if held is None or held <= self.hold else replace(self, hold=held)

    def data(self) -> dict[str, int]:
        """The figures as a message's data: `estimate` and `hold`."""
        return {"estimate": self.estimate, "hold": self.hold}

    def sentence(self) -> tuple[str, dict[str, int]]:
        """The catalogue's code and data for the one sentence every front end states a quote in."""
        return ("cost_quote_same" if self.hold == self.estimate else "cost_quote"), self.data()


@dataclass(frozen=True)
class Pricing:
    """What a job's price depends on: its length, mode, the rate its probe trusted and its caps.

    `source_fps` is the video's own rate when the probe found it constant (None for a YouTube
    source or a rate that can't be trusted: billed at the cap); `max_fps` the job's cap,
    `default_max_fps` the operator's for a job without one.
    """

    seconds: float
    mode: GenerationMode
    source_fps: float | None = None
    max_fps: float | None = None
    default_max_fps: float | None = None

    @property
    def billing_fps(self) -> float:
        """The rate Magic Hour will bill the render at: the trusted source rate under the cap."""
        cap = media.frame_cap(self.max_fps, self.default_max_fps)
        source = self.source_fps
        return min(source, cap) if source is not None and source > 0 else cap

    def quote(self) -> Quote:
        """The job's estimate and hold: the one place both figures are made."""
        estimate = media.estimate_credits(self.seconds, self.billing_fps, self.mode)
        hold = media.queue_hold_credits(self.seconds, self.max_fps, self.mode)
        return Quote(estimate=estimate, hold=max(estimate, hold))


def pricing_of(job: JobRecord) -> Pricing | None:
    """What a job's price was made from, as it recorded it; None before its window is settled.

    The engine gives every job the operator's cap before recording it, so the job's own `max_fps`
    is the whole cap. The window is settled once credits were set aside (`estimated_credits`).
    """
    if job.estimated_credits is None or job.start_seconds is None or job.end_seconds is None:
        return None
    return Pricing(job.end_seconds - job.start_seconds, job.mode, job.source_fps, job.max_fps)


def quote_of(job: JobRecord) -> Quote | None:
    """A job's quote from its record, its hold being what it really holds; None before it has one."""
    pricing = pricing_of(job)
    if pricing is None:
        if job.estimated_credits is None:
            return None
        return Quote(estimate=job.estimated_credits, hold=job.estimated_credits)  # no window recorded
    return pricing.quote().holding(job.estimated_credits)
