"""Members' answers: their credits, their jobs, the queue, the combined panel, forgetting."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot import words
from bot.config import QuotaWindow
from bot.jobs.models import QueueSnapshot
from bot.store import DeletionReport, EffectiveLimits, JobRecord, JobState, LimitKind
from cogs.render._credits import binding_limit, cost_short, grant_line, left_text, limited_by
from cogs.render._jobs import _name
from cogs.render._style import (
    EN,
    _clip,
    bold,
    coarse_duration,
    command_name,
    credits,
    describe,
    discord_timestamp,
    failure_text,
    option_name,
    per_window,
    state_label,
    style_for,
)


def forgotten_text(report: DeletionReport, lang: str = EN) -> str:
    """The answer once a member's data is deleted: what went, and what had to stay (and until when)."""
    lines = [describe("forgotten", {"records": words.counted("records", report.jobs_deleted, lang)}, lang)]
    if report.usage_kept_until is not None:
        lines.append(describe("forgotten_usage_kept", {"until": report.usage_kept_until}, lang))
    if report.limits_kept:
        lines.append(describe("forgotten_limits_kept", lang=lang))
    return "\n".join(lines)


def forget_prompt(lang: str = EN) -> str:
    """What `/forget-me` asks before deleting anything."""
    return f"{describe('forget_prompt', lang=lang)}\n{describe('forget_prompt_running', lang=lang)}"


def _limit_source(kind: LimitKind, lang: str) -> str:
    code = f"limit_source_{kind.value}"
    return describe(code if words.has(code) else "limit_source_bot", lang=lang)


def quota_text(balance: EffectiveLimits, window: QuotaWindow, lang: str = EN) -> str:
    """A member's credits (private): what is left across every limit, what applies, when it resets."""
    left = bold(credits(balance.remaining, lang))
    lines = [
        bold(describe("quota_heading", lang=lang)),
        describe("quota_left", {"left": left, "resets_at": balance.resets_at}, lang),
    ]
    reason = limited_by(balance, lang)
    if reason:
        lines.append(describe("quota_less_than_allowance", {"reason": reason}, lang))
    lines.append(
        describe(
            "quota_allowance",
            {
                "allowance": balance.allowance,
                "per": per_window(window, lang),
                "source": _limit_source(balance.limit_kind, lang),
            },
            lang,
        )
    )
    grants = grant_line(balance, lang)
    if grants:
        lines.append(grants)
    if balance.reserved:
        lines.append(describe("quota_used_held", {"used": balance.used, "reserved": balance.reserved}, lang))
    else:
        lines.append(describe("quota_used", {"used": balance.used}, lang))
    running = {"active": balance.active_jobs, "max": balance.max_active_jobs}
    lines.append(describe("quota_running", running, lang))
    binding = binding_limit(balance)  # already named above
    if balance.pool_available is not None and binding is not LimitKind.SERVER_POOL:
        lines.append(describe("quota_pool_left", {"available": max(0, balance.pool_available)}, lang))
    if balance.budget_available is not None and binding is not LimitKind.BOT_BUDGET:
        lines.append(describe("quota_budget_left", {"available": max(0, balance.budget_available)}, lang))
    lines.append(describe("quota_prices", lang=lang))
    return _clip("\n".join(lines))


def _job_line(job: JobRecord, lang: str) -> str:
    style = style_for(lang)
    source = style.quote(job.video_filename) if job.video_filename else "YouTube"
    audio = style.quote(job.audio_filename or describe("audio_fallback", lang=lang))
    cost = cost_short(job, lang)
    price = f" · {cost}" if cost else ""
    return (
        f"`#{job.id}` {state_label(job.state, lang)} · {job.mode.value}{price} · "
        f"{discord_timestamp(job.created_at)} · {source} + {audio}"
    )


def jobs_text(jobs: Sequence[JobRecord], lang: str = EN) -> str:
    """A member's recent jobs, newest first, one line each (private)."""
    if not jobs:
        return describe("jobs_none", lang=lang)
    lines = [bold(describe("jobs_heading", lang=lang))]
    for job in jobs:
        line = _job_line(job, lang)
        if job.state is JobState.FAILED and job.error_code:
            line += f"\n  ↳ {failure_text(job, lang)}"
        lines.append(line)
    number = describe("jobs_number", lang=lang)
    cancel = f"`/{command_name('cancel', lang)} {option_name('job_id', lang, 'cancel')}:<{number}>`"
    lines.append(describe("jobs_cancel_hint", {"cancel": cancel}, lang))
    return _clip("\n".join(lines))


def _queue_summary(snapshot: QueueSnapshot, lang: str) -> str:
    busy = describe("queue_slots", {"in_flight": snapshot.in_flight, "capacity": snapshot.capacity}, lang)
    if snapshot.waiting == 0:
        return f"{busy}, {describe('queue_nobody_waiting', lang=lang)}"
    return f"{busy}, {describe('queue_some_waiting', {'waiting': snapshot.waiting}, lang)}"


def _where(job: JobRecord, position: int | None, lang: str) -> str:
    if position is not None:
        return describe("queue_position", {"position": position}, lang)
    return state_label(job.state, lang)


def queue_text(snapshot: QueueSnapshot, mine: Sequence[tuple[JobRecord, int | None]], lang: str = EN) -> str:
    """`/queue`: how busy the bot is, and where each of the member's running jobs stands."""
    lines = [f"{bold(describe('queue_heading', lang=lang))}: {_queue_summary(snapshot, lang)}."]
    if not mine:
        lines.append(describe("queue_none_running", lang=lang))
    for job, position in mine:
        lines.append(f"`#{job.id}` {_where(job, position, lang)}")
    return _clip("\n".join(lines))


@dataclass(frozen=True)
class RunningJob:
    """One of the member's running jobs, as the panel shows it."""

    job: JobRecord
    position: int | None  # place in the bot's queue; None once it holds a slot
    elapsed: float  # seconds since it was asked for


def panel_text(
    balance: EffectiveLimits,
    window: QuotaWindow,
    running: Sequence[RunningJob],
    snapshot: QueueSnapshot,
    lang: str = EN,
) -> str:
    """`/lipsync-status`: the member's credits, running jobs and the queue, in one private panel."""
    lines = [
        bold(describe("panel_heading", lang=lang)),
        describe("panel_credits", {"left": bold(left_text(balance, window, lang))}, lang),
    ]
    grants = grant_line(balance, lang)
    if grants:
        lines.append(grants)
    if not running:
        lines.append(describe("panel_none_running", {"max": balance.max_active_jobs}, lang))
    else:
        lines.append(describe("panel_running", {"count": len(running), "max": balance.max_active_jobs}, lang))
        for item in running:
            job = item.job
            cost = cost_short(job, lang)
            parts = [
                f"`#{job.id}`{_name(job)} {_where(job, item.position, lang)}",
                describe("progress_so_far", {"elapsed": coarse_duration(item.elapsed, lang)}, lang),
            ]
            if cost:
                parts.append(cost)
            lines.append("• " + " · ".join(parts))
    lines.append(describe("panel_queue", {"queue": _queue_summary(snapshot, lang)}, lang))
    lines.append(describe("panel_more", lang=lang))
    return _clip("\n".join(lines))
