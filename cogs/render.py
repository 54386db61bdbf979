"""Every text the bot shows in Discord, as pure functions of engine and store records.

Nothing here talks to Discord or the database, so each message can be tested (and read) on its
own. Sentences that the core's codes stand for come from the shared catalogue (`bot.words`),
written in `DISCORD` style: times as Discord's timestamp markup (`<t:…:R>`), which each member's
client renders in their own language and time zone and which keeps counting without edits;
commands as `/name`; members' file names in code spans they can't break out of.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.errors import LipsyncError
from bot.jobs.models import JobUpdate, QueueSnapshot
from bot.store import (
    DeletionReport,
    EffectiveLimits,
    GuildSettings,
    JobRecord,
    JobState,
    LimitKind,
    UsageLine,
    UsageReport,
)


def discord_timestamp(moment: dt.datetime, style: str = "R") -> str:
    """Discord's timestamp markup, e.g. `<t:1764115200:R>` ("in 3 hours" in the viewer's locale)."""
    return f"<t:{int(moment.timestamp())}:{style}>"


class DiscordStyle:
    """How the catalogue's sentences are written in Discord."""

    def when(self, moment: dt.datetime) -> str:
        """A relative Discord timestamp."""
        return discord_timestamp(moment)

    def command(self, name: str) -> str:
        """A slash command, as a code span."""
        return f"`/{name}`"

    def quote(self, text: str) -> str:
        """A member's name for something, in a code span it can't close early."""
        return f"`{text.replace('`', 'ˋ')}`"

    def member(self, user_id: int) -> str:
        """A mention (messages that carry one allow only the intended member to be pinged)."""
        return f"<@{user_id}>"

    def option(self, name: str) -> str:
        """A slash-command option, as a code span."""
        return f"`{name}`"


DISCORD = DiscordStyle()


def describe(code: str, data: Mapping[str, object]) -> str:
    """The catalogue's sentence for `code`, written for Discord."""
    return words.describe(code, data, DISCORD)


def error_text(error: LipsyncError) -> str:
    """What a member reads for one of the bot's errors."""
    return describe(error.code, error.data)


def failure_text(job: JobRecord) -> str:
    """Why a job failed, from the code and data stored with it."""
    return describe(job.error_code or "error", job.error_data or {})


SANDBOX_NOTE = "🧪 Sandbox render — not lip-synced, no credits spent."

# Discord rejects message content over 2000 characters.
MAX_CONTENT = 2000

_STATE_LINES: dict[JobState, str] = {
    JobState.RECEIVED: "⏳ Starting",
    JobState.FETCHING: "📥 Fetching your files",
    JobState.UPLOADING: "📤 Uploading to Magic Hour",
    JobState.CREATING: "📨 Starting the job at Magic Hour",
    JobState.SUBMITTED: "🕒 Waiting at Magic Hour",
    JobState.RENDERING: "🎬 Rendering",
    JobState.DOWNLOADING: "📥 Downloading the result",
    JobState.DELIVERING: "📨 Posting the result",
    JobState.DONE: "✅ Done",
    JobState.FAILED: "❌ Failed",
    JobState.CANCELED: "🛑 Canceled",
}

_STATE_ICONS: dict[JobState, str] = {state: line.split(" ", 1)[0] for state, line in _STATE_LINES.items()}

_MODE_COSTS: dict[GenerationMode, str] = {
    mode: f"{mode.credits_per_frame} credit{'s' if mode.credits_per_frame > 1 else ''}/frame" for mode in GenerationMode
}

_LIMIT_SOURCES: dict[LimitKind, str] = {
    LimitKind.MEMBER: "a limit a server manager set for you",
    LimitKind.ROLE: "the limit for one of your roles",
    LimitKind.SERVER_DEFAULT: "this server's default",
    LimitKind.GLOBAL_DEFAULT: "the bot's default",
}

_WINDOW_WORDS: dict[QuotaWindow, str] = {
    QuotaWindow.DAILY: "per day",
    QuotaWindow.WEEKLY: "per week",
    QuotaWindow.MONTHLY: "per month",
}


def mode_label(mode: GenerationMode) -> str:
    """A mode with its price, for the `/lipsync` choices: "lite — 1 credit/frame"."""
    return f"{mode.value} — {_MODE_COSTS[mode]}"


credits = words.credits


