"""Texts for managers (usage, settings, grants) and for a member's own credits and data (`/quota`, `/forget-me`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.jobs.submit import project_name
from bot.store import (
    Balance,
    DeletionReport,
    GrantTotals,
    GuildSettings,
    JobRecord,
    UsageLine,
    UsageReport,
)
from cogs.texts._balance import balance_lines, limited_by, over_line
from cogs.texts._style import (
    _clip,
    bold,
    credits,
    describe,
    discord_timestamp,
    per_window,
)


def _usage_numbers(line: UsageLine, grants: GrantTotals | None = None) -> str:
    jobs = words.jobs(line.jobs, words.current())
    if line.refunded:
        jobs += f" ({describe('usage_refunded', {'count': line.refunded})})"
    parts = [describe("usage_used", {"used": line.used}), jobs]
    if line.in_flight:
        parts.append(describe("usage_held", {"held": line.in_flight}))
    if line.adjusted:
        sign = "+" if line.adjusted > 0 else "−"
        parts.append(describe("usage_adjusted", {"adjusted": f"{sign}{credits(abs(line.adjusted))}"}))
    if grants is not None and grants.granted:
        parts.append(describe("usage_granted", {"granted": grants.granted}))
    if grants is not None and grants.taken_back:
        parts.append(describe("usage_taken_back", {"taken": grants.taken_back}))
    return " · ".join(parts)


def _all_grants(grants: Mapping[int | None, GrantTotals]) -> GrantTotals:
    return GrantTotals(sum(g.granted for g in grants.values()), sum(g.taken_back for g in grants.values()))


def _uncertain_line(job: JobRecord) -> str:
    reserved = job.charged_credits
    if reserved is None and job.error_data is not None:
        value = job.error_data.get("reserved")
        reserved = value if isinstance(value, int) else None
    line = describe(
        "uncertain_line",
        {"project": project_name(job.id, job.name), "job": job.id, "member": job.user_id, "reserved": reserved or 0},
    )
    if job.project_id:
        line += f" ({describe('uncertain_project_id')} `{job.project_id}`)"
    return f"• {line}"


def _more(count: int) -> str:
    return describe("and_more", {"count": count})


def _pool_lines(report: UsageReport, pool_limit: int | None, window: QuotaWindow | None) -> list[str]:
    if pool_limit is not None:
        left = max(0, pool_limit - report.total.used)
        period = window.value if window is not None else None
        return [describe("usage_pool", {"left": left, "pool": pool_limit, "window": period})]
    return [describe("usage_no_pool")] if window is not None else []


def _member_lines(report: UsageReport, grants: Mapping[int | None, GrantTotals], top: int) -> list[str]:
    by_member = dict(report.by_member)
    for member in grants:
        by_member.setdefault(member, UsageLine())
    members = sorted(by_member.items(), key=lambda item: item[1].used, reverse=True)
    if not members:
        return []
    lines = [describe("usage_by_member")]
    for user_id, line in members[:top]:
        who = f"<@{user_id}>" if user_id is not None else describe("usage_deleted_members")
        lines.append(f"• {who}: {_usage_numbers(line, grants.get(user_id))}")
    if len(members) > top:
        lines.append(_more(len(members) - top))
    return lines


def _uncertain_lines(report: UsageReport, top: int) -> list[str]:
    if not report.uncertain:
        return []
    lines = [describe("uncertain_heading", {"count": len(report.uncertain)})]
    lines.extend(_uncertain_line(job) for job in report.uncertain[:top])
    if len(report.uncertain) > top:
        lines.append(_more(len(report.uncertain) - top))
    return lines


def usage_text(
    report: UsageReport,
    *,
    grants: Mapping[int | None, GrantTotals] | None = None,
    pool_limit: int | None = None,
    window: QuotaWindow | None = None,
    attached: bool = False,
    top: int = 15,
) -> str:
    """A server's usage in a period, for managers: totals, the pool's remainder, by member with grants, by mode.

    `grants` are the period's grants and take-backs by member; `pool_limit`, the server's pool
    per window (the report must cover the current window for its remainder to mean anything).
    `attached` says the chart and CSV come with it.
    """
    grants = grants or {}
    since, until = discord_timestamp(report.since, "f"), discord_timestamp(report.until, "f")
    lines = [
        bold(describe("usage_heading", {"since": since, "until": until})),
        describe("usage_total", {"numbers": _usage_numbers(report.total, _all_grants(grants))}),
    ]
    lines.extend(_pool_lines(report, pool_limit, window))
    lines.extend(_member_lines(report, grants, top))
    modes = [(mode, line) for mode, line in report.by_mode.items() if mode is not None]
    if modes:
        by_mode = "; ".join(f"{mode.value}: {credits(line.used)}" for mode, line in modes)
        lines.append(describe("usage_by_mode", {"modes": by_mode}))
    lines.extend(_uncertain_lines(report, top))
    if attached:
        lines.append(describe("usage_files"))
    return _clip("\n".join(lines))


def settings_text(
    guild: GuildSettings,
    *,
    default_member_credits: int,
    allowed_modes: Iterable[GenerationMode],
    max_clip_seconds: float,
    max_active_jobs: int,
    member_limits: Mapping[int, int],
    role_limits: Mapping[int, int],
    window: QuotaWindow,
) -> str:
    """What applies in this server, with the bot's defaults where the server set nothing."""
    per = per_window(window)

    def own(value: str | None, default: str) -> str:
        if value is not None:
            return describe("settings_set_here", {"value": value})
        return describe("settings_bot_default", {"value": default})

    def amount(value: int | None) -> str | None:
        return None if value is None else f"{credits(value)} {per}"

    modes = ", ".join(m.value for m in guild.allowed_modes) if guild.allowed_modes is not None else None
    clip = words.seconds(guild.max_clip_seconds, words.current()) if guild.max_clip_seconds is not None else None
    jobs = str(guild.max_active_jobs) if guild.max_active_jobs is not None else None
    pool = amount(guild.pool_credits)
    default_allowance = f"{credits(default_member_credits)} {per}"
    rows = {
        "allowance": own(amount(guild.default_member_credits), default_allowance),
        "pool": describe("settings_set_here", {"value": pool}) if pool else describe("settings_none"),
        "modes": own(modes, ", ".join(m.value for m in allowed_modes)),
        "clip": own(clip, words.seconds(max_clip_seconds, words.current())),
        "jobs": own(jobs, str(max_active_jobs)),
    }
    lines = [bold(describe("settings_heading"))]
    lines.extend(describe(f"settings_{key}", {"value": value}) for key, value in rows.items())
    if role_limits:
        roles = ", ".join(f"<@&{r}>: {credits(c)} {per}" for r, c in sorted(role_limits.items()))
        lines.append(describe("settings_role_limits", {"value": roles}))
    if member_limits:
        members = ", ".join(f"<@{u}>: {credits(c)} {per}" for u, c in sorted(member_limits.items()))
        lines.append(describe("settings_member_limits", {"value": members}))
    return _clip("\n".join(lines))


