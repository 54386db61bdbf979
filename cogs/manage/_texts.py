"""Texts for managers (usage, settings, grants) and for a member's own credits and data (`/quota`, `/forget-me`)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.jobs.submit import project_name
from bot.store import (
    DeletionReport,
    EffectiveLimits,
    GuildSettings,
    JobRecord,
    LimitKind,
    UsageLine,
    UsageReport,
)
from cogs.texts._credits import binding_limit, grant_line, limited_by
from cogs.texts._style import (
    EN,
    _clip,
    bold,
    credits,
    describe,
    discord_timestamp,
    per_window,
)


def _usage_numbers(line: UsageLine, lang: str) -> str:
    jobs = words.jobs(line.jobs, lang)
    if line.refunded:
        jobs += f" ({describe('usage_refunded', {'count': line.refunded}, lang)})"
    parts = [describe("usage_used", {"used": line.used}, lang), jobs]
    if line.in_flight:
        parts.append(describe("usage_held", {"held": line.in_flight}, lang))
    if line.adjusted:
        sign = "+" if line.adjusted > 0 else "−"
        parts.append(describe("usage_adjusted", {"adjusted": f"{sign}{credits(abs(line.adjusted), lang)}"}, lang))
    return " · ".join(parts)


def _uncertain_line(job: JobRecord, lang: str) -> str:
    reserved = job.charged_credits
    if reserved is None and job.error_data is not None:
        value = job.error_data.get("reserved")
        reserved = value if isinstance(value, int) else None
    line = describe(
        "uncertain_line",
        {"project": project_name(job.id, job.name), "job": job.id, "member": job.user_id, "reserved": reserved or 0},
        lang,
    )
    if job.project_id:
        line += f" ({describe('uncertain_project_id', lang=lang)} `{job.project_id}`)"
    return f"• {line}"


def _more(count: int, lang: str) -> str:
    return describe("and_more", {"count": count}, lang)


def usage_text(report: UsageReport, *, top: int = 15, lang: str = EN) -> str:
    """A server's usage in a period, for managers: totals, by member, by mode, and jobs to check."""
    since, until = discord_timestamp(report.since, "f"), discord_timestamp(report.until, "f")
    lines = [
        bold(describe("usage_heading", {"since": since, "until": until}, lang)),
        describe("usage_total", {"numbers": _usage_numbers(report.total, lang)}, lang),
    ]
    members = sorted(report.by_member.items(), key=lambda item: item[1].used, reverse=True)
    if members:
        lines.append(describe("usage_by_member", lang=lang))
        for user_id, line in members[:top]:
            who = f"<@{user_id}>" if user_id is not None else describe("usage_deleted_members", lang=lang)
            lines.append(f"• {who}: {_usage_numbers(line, lang)}")
        if len(members) > top:
            lines.append(_more(len(members) - top, lang))
    modes = [(mode, line) for mode, line in report.by_mode.items() if mode is not None]
    if modes:
        by_mode = "; ".join(f"{mode.value}: {credits(line.used, lang)}" for mode, line in modes)
        lines.append(describe("usage_by_mode", {"modes": by_mode}, lang))
    if report.uncertain:
        lines.append(describe("uncertain_heading", {"count": len(report.uncertain)}, lang))
        lines.extend(_uncertain_line(job, lang) for job in report.uncertain[:top])
        if len(report.uncertain) > top:
            lines.append(_more(len(report.uncertain) - top, lang))
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
    lang: str = EN,
) -> str:
    """What applies in this server, with the bot's defaults where the server set nothing."""
    per = per_window(window, lang)

    def own(value: str | None, default: str) -> str:
        if value is not None:
            return describe("settings_set_here", {"value": value}, lang)
        return describe("settings_bot_default", {"value": default}, lang)

    def amount(value: int | None) -> str | None:
        return None if value is None else f"{credits(value, lang)} {per}"

    modes = ", ".join(m.value for m in guild.allowed_modes) if guild.allowed_modes is not None else None
    clip = words.seconds(guild.max_clip_seconds, lang) if guild.max_clip_seconds is not None else None
    jobs = str(guild.max_active_jobs) if guild.max_active_jobs is not None else None
    pool = amount(guild.pool_credits)
    default_allowance = f"{credits(default_member_credits, lang)} {per}"
    rows = {
        "allowance": own(amount(guild.default_member_credits), default_allowance),
        "pool": describe("settings_set_here", {"value": pool}, lang) if pool else describe("settings_none", lang=lang),
        "modes": own(modes, ", ".join(m.value for m in allowed_modes)),
        "clip": own(clip, words.seconds(max_clip_seconds, lang)),
        "jobs": own(jobs, str(max_active_jobs)),
    }
    lines = [bold(describe("settings_heading", lang=lang))]
    lines.extend(describe(f"settings_{key}", {"value": value}, lang) for key, value in rows.items())
    if role_limits:
        roles = ", ".join(f"<@&{r}>: {credits(c, lang)} {per}" for r, c in sorted(role_limits.items()))
        lines.append(describe("settings_role_limits", {"value": roles}, lang))
    if member_limits:
        members = ", ".join(f"<@{u}>: {credits(c, lang)} {per}" for u, c in sorted(member_limits.items()))
        lines.append(describe("settings_member_limits", {"value": members}, lang))
    return _clip("\n".join(lines))


def grant_text(
    member_id: int, asked: int, taken: int | None, balance: EffectiveLimits, window: QuotaWindow, lang: str = EN
) -> str:
    """A manager's grant, as it really happened: credits given, taken back (clamped), or nothing to take."""
    data: dict[str, object] = {
        "member": member_id,
        "resets_at": balance.resets_at,
        "left": balance.remaining,
        "window": window.value,
    }
    if taken is None:
        return describe("nothing_to_take_back", data, lang)
    if asked > 0:
        text = describe("granted", {**data, "credits": taken}, lang)
    elif -taken < -asked:
        text = describe("took_back_all", {**data, "taken": -taken, "asked": -asked}, lang)
    else:
        text = describe("took_back", {**data, "taken": -taken}, lang)
    reason = limited_by(balance, lang)
    return f"{text[:-1]} ({reason})." if reason and text.endswith(".") else text


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
