"""Every text the bot shows in Discord, as pure functions of engine and store records.

Nothing here talks to Discord or the database, so each message can be tested (and read) on its
own. Sentences that the core's codes stand for come from the shared catalogue (`bot.words`),
written in `DISCORD` style: times as Discord's timestamp markup (`<t:…:R>`), which each member's
client renders in their own language and time zone and which keeps counting without edits;
commands as `/name`; members' file names in code spans they can't break out of.

Three rules hold for every message here:

- **Credits are stated one way.** What a job cost is `cost_text` (or `cost_short` in lists): what
  the ledger settled (`JobRecord.charged_credits`), 0 with "refunded" for a job that cost
  nothing, an estimate while it runs. What a member has left is `left_text`: the effective amount
  across allowance, server pool and bot budget (`EffectiveLimits.remaining`), naming the pool or
  budget when that is what limits it. Numbers have thousands separators (`bot.words.credits`).
- **Balances are private.** Only ephemeral answers (and managers' ephemeral answers) carry what a
  member has left; public messages carry what a job costs, never a balance.
- **Members see no internals**: no signed download URLs (buttons carry them), no Magic Hour
  project ids (logs and the managers' report have them), no raw state names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import discord

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.errors import LipsyncError
from bot.jobs.models import JobUpdate, QueueSnapshot
from bot.jobs.submit import project_name
from bot.store import (
    SETTLED_STATES,
    UNKNOWN_AT_MAGIC_HOUR,
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


def describe(code: str, data: Mapping[str, object] | None = None) -> str:
    """The catalogue's sentence for `code`, written for Discord."""
    return words.describe(code, data or {}, DISCORD)


def error_text(error: LipsyncError) -> str:
    """What a member reads for one of the bot's errors."""
    return describe(error.code, error.data)


def failure_text(job: JobRecord) -> str:
    """Why a job failed, from the code and data stored with it."""
    return describe(job.error_code or "error", job.error_data or {})


SANDBOX_NOTE = f"🧪 {describe('sandbox_note')}"

# Discord rejects message content over 2000 characters, and link buttons whose URL is longer than 512.
MAX_CONTENT = 2000
MAX_BUTTON_URL = 512

_STATE_LINES: dict[JobState, str] = {
    JobState.RECEIVED: "⏳ Starting",
    JobState.FETCHING: "📥 Fetching your files",
    JobState.UPLOADING: "📤 Uploading to Magic Hour",
    JobState.CREATING: "📨 Starting the job at Magic Hour",
    JobState.SUBMITTED: "🕒 Waiting at Magic Hour",
    JobState.RENDERING: "🎬 Rendering at Magic Hour",
    JobState.DOWNLOADING: "📥 Downloading the result",
    JobState.DELIVERING: "📨 Posting the result",
    JobState.DONE: "✅ Done",
    JobState.FAILED: "❌ Failed",
    JobState.CANCELED: "🛑 Canceled",
}

# States whose line counts the time spent in them (and shows the expected finish, when known).
TIMED_STATES: frozenset[JobState] = frozenset({JobState.SUBMITTED, JobState.RENDERING})

_MODE_COSTS: dict[GenerationMode, str] = {
    mode: f"{mode.credits_per_frame} credit{'s' if mode.credits_per_frame > 1 else ''}/frame" for mode in GenerationMode
}

_LIMIT_SOURCES: dict[LimitKind, str] = {
    LimitKind.MEMBER: "a limit a server manager set for you",
    LimitKind.ROLE: "the limit for one of your roles",
    LimitKind.SERVER_DEFAULT: "this server's default",
    LimitKind.GLOBAL_DEFAULT: "the bot's default",
}


def state_label(state: JobState) -> str:
    """A state as members read it: "🎬 Rendering at Magic Hour", never the raw state name."""
    return _STATE_LINES[state]


def per_window(window: QuotaWindow) -> str:
    """How often an allowance renews: "per day"."""
    return describe(f"per_{window.value}")


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


