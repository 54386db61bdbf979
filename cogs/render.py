"""Every text the bot shows in Discord, as pure functions of engine and store records.

Nothing here talks to Discord or the database, so each message can be tested (and read) on its
own. The words come from the shared catalogue (`bot.words`, one file per language), written in a
`DiscordStyle` for the reader's language: times as Discord's timestamp markup (`<t:…:R>`), which
each member's client renders in their own language and time zone and which keeps counting without
edits; commands as `/name` in that language; members' file names in code spans they can't break
out of. What is Discord's own markup (bold, links, emoji, mentions) is added here, never in the
templates, so a translator only ever sees words.

Every function takes `lang`, a catalogue language (`bot.words.language_for` of a Discord locale):
an answer to an interaction is in the language of whoever acted (`cogs.locale.language_of`); a
job's status message and result are in the language of the member who started it (stored with the
job, `JobRecord.locale`).

Three rules hold for every message here:

- **Credits are stated one way.** What a job cost is `cost_text` (or `cost_short` in lists): what
  the ledger settled (`JobRecord.charged_credits`), 0 with "refunded" for a job that cost
  nothing, an estimate while it runs. What a member has left is `left_text`: the effective amount
  across allowance, server pool and bot budget (`EffectiveLimits.remaining`), naming the pool or
  budget when that is what limits it. Numbers have the language's separators (`bot.words.credits`).
- **Balances are private.** Only ephemeral answers (and managers' ephemeral answers) carry what a
  member has left; public messages carry what a job costs, never a balance.
- **Members see no internals**: no signed download URLs (buttons carry them), no Magic Hour
  project ids (logs and the managers' report have them), no raw state names.
"""

from __future__ import annotations

import datetime as dt
import functools
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

EN = words.DEFAULT_LANGUAGE


def discord_timestamp(moment: dt.datetime, style: str = "R") -> str:
    """Discord's timestamp markup, e.g. `<t:1764115200:R>` ("in 3 hours" in the viewer's locale)."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def command_name(name: str, lang: str = EN) -> str:
    """A command's name as members of this language see it in Discord (`cancel` -> `cancelar`)."""
    return words.commands(lang).get(name) or name


def option_name(name: str, lang: str = EN, command: str = "lipsync") -> str:
    """One of a command's options as members of this language see it (`end` -> `fin`)."""
    return words.commands(lang).get(f"{command}.{name}") or name


class DiscordStyle:
    """How the catalogue's sentences are written in Discord, for readers of one language."""

    def __init__(self, language: str = EN) -> None:
        self.language = language

    def when(self, moment: dt.datetime) -> str:
        """A relative Discord timestamp."""
        return discord_timestamp(moment)

    def command(self, name: str) -> str:
        """A slash command, as a code span, by the name this language's members see."""
        return f"`/{command_name(name, self.language)}`"

    def quote(self, text: str) -> str:
        """A member's name for something, in a code span it can't close early."""
        return f"`{text.replace('`', 'ˋ')}`"

    def member(self, user_id: int) -> str:
        """A mention (messages that carry one allow only the intended member to be pinged)."""
        return f"<@{user_id}>"

    def option(self, name: str) -> str:
        """A `/lipsync` option, as a code span, by the name this language's members see."""
        return f"`{option_name(name, self.language)}`"


DISCORD = DiscordStyle()


@functools.cache
def style_for(lang: str) -> DiscordStyle:
    """The Discord style for one language."""
    return DiscordStyle(lang)


def describe(code: str, data: Mapping[str, object] | None = None, lang: str = EN) -> str:
    """The catalogue's sentence for `code`, written for Discord in `lang`.

    Clipped to what Discord accepts: a sentence quoting a member's 1,000-character file name must
    still reach them (a message over the limit is refused whole).
    """
    return _clip(words.describe(code, data or {}, style_for(lang), lang))


def error_text(error: LipsyncError, lang: str = EN) -> str:
    """What a member reads for one of the bot's errors."""
    return describe(error.code, error.data, lang)


def failure_text(job: JobRecord, lang: str = EN) -> str:
    """Why a job failed, from the code and data stored with it."""
    return describe(job.error_code or "error", job.error_data or {}, lang)


def sandbox_note(lang: str = EN) -> str:
    """How a sandbox render counts, under every sandbox job's messages."""
    return f"🧪 {describe('sandbox_note', lang=lang)}"


SANDBOX_NOTE = sandbox_note()

