"""Changes that would let a refused job start: a lower frame-rate cap, a shorter part, a cheaper mode.

A job refused for credits, or whose part had to be cut to what its files hold, is offered fixes,
each priced with the same `Pricing.quote` as the job itself; only those that fit what the member
has and that the server allows are offered. A fix is data (`Fix`), stored with the refused job's
error (`as_data`, read back with `fixes_in`), and `Fix.apply` makes the request it would start.
"""

from __future__ import annotations

import dataclasses
import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass

from bot import bounds
from bot.config import GenerationMode
from bot.errors import Datum
from bot.jobs.models import GuildRules, JobRequest
from bot.jobs.quote import Pricing, Quote

# The frame-rate caps offered, highest first: common video rates a member recognises.
FPS_STEPS = (30.0, 25.0, 24.0, 20.0, 15.0, 12.0, 10.0, 8.0, 5.0)
# A shorter part is offered in tenths of a second (the shortest part Magic Hour renders).
_TENTHS = 10


class FixKind(enum.StrEnum):
    """What a fix changes."""

    MAX_FPS = "max_fps"  # a lower frame-rate cap
    END = "end"  # a shorter part: the same start, an earlier end
    MODE = "mode"  # a cheaper mode


@dataclass(frozen=True)
class Fix:
    """One change to a request, and its price (the same quote the job would get)."""

    kind: FixKind
    value: float | str
    quote: Quote

    def apply(self, request: JobRequest) -> JobRequest:
        """The request with this change made."""
        if self.kind is FixKind.MAX_FPS:
            return dataclasses.replace(request, max_fps=float(self.value))
        if self.kind is FixKind.END:
            return dataclasses.replace(request, end=float(self.value))
        return dataclasses.replace(request, mode=GenerationMode(str(self.value)))


def _lower_cap(pricing: Pricing, available: int) -> Fix | None:
    current = pricing.max_fps or pricing.default_max_fps or bounds.MAX_FPS
    for fps in FPS_STEPS:
        if fps >= current:
            continue
        quote = dataclasses.replace(pricing, max_fps=fps).quote()
        if quote.fits(available):
            return Fix(FixKind.MAX_FPS, fps, quote)
    return None


def _shorter_part(pricing: Pricing, start: float, available: int) -> Fix | None:
    # The longest part from the same start, in whole tenths, whose hold fits: found by bisection
    # (the price only grows with the length).
    low, high = 1, math.floor(pricing.seconds * _TENTHS) - 1
    best: Fix | None = None
    while low <= high:
        tenths = (low + high) // 2
        end = start + tenths / _TENTHS
        quote = dataclasses.replace(pricing, seconds=end - start).quote()  # as the job would measure it
        if quote.fits(available):
            best = Fix(FixKind.END, end, quote)
            low = tenths + 1
        else:
            high = tenths - 1
    return best


def _cheaper_modes(pricing: Pricing, rules: GuildRules, available: int) -> list[Fix]:
    fixes = []
    for mode in rules.allowed_modes:
        if mode.credits_per_frame >= pricing.mode.credits_per_frame:
            continue
        quote = dataclasses.replace(pricing, mode=mode).quote()
        if quote.fits(available):
            fixes.append(Fix(FixKind.MODE, mode.value, quote))
    return fixes[:1]  # the first the server allows (its order): one button is enough


def fixes_for(pricing: Pricing, start: float, rules: GuildRules, available: int) -> list[Fix]:
    """The changes that would fit `available` credits, each priced: a cap, a shorter part, a mode."""
    found = [_lower_cap(pricing, available), _shorter_part(pricing, start, available)]
    return [fix for fix in found if fix is not None] + _cheaper_modes(pricing, rules, available)


def as_data(fixes: list[Fix]) -> dict[str, Datum]:
    """Fixes as an error's data: `fix_<kind>` with its value, estimate and hold."""
    data: dict[str, Datum] = {}
    for fix in fixes:
        data[f"fix_{fix.kind.value}"] = fix.value
        data[f"fix_{fix.kind.value}_estimate"] = fix.quote.estimate
        data[f"fix_{fix.kind.value}_hold"] = fix.quote.hold
    return data


def fixes_in(data: Mapping[str, object]) -> list[Fix]:
    """The fixes an error's data offers (`as_data`), in the order they were offered; bad entries skipped."""
    fixes = []
    for kind in FixKind:
        value, estimate, hold = (data.get(f"fix_{kind.value}{suffix}") for suffix in ("", "_estimate", "_hold"))
        if not isinstance(estimate, int) or not isinstance(hold, int):
            continue
        if kind is FixKind.MODE:
            if value not in {m.value for m in GenerationMode}:
                continue
        elif not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            continue
        assert isinstance(value, str | int | float)
        fixes.append(Fix(kind, value if isinstance(value, str) else float(value), Quote(estimate, hold)))
    return fixes
