"""What a member has left, and how it adds up: one set of lines for the member and their managers.

Every figure comes from one `Balance` (`bot.store.balance`); `/quota`, `/lipsync-status`, a grant's
answer and `/lipsync-admin member` all write it with these functions, in the same words, so the
member and a manager never read two numbers for one thing. The lines speak of "the allowance",
not "your": a manager reads them about the member, the member about themselves.
"""

from __future__ import annotations

from bot.config import QuotaWindow
from bot.store import Balance, LimitKind
from cogs.texts._style import bold, credits, describe, per_window


def limited_by(balance: Balance) -> str | None:
    """Why less is left than the allowance gives, when the server pool or bot budget is the reason."""
    kind = balance.limited_by
    if kind is None:
        return None
    return describe(f"left_limited_by_{kind.value}", {"available": balance.left})


def left_text(balance: Balance, window: QuotaWindow) -> str:
    """What can really be spent now, and when it resets: private words, never public."""
    data = {"left": balance.left, "window": window.value, "resets_at": balance.resets_at}
    text = describe("credits_left", data)
    reason = limited_by(balance)
    return f"{text} ({reason})" if reason else text


def grant_lines(balance: Balance) -> list[str]:
    """The period's grants and take-backs, each on its own line (never netted into one figure)."""
    lines = []
    if balance.granted:
        lines.append(describe("granted_extra", {"granted": balance.granted}))
    if balance.taken_back:
        lines.append(describe("taken_back", {"taken": balance.taken_back}))
    return lines


def over_line(balance: Balance) -> str | None:
    """Said whenever the balance is below zero: by how much, so a 0 never hides it."""
    if not balance.overdrawn:
        return None
    return describe("balance_over", {"over": balance.overdrawn})


def source_text(balance: Balance, role_id: int | None = None) -> str:
    """Where the allowance comes from, named the same way for the member and their managers."""
    if balance.source is LimitKind.ROLE and role_id is not None:
        return describe("limit_source_role_named", {"role": f"<@&{role_id}>"})
    return describe(f"limit_source_{balance.source.value}")


def balance_lines(balance: Balance, window: QuotaWindow, *, role_id: int | None = None) -> list[str]:
    """A balance, line by line: left, why less, allowance, grants, take-backs, used and held, over, jobs, pools.

    `role_id` names the role whose limit gives the allowance, when that is where it comes from.
    """
    lines = [describe("quota_left", {"left": bold(credits(balance.left)), "resets_at": balance.resets_at})]
    reason = limited_by(balance)
    if reason:
        lines.append(describe("quota_less_than_allowance", {"reason": reason}))
    allowance = {"allowance": balance.allowance, "per": per_window(window)}
    lines.append(describe("quota_allowance", {**allowance, "source": source_text(balance, role_id)}))
    lines.extend(grant_lines(balance))
    if balance.capped:
        lines.append(describe("balance_capped", {"capped": balance.capped}))
    if balance.held:
        lines.append(describe("quota_used_held", {"used": balance.used, "reserved": balance.held}))
    else:
        lines.append(describe("quota_used", {"used": balance.used}))
    over = over_line(balance)
    if over:
        lines.append(over)
    lines.append(describe("quota_running", {"active": balance.active_jobs, "max": balance.max_active_jobs}))
    binding = balance.limited_by  # already named above
    if balance.pool_left is not None and binding is not LimitKind.SERVER_POOL:
        lines.append(describe("quota_pool_left", {"available": balance.pool_left}))
    if balance.budget_left is not None and binding is not LimitKind.BOT_BUDGET:
        lines.append(describe("quota_budget_left", {"available": balance.budget_left}))
    return lines