# Discord rejects message content over 2000 characters, and link buttons whose URL is longer than 512.
MAX_CONTENT = 2000
MAX_BUTTON_URL = 512

_STATE_EMOJI: dict[JobState, str] = {
    JobState.RECEIVED: "⏳",
    JobState.FETCHING: "📥",
    JobState.UPLOADING: "📤",
    JobState.CREATING: "📨",
    JobState.SUBMITTED: "🕒",
    JobState.RENDERING: "🎬",
    JobState.DOWNLOADING: "📥",
    JobState.DELIVERING: "📨",
    JobState.DONE: "✅",
    JobState.FAILED: "❌",
    JobState.CANCELED: "🛑",
}

# States whose line counts the time spent in them (and shows the expected finish, when known).
TIMED_STATES: frozenset[JobState] = frozenset({JobState.SUBMITTED, JobState.RENDERING})

_MODE_COSTS: dict[GenerationMode, str] = {
    mode: f"{mode.credits_per_frame} credit{'s' if mode.credits_per_frame > 1 else ''}/frame" for mode in GenerationMode
}


def state_label(state: JobState, lang: str = EN) -> str:
    """A state as members read it: "🎬 Rendering at Magic Hour", never the raw state name."""
    return f"{_STATE_EMOJI[state]} {describe(f'state_{state.value}', lang=lang)}"


def per_window(window: QuotaWindow, lang: str = EN) -> str:
    """How often an allowance renews: "per day"."""
    return describe(f"per_{window.value}", lang=lang)


def mode_label(mode: GenerationMode) -> str:
    """A mode with its price, for the `/lipsync` choices: "lite — 1 credit/frame".

    The English default Discord is sent; other languages' labels are the catalogue's `[commands]`
    `choice.<mode>` entries, which the translator gives Discord.
    """
    return f"{mode.value} — {_MODE_COSTS[mode]}"


def credits(n: int, lang: str = EN) -> str:
    """ "1 credit", "1,234 credits" in `lang`."""
    return words.credits(n, lang)


def duration(seconds: float, lang: str = EN) -> str:
    """A short elapsed time: "8 s", "2 min 5 s", "1 h 4 min"."""
    total = max(0, round(seconds))
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return describe("duration_h_min", {"h": hours, "min": minutes}, lang)
    if minutes:
        return describe("duration_min_s", {"min": minutes, "s": secs}, lang)
    return describe("duration_s", {"s": secs}, lang)


