"""Which ways to run a finished job again apply to its member now, and what "again in pro" costs.

`bot.jobs.rerun.offers` says what a job's files allow; here the server's rules and the member's
credits narrow that: "again in pro" is offered only where pro is allowed and the member can pay
for it, with its price, the amount the engine would set aside (`plan_reuse`, on the same facts).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass

from bot.errors import InvalidInput, LipsyncError
from bot.jobs.admission import Admitted
from bot.jobs.config import EngineConfig
from bot.jobs.inputs import plan_reuse
from bot.jobs.rerun import Again, offers, rerun_request
from bot.store import JobRecord


@dataclass(frozen=True)
class Offer:
    """One way to run a job again, with what it would set aside when that is known beforehand."""

    how: Again
    credits: int | None = None


def rerun_estimate(config: EngineConfig, job: JobRecord, how: Again, admitted: Admitted, now: dt.datetime) -> int:
    """What running `job` again `how` (same window) would set aside, as the engine prices it.

    Raises the `LipsyncError` the re-run itself would meet (files expired, a clip over the
    server's limit, a mode it doesn't allow).
    """
    request = rerun_request(job, how, by_user_id=job.user_id, guild_id=job.guild_id, now=now)
    if request.mode not in admitted.rules.allowed_modes:
        allowed = ", ".join(m.value for m in admitted.rules.allowed_modes)
        raise InvalidInput("mode_not_allowed", mode=request.mode.value, allowed=allowed)
    if request.max_fps is None and config.default_max_fps is not None:
        request = dataclasses.replace(request, max_fps=config.default_max_fps)  # as the engine runs it
    assert request.reuse is not None  # a re-run always reuses its files
    return plan_reuse(config, request, admitted.rules, request.reuse, now=now).amount


def applicable_offers(config: EngineConfig, job: JobRecord, admitted: Admitted, now: dt.datetime) -> tuple[Offer, ...]:
    """`offers(job, now)` narrowed to what its member may do now; "again in pro" priced.

    Pro is left out where the server doesn't allow it, where the re-run would be refused anyway,
    and where the member's credits (or the server's pool, or the bot's budget) can't cover it.
    """
    found: list[Offer] = []
    for how in offers(job, now):
        if how is not Again.PRO:
            found.append(Offer(how))
            continue
        try:
            price = rerun_estimate(config, job, how, admitted, now)
        except LipsyncError:
            continue
        if admitted.limits.refusal_for(price, new_job=False) is None:
            found.append(Offer(how, price))
    return tuple(found)
