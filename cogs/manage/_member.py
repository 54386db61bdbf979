"""`/lipsync-admin member`: one member's figures on one screen, for managers.

The balance is written by `cogs.texts.balance_lines`, the lines the member reads in `/quota`; then
the limits that apply and where each comes from, the member's running jobs and what they hold,
and this period's grants and take-backs with who made them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bot.config import QuotaWindow
from bot.store import Balance, GrantRow, GuildSettings, JobRecord
from cogs.texts._balance import balance_lines
from cogs.texts._credits import cost_short
from cogs.texts._style import EN, _clip, bold, describe, per_window, state_label

# A screen lists at most this many grants (the newest); the balance counts them all.
MAX_GRANTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class MemberLimits:
    """What limits a member besides their allowance, and where each setting comes from."""

    guild: GuildSettings  # the server's own settings, as they apply under the operator's
    ceiling: int | None  # the operator's ceiling on any allowance plus grants, and pools


def _limit_lines(balance: Balance, limits: MemberLimits, window: QuotaWindow, lang: str) -> list[str]:
    per = per_window(window, lang)
    here, operator = describe("member_source_here", lang=lang), describe("member_source_operator", lang=lang)
    lines = [describe("member_limits", lang=lang)]
    if balance.pool_limit is None:
        lines.append(describe("member_limit_no_pool", lang=lang))
    else:
        source = here if limits.guild.pool_credits == balance.pool_limit else operator
        lines.append(describe("member_limit_pool", {"pool": balance.pool_limit, "per": per, "source": source}, lang))
    if balance.budget_limit is not None:
        lines.append(describe("member_limit_budget", {"budget": balance.budget_limit, "per": per}, lang))
    if limits.ceiling is not None:
        lines.append(describe("member_limit_ceiling", {"ceiling": limits.ceiling, "per": per}, lang))
    jobs_source = here if limits.guild.max_active_jobs is not None else operator
    lines.append(describe("member_limit_jobs", {"max": balance.max_active_jobs, "source": jobs_source}, lang))
    return lines


def _job_lines(running: Sequence[JobRecord], lang: str) -> list[str]:
    if not running:
        return [describe("member_jobs_none", lang=lang)]
    lines = [describe("member_jobs_heading", lang=lang)]
    for job in running:
        cost = cost_short(job, lang)
        lines.append(f"• `#{job.id}` {state_label(job.state, lang)}" + (f" · {cost}" if cost else ""))
    return lines


def _grant_line(row: GrantRow, lang: str) -> str:
    # In words, like the member's "Taken back this period": never a signed number.
    code = "member_granted" if row.amount > 0 else "member_taken_back"
    if row.by_user_id is None:
        code += "_anon"
    line = describe(code, {"credits": abs(row.amount), "by": row.by_user_id, "at": row.at}, lang)
    if row.note:
        line += " — " + describe("member_grant_note", {"note": row.note}, lang)
    return f"• {line}"


def _grant_lines(balance: Balance, lang: str) -> list[str]:
    if not balance.grants:
        return [describe("member_grants_none", lang=lang)]
    lines = [describe("member_grants_heading", lang=lang)]
    newest = list(reversed(balance.grants))
    lines.extend(_grant_line(row, lang) for row in newest[:MAX_GRANTS_SHOWN])
    if len(newest) > MAX_GRANTS_SHOWN:
        lines.append(describe("and_more", {"count": len(newest) - MAX_GRANTS_SHOWN}, lang))
    return lines


def member_text(
    member_id: int,
    balance: Balance,
    limits: MemberLimits,
    running: Sequence[JobRecord],
    window: QuotaWindow,
    lang: str = EN,
    *,
    role_id: int | None = None,
) -> str:
    """One member's credits, limits, running jobs and this period's grants, for a manager (ephemeral)."""
    lines = [bold(describe("member_heading", {"member": member_id}, lang))]
    lines.extend(balance_lines(balance, window, lang, role_id=role_id))
    lines.extend(_limit_lines(balance, limits, window, lang))
    lines.extend(_job_lines(running, lang))
    lines.extend(_grant_lines(balance, lang))
    return _clip("\n".join(lines))