def coarse_duration(seconds: float, lang: str = EN) -> str:
    """A running time that changes about once a minute: "40 s", "3 min", "1 h 4 min".

    Under a minute it moves in 10-second steps; so a status message refreshed every few seconds is
    edited only when the words change.
    """
    total = max(0, int(seconds))
    if total < 60:
        if total < 10:
            return describe("duration_few", lang=lang)
        return describe("duration_s", {"s": total // 10 * 10}, lang)
    hours, rest = divmod(total, 3600)
    minutes = rest // 60
    if hours:
        return describe("duration_h_min", {"h": hours, "min": minutes}, lang)
    return describe("duration_min", {"min": minutes}, lang)


def jump_url(guild_id: int | None, channel_id: int, message_id: int) -> str:
    """A link that opens a message in Discord."""
    return f"https://discord.com/channels/{guild_id if guild_id is not None else '@me'}/{channel_id}/{message_id}"


def bold(text: str) -> str:
    """Discord's bold markup."""
    return f"**{text}**"


def button_label(code: str, lang: str = EN, **data: object) -> str:
    """A button's label in `lang` (Discord allows 80 characters)."""
    return describe(code, data, lang)[:80]


# ---------------------------------------------------------------------------------- credits


def cost_text(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, as a sentence: an estimate while it runs, then what the ledger settled.

    Done: the charge. Failed or canceled: 0 with "refunded" when it cost nothing, else Magic Hour's
    charge, or (fate unknown at Magic Hour) what is counted as spent until a manager checks.
    """
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:  # rendered: settled to Magic Hour's charge, being delivered or done
        return describe("cost_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        if job.estimated_credits is None:
            return describe("cost_estimate_pending", lang=lang)
        return describe("cost_estimate", {"estimate": job.estimated_credits}, lang)
    if not charged:
        return describe("cost_refunded", lang=lang)
    if job.error_code == UNKNOWN_AT_MAGIC_HOUR:
        return describe("cost_uncertain", {"charged": charged}, lang)
    return describe("cost_kept", {"charged": charged}, lang)


def cost_short(job: JobRecord, lang: str = EN) -> str:
    """What a job costs, for a list: "45 credits", "0 credits (refunded)", "about 45 credits"."""
    charged = job.charged_credits or 0
    if job.state in SETTLED_STATES:
        return describe("cost_short_charged", {"charged": charged}, lang)
    if not job.state.terminal:
        if job.estimated_credits is None:
            return ""
        return describe("cost_short_estimate", {"estimate": job.estimated_credits}, lang)
    if not charged:
        return describe("cost_short_refunded", lang=lang)
    return describe("cost_short_charged", {"charged": charged}, lang)


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


def limited_by(balance: EffectiveLimits, lang: str = EN) -> str | None:
    """Why a member has less than their allowance says, when the server pool or bot budget limits it."""
    kind = binding_limit(balance)
    if kind is None:
        return None
    return describe(f"left_limited_by_{kind.value}", {"available": balance.remaining}, lang)


def left_text(balance: EffectiveLimits, window: QuotaWindow, lang: str = EN) -> str:
    """What a member can really spend now, and when it resets: private words, never public."""
    data = {"left": balance.remaining, "window": window.value, "resets_at": balance.resets_at}
    text = describe("credits_left", data, lang)
    reason = limited_by(balance, lang)
    return f"{text} ({reason})" if reason else text


def grant_line(balance: EffectiveLimits, lang: str = EN) -> str | None:
    """The period's grants: extra credits, or credits a manager took back."""
    if balance.granted > 0:
        return describe("granted_extra", {"granted": balance.granted}, lang)
    if balance.granted < 0:
        return describe("taken_back", {"taken": -balance.granted}, lang)
    return None


# ---------------------------------------------------------------------------------- a job


def _name(job: JobRecord) -> str:
    # A member's name for the job: markdown can't restyle the message, mentions are never allowed.
    return f" “{discord.utils.escape_markdown(job.name)}”" if job.name else ""


def _title(job: JobRecord, lang: str) -> str:
    title = bold(describe("job_title", {"job": job.id}, lang))
    by = describe("job_by", {"member": job.user_id}, lang)
    line = f"{title}{_name(job)} · {job.mode.value} · {by}"
    if job.rerun_of is not None:
        line += f" · {describe('job_again_of', {'job': job.rerun_of}, lang)}"
    return line


def _inputs(job: JobRecord, lang: str) -> str:
    style = style_for(lang)
    video = style.quote(job.video_filename) if job.video_filename else f"<{job.youtube_url}>"
    audio = style.quote(job.audio_filename or describe("audio_fallback", lang=lang))
    line = f"{video} + {audio}"
    if job.start_seconds is not None and job.end_seconds is not None:
        # A probed end (the voice's length) can carry more digits than anyone reads.
        window = {"start": round(job.start_seconds, 2), "end": round(job.end_seconds, 2)}
        line += f" · {describe('job_window', window, lang)}"
    return line


def _timing(update: JobUpdate, now: dt.datetime, lang: str) -> str:
    """Elapsed time, and the expected finish (or that it is late), for a job waiting on Magic Hour."""
    parts = [describe("progress_so_far", {"elapsed": coarse_duration(update.elapsed, lang)}, lang)]
    expected = update.expected_at
    if expected is not None:
        if expected.tzinfo is None:  # documented as UTC; a naive one is read as UTC, never a crash
            expected = expected.replace(tzinfo=dt.UTC)
        if expected > now:
            parts.append(describe("progress_eta", {"expected_at": expected}, lang))
        else:
            parts.append(describe("progress_late", lang=lang))
    return " · ".join(parts)


def _done_line(job: JobRecord, elapsed: float, lang: str) -> str:
    line = state_label(JobState.DONE, lang)
    if elapsed >= 1:
        line = f"{line} · {describe('done_in', {'elapsed': duration(elapsed, lang)}, lang)}"
    if job.delivery_kind == "dm":
        return f"{line} · {describe('delivered_by_dm', lang=lang)}"
    if job.delivery_message_id is not None and job.channel_id is not None:
        link = jump_url(job.guild_id, job.channel_id, job.delivery_message_id)
        return f"{line} · [{describe('jump_to_video', lang=lang)}]({link})"
    return line


def job_language(job: JobRecord) -> str:
    """The language of a job's own messages: that of the member who started it."""
    return words.language_for(job.locale)


def status_text(update: JobUpdate, lang: str | None = None) -> str:
    """The live status message of one job: what it is, where it is, what it costs. Public: no balance.

    Written in the language of the member who started the job, unless `lang` says otherwise.
    """
    job = update.job
    lang = lang or job_language(job)
    now = job.created_at + dt.timedelta(seconds=update.elapsed)
    if job.state is JobState.DONE:
        state = _done_line(job, update.elapsed, lang)
    elif job.state is JobState.RECEIVED and update.queue_position is not None:
        waiting = describe("queue_waiting", {"position": update.queue_position}, lang)
        state = f"{_STATE_EMOJI[JobState.RECEIVED]} {waiting}"
    elif job.state is JobState.FAILED and job.error_code:
        state = f"{state_label(job.state, lang)}: {failure_text(job, lang)}"
    else:
        state = state_label(job.state, lang)
        if job.state in TIMED_STATES:
            state = f"{state} · {_timing(update, now, lang)}"
        if update.activity and not job.state.terminal:
            state = f"{state} · {describe(update.activity, update.activity_data, lang)}"
    lines = [_title(job, lang), state, _inputs(job, lang), cost_text(job, lang)]
    if not job.state.terminal:
        lines.append(describe("job_started", {"at": job.created_at}, lang))
    if update.sandbox:
        lines.append(sandbox_note(lang))
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


def not_started_text(job: JobRecord, lang: str | None = None) -> str:
    """The private answer for a job refused after its files were fetched: why, and that it cost nothing."""
    lang = lang or job_language(job)
    return _clip(f"❌ {describe('not_started', {'job': job.id}, lang)}\n{failure_text(job, lang)}")


def not_started_public(job: JobRecord, lang: str | None = None) -> str:
    """What stays in the channel when a refusal could not be told privately: no reason, no numbers."""
    return describe("not_started_public", {"job": job.id, "member": job.user_id}, lang or job_language(job))


def result_text(
    job: JobRecord, *, sandbox: bool, kind: str, linked: bool = False, mention: bool = True, lang: str | None = None
) -> str:
    """The message that carries a finished video, or that offers it through buttons.

    `linked`: the video was too large to attach; a **Download** button carries the signed link.
    """
    lang = lang or job_language(job)
    data = {"job": job.id, "member": job.user_id, "name": _name(job)}
    ready = describe("result_ready" if mention else "result_ready_private", data, lang)
    lines = [f"{ready} {cost_text(job, lang)}"]
    if kind == "compressed":
        lines.append(describe("result_compressed", lang=lang))
    if kind == "link":
        buttons = {
            "download": bold(button_label("button_download", lang)),
            "new_link": bold(button_label("button_new_link", lang)),
        }
        lines.append(describe("result_too_large_linked" if linked else "result_too_large", buttons, lang))
    if sandbox:
        lines.append(sandbox_note(lang))
    return _clip("\n".join(lines))


def fresh_link_text(job_id: int, *, button: bool, url: str, lang: str = EN) -> str:
    """The private answer to the **New link** button; the link itself is on a button when it fits one."""
    if button:
        return describe(
            "fresh_link_button", {"job": job_id, "download": bold(button_label("button_download", lang))}, lang
        )
    # The link's words come from the catalogue; the markdown link around them is Discord's.
    link = f"[{describe('download_the_video', lang=lang)}](<{url}>)"
    return describe("fresh_link", {"job": job_id, "link": link}, lang)


def canceled_text(job: JobRecord, lang: str = EN) -> str:
    """The answer to Cancel and `/cancel`."""
    if job.state is JobState.CANCELED:
        return f"{describe('canceled_job', {'job': job.id}, lang)} {cost_text(job, lang)}"
    ended = describe("job_had_ended", {"job": job.id, "state": state_label(job.state, lang)}, lang)
    return f"{ended} {cost_text(job, lang)}"


# ---------------------------------------------------------------------------------- members' answers


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


# ---------------------------------------------------------------------------------- re-runs and picks


def started_text(job: JobRecord, lang: str = EN) -> str:
    """The private note under a picker once its job started."""
    return describe("pick_started", {"job": job.id}, lang)


# ---------------------------------------------------------------------------------- managers


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


def apology(reference: str, lang: str = EN) -> str:
    """The reply to an error nobody planned for."""
    return describe("apology", {"reference": f"`{reference}`"}, lang)


def _clip(text: str) -> str:
    # Long error messages or many limits must never make Discord refuse the whole message.
    return text if len(text) <= MAX_CONTENT else text[: MAX_CONTENT - 1] + "…"