def duration(seconds: float) -> str:
    """A short elapsed time: "8 s", "2 min 5 s", "1 h 4 min"."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes} min"
    if minutes:
        return f"{minutes} min {secs} s"
    return f"{secs} s"


def _title(job: JobRecord) -> str:
    name = f" “{job.name}”" if job.name else ""
    return f"**Lip-sync job #{job.id}**{name} · {job.mode.value} · by <@{job.user_id}>"


def _inputs(job: JobRecord) -> str:
    video = f"`{job.video_filename}`" if job.video_filename else f"<{job.youtube_url}>"
    line = f"{video} + `{job.audio_filename}`"
    if job.start_seconds is not None and job.end_seconds is not None:
        line += f" · {job.start_seconds:g}–{job.end_seconds:g} s"
    return line


def _job_credits(job: JobRecord) -> str:
    """What the job cost, as the ledger closed it (it mirrors what Magic Hour charged)."""
    charged = job.charged_credits
    if job.state is JobState.DONE:
        return f"Cost: {credits(charged or 0)}."
    if job.state in (JobState.FAILED, JobState.CANCELED) and charged:
        return f"Charged: {credits(charged)} (what Magic Hour charged for it)."
    if job.state in (JobState.FAILED, JobState.CANCELED):
        return "No credits were used: anything set aside for this job was given back."
    return ""


def status_text(update: JobUpdate) -> str:
    """The live status message of one job: what it is, where it is, what it costs."""
    job = update.job
    lines = [_title(job)]
    state = _STATE_LINES[job.state]
    if job.state is JobState.RECEIVED and update.queue_position is not None:
        state = f"⏳ Waiting in line: position {update.queue_position}"
    elif job.state is JobState.FAILED and job.error_code:
        state = f"{state}: {failure_text(job)}"
    elif update.activity and not job.state.terminal:
        state = f"{state} · {describe(update.activity, update.activity_data)}"
    lines.append(state)
    lines.append(_inputs(job))
    if job.state.terminal:
        lines.append(_job_credits(job))
        lines.append(f"Took {duration(update.elapsed)}.")
    else:
        if job.estimated_credits is None:
            cost = "Estimate: worked out once the files are checked"
        else:
            cost = f"Estimate: {credits(job.estimated_credits)}"
        if update.remaining_credits is not None:
            after = " after this job" if update.credits_reserved else ""
            cost += f" · you have {credits(update.remaining_credits)} left{after}"
            if update.resets_at is not None:
                cost += f" (resets {discord_timestamp(update.resets_at)})"
        lines.append(cost)
        lines.append(f"Started {discord_timestamp(job.created_at)}.")
    if update.sandbox:
        lines.append(SANDBOX_NOTE)
    return _clip("\n".join(lines))


def result_text(
    job: JobRecord,
    *,
    sandbox: bool,
    kind: str,
    link: str | None = None,
    mention: bool = True,
) -> str:
    """The message that carries (or links to) a finished video."""
    who = f"<@{job.user_id}>, your" if mention else "Your"
    name = f" “{job.name}”" if job.name else ""
    lines = [f"{who} lip-sync job #{job.id}{name} is ready. Cost: {credits(job.charged_credits or 0)}."]
    if kind == "compressed":
        lines.append("It was re-encoded to fit the upload limit here.")
    if link is not None:
        lines.append(f"The video is too large to post here. Download it: {link}")
        lines.append("Links expire: press **New link** for a fresh one.")
    if sandbox:
        lines.append(SANDBOX_NOTE)
    return _clip("\n".join(lines))


def fresh_link_text(job_id: int, url: str) -> str:
    """The answer to the **New link** button."""
    return f"A fresh download link for job #{job_id}: {url}"


def canceled_text(job: JobRecord) -> str:
    """The answer to Cancel and `/cancel`."""
    if job.state is JobState.CANCELED:
        return f"Canceled job #{job.id}. {_job_credits(job)}"
    return f"Job #{job.id} had already ended."


def forgotten_text(report: DeletionReport) -> str:
    """The answer once a member's data is deleted: what went, and what had to stay (and until when)."""
    jobs = f"{report.jobs_deleted} job record{'' if report.jobs_deleted == 1 else 's'}"
    lines = [f"Done: deleted {jobs} and your name from your past usage."]
    if report.usage_kept_until is not None:
        lines.append(
            "What you used in the current period still counts against your allowance and this server's "
            f"credits until it resets {discord_timestamp(report.usage_kept_until)}; after that it is kept "
            "only in the server's totals, without your name."
        )
    if report.limits_kept:
        lines.append("Limits a server manager set for you stay in place.")
    return "\n".join(lines)


def forget_prompt() -> str:
    """What `/forget-me` asks before deleting anything."""
    return (
        "This deletes your lip-sync jobs in this server and takes your name off your usage. What you "
        "used this period keeps counting until it resets (deleting data never gives credits back), "
        "limits a manager set for you stay, and the server's totals keep your usage without your name. "
        "It can't be undone.\nRunning jobs must finish or be canceled first."
    )


def quota_text(balance: EffectiveLimits, window: QuotaWindow) -> str:
    """A member's credits: what is left, what applies, when it resets."""
    allowance = f"{credits(balance.allowance)} {_WINDOW_WORDS[window]}"
    lines = [
        "**Your lip-sync credits**",
        f"Left: **{credits(balance.remaining)}** · resets {discord_timestamp(balance.resets_at)}",
        f"Allowance: {allowance}, from {_LIMIT_SOURCES.get(balance.limit_kind, 'the bot')}.",
    ]
    if balance.granted:
        lines.append(f"Extra granted this period: {credits(balance.granted)}.")
    used = f"Used this period: {credits(balance.used)}"
    if balance.reserved:
        used += f" ({credits(balance.reserved)} held by running jobs, given back if they fail)"
    lines.append(used + ".")
    lines.append(f"Running jobs: {balance.active_jobs} of {balance.max_active_jobs} at a time.")
    if balance.pool_available is not None:
        lines.append(f"This server's shared pool has {credits(max(0, balance.pool_available))} left.")
    if balance.budget_available is not None:
        lines.append(f"The bot's overall budget has {credits(max(0, balance.budget_available))} left.")
    lines.append(
        "A render costs 1 credit per frame in lite and standard mode and 2 in pro: about 30 credits "
        "per second of 30 fps video. Lower `max_fps` to spend less."
    )
    return _clip("\n".join(lines))