def grant_text(member_id: int, asked: int, taken: int | None, balance: Balance, window: QuotaWindow) -> str:
    """A manager's grant, as it really happened: credits given, taken back (at most what was left), or none.

    `balance` is the member's after the grant. Should it be below zero (a job was charged
    between reading the balance and taking back), the answer says by how much.
    """
    data: dict[str, object] = {
        "member": member_id,
        "resets_at": balance.resets_at,
        "left": balance.left,
        "window": window.value,
    }
    if taken is None:
        text = describe("nothing_to_take_back", {**data, "used": balance.used})
    elif asked > 0:
        text = describe("granted", {**data, "credits": taken})
    elif -taken < -asked:
        text = describe("took_back_all", {**data, "taken": -taken, "asked": -asked})
    else:
        text = describe("took_back", {**data, "taken": -taken})
    reason = limited_by(balance)
    if reason and taken is not None and text.endswith("."):
        text = f"{text[:-1]} ({reason})."
    over = over_line(balance)
    return f"{text}\n{over}" if over else text


def forgotten_text(report: DeletionReport) -> str:
    """The answer once a member's data is deleted: what went, and what had to stay (and until when)."""
    lines = [describe("forgotten", {"records": words.counted("records", report.jobs_deleted, words.current())})]
    if report.usage_kept_until is not None:
        lines.append(describe("forgotten_usage_kept", {"until": report.usage_kept_until}))
    if report.limits_kept:
        lines.append(describe("forgotten_limits_kept"))
    return "\n".join(lines)


def forget_prompt() -> str:
    """What `/forget-me` asks before deleting anything."""
    return f"{describe('forget_prompt')}\n{describe('forget_prompt_running')}"


def quota_text(balance: Balance, window: QuotaWindow, *, role_id: int | None = None) -> str:
    """A member's credits (private): the balance in the words managers read too, and the prices."""
    lines = [bold(describe("quota_heading")), *balance_lines(balance, window, role_id=role_id)]
    lines.append(describe("quota_prices"))
    return _clip("\n".join(lines))
