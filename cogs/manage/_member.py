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
from cogs.texts._style import _clip, bold, describe, per_window, state_label

# A screen lists at most this many grants (the newest); the balance counts them all.
MAX_GRANTS_SHOWN = 10


@dataclass(frozen=True, slots=True)
class MemberLimits:
    """What limits a member besides their allowance, and where each setting comes from."""

    guild: GuildSettings  # the server's own settings, as they apply under the operator's
    ceiling: int | None  # the operator's ceiling on any allowance plus grants, and pools


def _limit_lines(balance: Balance, limits: MemberLimits, window: QuotaWindow) -> list[str]:
    per = per_window(window)
    here, operator = describe("member_source_here"), describe("member_source_operator")
    lines = [describe("member_limits")]
    if balance.pool_limit is None:
        lines.append(describe("member_limit_no_pool"))
    else:
        source = here if limits.guild.pool_credits == balance.pool_limit else operator
        lines.append(describe("member_limit_pool", {"pool": balance.pool_limit, "per": per, "source": source}))
    if balance.budget_limit is not None:
        lines.append(describe("member_limit_budget", {"budget": balance.budget_limit, "per": per}))
    if limits.ceiling is not None:
        lines.append(describe("member_limit_ceiling", {"ceiling": limits.ceiling, "per": per}))
    jobs_source = here if limits.guild.max_active_jobs is not None else operator
    lines.append(describe("member_limit_jobs", {"max": balance.max_active_jobs, "source": jobs_source}))
    return lines


def _job_lines(running: Sequence[JobRecord]) -> list[str]:
    if not running:
        return [describe("member_jobs_none")]
    lines = [describe("member_jobs_heading")]
    for job in running:
        cost = cost_short(job)
        lines.append(f"• `#{job.id}` {state_label(job.state)}" + (f" · {cost}" if cost else ""))
    return lines


def _grant_line(row: GrantRow) -> str:
    # In words, like the member's "Taken back this period": never a signed number.
    code = "member_granted" if row.amount > 0 else "member_taken_back"
    if row.by_user_id is None:
        code += "_anon"
    line = describe(code, {"credits": abs(row.amount), "by": row.by_user_id, "at": row.at})
    if row.note:
        line += " — " + describe("member_grant_note", {"note": row.note})
    return f"• {line}"


def _grant_lines(balance: Balance) -> list[str]:
    if not balance.grants:
        return [describe("member_grants_none")]
    lines = [describe("member_grants_heading")]
    newest = list(reversed(balance.grants))
    lines.extend(_grant_line(row) for row in newest[:MAX_GRANTS_SHOWN])
    if len(newest) > MAX_GRANTS_SHOWN:
        lines.append(describe("and_more", {"count": len(newest) - MAX_GRANTS_SHOWN}))
    return lines


def member_text(
    member_id: int,
    balance: Balance,
    limits: MemberLimits,
    running: Sequence[JobRecord],
    window: QuotaWindow,
    *,
    role_id: int | None = None,
) -> str:
    """One member's credits, limits, running jobs and this period's grants, for a manager (ephemeral)."""
    lines = [bold(describe("member_heading", {"member": member_id}))]
    lines.extend(balance_lines(balance, window, role_id=role_id))
    lines.extend(_limit_lines(balance, limits, window))
    lines.extend(_job_lines(running))
    lines.extend(_grant_lines(balance))
    return _clip("\n".join(lines))