def jobs_text(jobs: Sequence[JobRecord]) -> str:
    """A member's recent jobs, newest first, one line each."""
    if not jobs:
        return "You haven't started any lip-sync jobs here yet. Try `/lipsync`."
    lines = ["**Your recent lip-sync jobs**"]
    for job in jobs:
        source = job.video_filename or "YouTube"
        cost = job.charged_credits if job.state is JobState.DONE else job.estimated_credits
        price = f" · {credits(cost)}" if cost is not None else ""
        line = (
            f"`#{job.id}` {_STATE_ICONS[job.state]} {job.state.value} · {job.mode.value}{price} · "
            f"{discord_timestamp(job.created_at)} · {source} + {job.audio_filename}"
        )
        if job.state is JobState.FAILED and job.error_code:
            line += f"\n  ↳ {failure_text(job)}"
        lines.append(line)
    lines.append("Cancel a running job with `/cancel job_id:<number>`.")
    return _clip("\n".join(lines))


def _usage_numbers(line: UsageLine) -> str:
    parts = [f"{credits(line.used)} used", f"{line.jobs} job{'' if line.jobs == 1 else 's'}"]
    if line.refunded:
        parts.append(f"{line.refunded} refunded")
    if line.in_flight:
        parts.append(f"{credits(line.in_flight)} held by running jobs")
    if line.adjusted:
        parts.append(f"{line.adjusted:+d} adjusted")
    return ", ".join(parts)


def usage_text(report: UsageReport, *, top: int = 15) -> str:
    """A server's usage in a period, for managers: totals, by member, by mode."""
    lines = [
        f"**Usage from {discord_timestamp(report.since, 'f')} to {discord_timestamp(report.until, 'f')}**",
        f"Total: {_usage_numbers(report.total)}.",
    ]
    members = sorted(report.by_member.items(), key=lambda item: item[1].used, reverse=True)
    if members:
        lines.append("By member:")
        for user_id, line in members[:top]:
            who = f"<@{user_id}>" if user_id is not None else "deleted members"
            lines.append(f"• {who}: {_usage_numbers(line)}")
        if len(members) > top:
            lines.append(f"…and {len(members) - top} more.")
    modes = [(mode, line) for mode, line in report.by_mode.items() if mode is not None]
    if modes:
        lines.append("By mode: " + "; ".join(f"{mode.value}: {credits(line.used)}" for mode, line in modes))
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
    per = _WINDOW_WORDS[window]

    def own(value: object, default: str) -> str:
        return f"{value} (set here)" if value is not None else f"{default} (bot default)"

    modes = ", ".join(m.value for m in guild.allowed_modes) if guild.allowed_modes is not None else None
    lines = [
        "**Lip-sync settings for this server**",
        f"Member allowance: {own(guild.default_member_credits, str(default_member_credits))} credits {per}",
        f"Server pool: {f'{guild.pool_credits} credits {per}' if guild.pool_credits is not None else 'none'}",
        f"Modes: {own(modes, ', '.join(m.value for m in allowed_modes))}",
        f"Longest clip: {own(guild.max_clip_seconds, f'{max_clip_seconds:g}')} s",
        f"Jobs at a time per member: {own(guild.max_active_jobs, str(max_active_jobs))}",
    ]
    if role_limits:
        lines.append("Role limits: " + ", ".join(f"<@&{r}>: {c}" for r, c in sorted(role_limits.items())))
    if member_limits:
        lines.append("Member limits: " + ", ".join(f"<@{u}>: {c}" for u, c in sorted(member_limits.items())))
    return _clip("\n".join(lines))


def apology(reference: str) -> str:
    """The reply to an error nobody planned for."""
    return (
        "Sorry, something went wrong on the bot's side. No credits were spent on it. "
        f"If it keeps happening, give a server manager this reference: `{reference}`."
    )


def _clip(text: str) -> str:
    # Long error messages or many limits must never make Discord refuse the whole message.
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"


def queue_text(snapshot: QueueSnapshot, mine: Sequence[tuple[JobRecord, int | None]]) -> str:
    """`/queue`: how busy the bot is, and where each of the member's running jobs stands."""
    busy = f"**Queue**: {snapshot.in_flight} of {snapshot.capacity} job slots in use"
    line = "nobody is waiting" if snapshot.waiting == 0 else f"{snapshot.waiting} waiting in line"
    lines = [f"{busy}, {line}."]
    if not mine:
        lines.append("You have no running jobs.")
    for job, position in mine:
        where = f"position {position} in line" if position is not None else _STATE_LINES[job.state]
        lines.append(f"`#{job.id}` {where}")
    return _clip("\n".join(lines))