def coarse_duration(seconds: float) -> str:
    """A running time that changes about once a minute: "40 s", "3 min", "1 h 4 min".

    Under a minute it moves in 10-second steps; so a status message refreshed every few seconds is
    edited only when the words change.
    """
    total = max(0, int(seconds))
    if total < 60:
        return f"{total // 10 * 10} s" if total >= 10 else "a few seconds"
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """A link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id if guild_id is not None else '@me'}/{channel_id}/{message_id}"


# ---------------------------------------------------------------------------------- credits


def cost_text(job: JobRecord) -> str:
    """What a job costs, as a sentence: an estimate while it runs, then what the ledger settled.

    Done: the charge. Failed or canceled: 0 with "refunded" when it cost nothing, else Magic Hour's
    charge, or (fate unknown at Magic Hour) what is counted as spent until a manager checks.
    """
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:  # rendered: settled to Magic Hour's charge, being delivered or done
        return describe("cost_charged", {"charged": charged})
    if not job.state.terminal:
        if job.estimated_credits is None:
            return describe("cost_estimate_pending")
        return describe("cost_estimate", {"estimate": job.estimated_credits})
    if not charged:
        return describe("cost_refunded")
    if job.error_code == UNKNOWN_AT_MAGIC_HOUR:
        return describe("cost_uncertain", {"charged": charged})
    return describe("cost_kept", {"charged": charged})


def cost_short(job: JobRecord) -> str:
    """What a job costs, for a list: "45 credits", "0 credits (refunded)", "about 45 credits"."""
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:
        return describe("cost_short_charged", {"charged": charged})
    if not job.state.terminal:
        if job.estimated_credits is None:
            return ""
        return describe("cost_short_estimate", {"estimate": job.estimated_credits})
    if not charged:
        return describe("cost_short_refunded")
    return describe("cost_short_charged", {"charged": charged})


def binding_limit(balance: EffectiveLimits) -> LimitKind | None:
    """The server pool or bot budget, when it (not the member's allowance) limits what they can spend."""
    if balance.remaining >= max(0, balance.member_available):
        return None
    for kind, available in (
        (LimitKind.SERVER_POOL, balance.pool_available),
        (LimitKind.BOT_BUDGET, balance.budget_available),
    ):
        if available is not None and max(0, available) == balance.remaining:
            return kind
    return None


def limited_by(balance: EffectiveLimits) -> str | None:
    """Why a member has less than their allowance says, when the server pool or bot budget limits it."""
    kind = binding_limit(balance)
    if kind is None:
        return None
    return describe(f"left_limited_by_{kind.value}", {"available": balance.remaining})


def left_text(balance: EffectiveLimits, window: QuotaWindow) -> str:
    """What a member can really spend now, and when it resets: private words, never public."""
    text = describe("credits_left", {"left": balance.remaining, "window": window.value, "resets_at": balance.resets_at})
    reason = limited_by(balance)
    return f"{text} ({reason})" if reason else text


def grant_line(balance: EffectiveLimits) -> str | None:
    """The period's grants: extra credits, or credits a manager took back."""
    if balance.granted > 0:
        return describe("granted_extra", {"granted": balance.granted})
    if balance.granted < 0:
        return describe("taken_back", {"taken": -balance.granted})
    return None


# ---------------------------------------------------------------------------------- a job


def _name(job: JobRecord) -> str:
    # A member's name for the job: markdown can't restyle the message, mentions are never allowed.
    return f" “{discord.utils.escape_markdown(job.name)}”" if job.name else ""


def _title(job: JobRecord) -> str:
    return f"**Lip-sync job #{job.id}**{_name(job)} · {job.mode.value} · by <@{job.user_id}>"


def _inputs(job: JobRecord) -> str:
    video = DISCORD.quote(job.video_filename) if job.video_filename else f"<{job.youtube_url}>"
    line = f"{video} + {DISCORD.quote(job.audio_filename or 'audio')}"
    if job.start_seconds is not None and job.end_seconds is not None:
        line += f" · {job.start_seconds:g}–{job.end_seconds:g} s"
    return line


def _timing(update: JobUpdate, now: dt.datetime) -> str:
    """Elapsed time, and the expected finish (or that it is late), for a job waiting on Magic Hour."""
    parts = [describe("progress_so_far", {"elapsed": coarse_duration(update.elapsed)})]
    expected = update.expected_at
    if expected is not None:
        if expected.tzinfo is None:  # documented as UTC; a naive one is read as UTC, never a crash
            expected = expected.replace(tzinfo=dt.UTC)
        if expected > now:
            parts.append(describe("progress_eta", {"expected_at": expected}))
        else:
            parts.append(describe("progress_late"))
    return " · ".join(parts)


def _done_line(job: JobRecord, elapsed: float) -> str:
    line = state_label(JobState.DONE)
    if elapsed >= 1:
        line = f"{line} · {describe('done_in', {'elapsed': duration(elapsed)})}"
    if job.delivery_kind == "dm":
        return f"{line} · {describe('delivered_by_dm')}"
    if job.delivery_message_id is not None and job.channel_id is not None:
        return f"{line} · [jump to the video]({jump_url(job.guild_id, job.channel_id, job.delivery_message_id)})"
    return line


def status_text(update: JobUpdate) -> str:
    """The live status message of one job: what it is, where it is, what it costs. Public: no balance."""
    job = update.job
    now = job.created_at + dt.timedelta(seconds=update.elapsed)
    if job.state is JobState.DONE:
        state = _done_line(job, update.elapsed)
    elif job.state is JobState.RECEIVED and update.queue_position is not None:
        state = f"⏳ Waiting in line: position {update.queue_position}"
    elif job.state is JobState.FAILED and job.error_code:
        state = f"{state_label(job.state)}: {failure_text(job)}"
    else:
        state = state_label(job.state)
        if job.state in TIMED_STATES:
            state = f"{state} · {_timing(update, now)}"
        if update.activity and not job.state.terminal:
            state = f"{state} · {describe(update.activity, update.activity_data)}"
    lines = [_title(job), state, _inputs(job), cost_text(job)]
    if not job.state.terminal:
        lines.append(f"Started {discord_timestamp(job.created_at)}.")
    if update.sandbox:
        lines.append(SANDBOX_NOTE)
    return _clip("\n".join(lines))


def is_refusal(job: JobRecord) -> bool:
    """A job refused before it reached Magic Hour, for a reason that is the member's own business.

    Their files (a name that lies, a start past the video's end), or their credits: told to them
    alone, not to the channel. Failures on the bot's or Magic Hour's side stay public.
    """
    if job.state is not JobState.FAILED or job.project_id is not None or not job.error_code:
        return False
    code = job.error_code
    bot_side = code in ("error", "internal_error", "interrupted", UNKNOWN_AT_MAGIC_HOUR) or code.startswith(
        ("magichour_", "magic_hour_")
    )
    return not bot_side


def not_started_text(job: JobRecord) -> str:
    """The private answer for a job refused after its files were fetched: why, and that it cost nothing."""
    return _clip(f"❌ {describe('not_started', {'job': job.id})}\n{failure_text(job)}")


def not_started_public(job: JobRecord) -> str:
    """What stays in the channel when a refusal could not be told privately: no reason, no numbers."""
    return describe("not_started_public", {"job": job.id, "member": job.user_id})


def result_text(job: JobRecord, *, sandbox: bool, kind: str, linked: bool = False, mention: bool = True) -> str:
    """The message that carries a finished video, or that offers it through buttons.

    `linked`: the video was too large to attach; a **Download** button carries the signed link.
    """
    who = f"<@{job.user_id}>, your" if mention else "Your"
    lines = [f"{who} lip-sync job #{job.id}{_name(job)} is ready. {cost_text(job)}"]
    if kind == "compressed":
        lines.append("It was re-encoded to fit the upload limit here.")
    if kind == "link":
        how = "use the **Download** button" if linked else "press **New link** for a download link"
        lines.append(f"The video is too large to post here: {how}. Links expire; **New link** makes a fresh one.")
    if sandbox:
        lines.append(SANDBOX_NOTE)
    return _clip("\n".join(lines))


def fresh_link_text(job_id: int, *, button: bool, url: str) -> str:
    """The private answer to the **New link** button; the link itself is on a button when it fits one."""
    if button:
        return f"A fresh download link for job #{job_id}: use the **Download** button. It expires after a while."
    return f"A fresh download link for job #{job_id}: [download the video](<{url}>). It expires after a while."


def canceled_text(job: JobRecord) -> str:
    """The answer to Cancel and `/cancel`."""
    if job.state is JobState.CANCELED:
        return f"Canceled job #{job.id}. {cost_text(job)}"
    return f"Job #{job.id} had already ended: {state_label(job.state)}. {cost_text(job)}"


# ---------------------------------------------------------------------------------- members' answers


def forgotten_text(report: DeletionReport) -> str:
    """The answer once a member's data is deleted: what went, and what had to stay (and until when)."""
    jobs = f"{words.number(report.jobs_deleted)} job record{'' if report.jobs_deleted == 1 else 's'}"
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
    """A member's credits (private): what is left across every limit, what applies, when it resets."""
    lines = [
        "**Your lip-sync credits**",
        f"Left: **{credits(balance.remaining)}** · resets {discord_timestamp(balance.resets_at)}",
    ]
    reason = limited_by(balance)
    if reason:
        lines.append(f"Less than your allowance says: {reason}.")
    lines.append(
        f"Allowance: {credits(balance.allowance)} {per_window(window)}, "
        f"from {_LIMIT_SOURCES.get(balance.limit_kind, 'the bot')}."
    )
    grants = grant_line(balance)
    if grants:
        lines.append(grants)
    used = f"Used this period: {credits(balance.used)}"
    if balance.reserved:
        used += f" ({credits(balance.reserved)} held by running jobs, given back if they fail)"
    lines.append(used + ".")
    lines.append(f"Running jobs: {balance.active_jobs} of {balance.max_active_jobs} at a time.")
    binding = binding_limit(balance)  # already named above
    if balance.pool_available is not None and binding is not LimitKind.SERVER_POOL:
        lines.append(f"This server's shared pool has {credits(max(0, balance.pool_available))} left.")
    if balance.budget_available is not None and binding is not LimitKind.BOT_BUDGET:
        lines.append(f"The bot's overall budget has {credits(max(0, balance.budget_available))} left.")
    lines.append(
        "A render costs 1 credit per frame in lite and standard mode and 2 in pro: about 30 credits "
        "per second of 30 fps video. Lower `max_fps` to spend less."
    )
    return _clip("\n".join(lines))


def _job_line(job: JobRecord) -> str:
    source = DISCORD.quote(job.video_filename) if job.video_filename else "YouTube"
    audio = DISCORD.quote(job.audio_filename or "audio")
    cost = cost_short(job)
    price = f" · {cost}" if cost else ""
    return (
        f"`#{job.id}` {state_label(job.state)} · {job.mode.value}{price} · "
        f"{discord_timestamp(job.created_at)} · {source} + {audio}"
    )


def jobs_text(jobs: Sequence[JobRecord]) -> str:
    """A member's recent jobs, newest first, one line each (private)."""
    if not jobs:
        return "You haven't started any lip-sync jobs here yet. Try `/lipsync`."
    lines = ["**Your recent lip-sync jobs**"]
    for job in jobs:
        line = _job_line(job)
        if job.state is JobState.FAILED and job.error_code:
            line += f"\n  ↳ {failure_text(job)}"
        lines.append(line)
    lines.append("Cancel a running job with `/cancel job_id:<number>`, or from `/lipsync-status`.")
    return _clip("\n".join(lines))


def _queue_summary(snapshot: QueueSnapshot) -> str:
    busy = f"{snapshot.in_flight} of {snapshot.capacity} job slots in use"
    line = "nobody is waiting" if snapshot.waiting == 0 else f"{snapshot.waiting} waiting in line"
    return f"{busy}, {line}"


def _where(job: JobRecord, position: int | None) -> str:
    return f"position {position} in line" if position is not None else state_label(job.state)


def queue_text(snapshot: QueueSnapshot, mine: Sequence[tuple[JobRecord, int | None]]) -> str:
    """`/queue`: how busy the bot is, and where each of the member's running jobs stands."""
    lines = [f"**Queue**: {_queue_summary(snapshot)}."]
    if not mine:
        lines.append("You have no running jobs.")
    for job, position in mine:
        lines.append(f"`#{job.id}` {_where(job, position)}")
    return _clip("\n".join(lines))


@dataclass(frozen=True)
class RunningJob:
    """One of the member's running jobs, as the panel shows it."""

    job: JobRecord
    position: int | None  # place in the bot's queue; None once it holds a slot
    elapsed: float  # seconds since it was asked for


def panel_text(
    balance: EffectiveLimits, window: QuotaWindow, running: Sequence[RunningJob], snapshot: QueueSnapshot
) -> str:
    """`/lipsync-status`: the member's credits, running jobs and the queue, in one private panel."""
    lines = ["**Your lip-sync status**", f"Credits: **{left_text(balance, window)}**."]
    grants = grant_line(balance)
    if grants:
        lines.append(grants)
    if not running:
        lines.append(f"Running jobs: none (up to {balance.max_active_jobs} at a time). Start one with `/lipsync`.")
    else:
        lines.append(f"Running jobs ({len(running)} of {balance.max_active_jobs} at a time):")
        for item in running:
            job = item.job
            cost = cost_short(job)
            parts = [
                f"`#{job.id}`{_name(job)} {_where(job, item.position)}",
                describe("progress_so_far", {"elapsed": coarse_duration(item.elapsed)}),
            ]
            if cost:
                parts.append(cost)
            lines.append("• " + " · ".join(parts))
    lines.append(f"Queue: {_queue_summary(snapshot)}.")
    lines.append("More: `/quota` (credits in detail), `/jobs` (recent jobs).")
    return _clip("\n".join(lines))


# ---------------------------------------------------------------------------------- managers


def _usage_numbers(line: UsageLine) -> str:
    jobs = f"{words.number(line.jobs)} job{'' if line.jobs == 1 else 's'}"
    if line.refunded:
        jobs += f" ({words.number(line.refunded)} refunded)"
    parts = [f"{credits(line.used)} used", jobs]
    if line.in_flight:
        parts.append(f"{credits(line.in_flight)} held by running jobs")
    if line.adjusted:
        sign = "+" if line.adjusted > 0 else "−"
        parts.append(f"adjustments {sign}{credits(abs(line.adjusted))}")
    return " · ".join(parts)


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
        line += f" (project id `{job.project_id}`)"
    return f"• {line}"


def usage_text(report: UsageReport, *, top: int = 15) -> str:
    """A server's usage in a period, for managers: totals, by member, by mode, and jobs to check."""
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
    if report.uncertain:
        lines.append(describe("uncertain_heading", {"count": len(report.uncertain)}))
        lines.extend(_uncertain_line(job) for job in report.uncertain[:top])
        if len(report.uncertain) > top:
            lines.append(f"…and {len(report.uncertain) - top} more.")
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
        return f"{value} (set here)" if value is not None else f"{default} (bot default)"

    def amount(value: int | None) -> str | None:
        return None if value is None else f"{credits(value)} {per}"

    modes = ", ".join(m.value for m in guild.allowed_modes) if guild.allowed_modes is not None else None
    clip = words.seconds(guild.max_clip_seconds) if guild.max_clip_seconds is not None else None
    jobs = str(guild.max_active_jobs) if guild.max_active_jobs is not None else None
    pool = amount(guild.pool_credits)
    lines = [
        "**Lip-sync settings for this server**",
        f"Member allowance: {own(amount(guild.default_member_credits), f'{credits(default_member_credits)} {per}')}",
        f"Server pool: {f'{pool} (set here)' if pool is not None else 'none'}",
        f"Modes: {own(modes, ', '.join(m.value for m in allowed_modes))}",
        f"Longest clip: {own(clip, words.seconds(max_clip_seconds))}",
        f"Jobs at a time per member: {own(jobs, str(max_active_jobs))}",
    ]
    if role_limits:
        lines.append(
            "Role limits: " + ", ".join(f"<@&{r}>: {credits(c)} {per}" for r, c in sorted(role_limits.items()))
        )
    if member_limits:
        lines.append(
            "Member limits: " + ", ".join(f"<@{u}>: {credits(c)} {per}" for u, c in sorted(member_limits.items()))
        )
    return _clip("\n".join(lines))


def grant_text(member_id: int, asked: int, taken: int | None, balance: EffectiveLimits, window: QuotaWindow) -> str:
    """A manager's grant, as it really happened: credits given, taken back (clamped), or nothing to take."""
    data: dict[str, object] = {
        "member": member_id,
        "resets_at": balance.resets_at,
        "left": balance.remaining,
        "window": window.value,
    }
    if taken is None:
        return describe("nothing_to_take_back", data)
    if asked > 0:
        text = describe("granted", {**data, "credits": taken})
    elif -taken < -asked:
        text = describe("took_back_all", {**data, "taken": -taken, "asked": -asked})
    else:
        text = describe("took_back", {**data, "taken": -taken})
    reason = limited_by(balance)
    return f"{text[:-1]} ({reason})." if reason and text.endswith(".") else text


def apology(reference: str) -> str:
    """The reply to an error nobody planned for."""
    return (
        "Sorry, something went wrong on the bot's side. No credits were spent on it. "
        f"If it keeps happening, give a server manager this reference: `{reference}`."
    )


def _clip(text: str) -> str:
    # Long error messages or many limits must never make Discord refuse the whole message.
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"
