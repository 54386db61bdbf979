"""Texts of a job's life in Discord: status, result, refusal, cancel, the member's jobs, queue and panel."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from bot import words
from bot.config import QuotaWindow
from bot.jobs.models import JobUpdate, QueueSnapshot
from bot.jobs.queue import EXACT_POSITIONS
from bot.store import UNKNOWN_AT_MAGIC_HOUR, Balance, JobRecord, JobState
from cogs.texts._balance import grant_lines, left_text, over_line
from cogs.texts._credits import cost_short, cost_text
from cogs.texts._mentions import MENTIONS
from cogs.texts._style import (
    _STATE_EMOJI,
    DISCORD,
    EN,
    TIMED_STATES,
    _clip,
    bold,
    button_label,
    coarse_duration,
    command_name,
    describe,
    discord_timestamp,
    duration,
    failure_text,
    jump_url,
    option_name,
    progress_bar,
    sandbox_note,
    span,
    state_label,
    style_for,
)


def _name(job: JobRecord) -> str:
    # A member's name for the job, shown as plain text: in a code span Discord makes no link, mention
    # or formatting of it (escaping markdown alone left a name that is a URL a clickable link).
    return f" {DISCORD.quote(job.name)}" if job.name else ""


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
        # The part as planned from the probe (what is sent to render), not the one asked for.
        part = {"span": span(job.start_seconds, job.end_seconds, lang)}
        line += f" · {describe('job_window', part, lang)}"
    return line


def _timing(update: JobUpdate, now: dt.datetime, lang: str) -> str:
    """Elapsed time, and the expected finish (or that it is late), for a job waiting on Magic Hour."""
    parts = [describe("progress_so_far", {"elapsed": coarse_duration(update.elapsed, lang)}, lang)]
    expected = _utc(update.expected_at)
    if expected is not None:
        started = _utc(update.render_started_at)
        if started is not None and expected > started:
            # How far the render should be, by the forecast: a bar that never fills before the end.
            fraction = (now - started).total_seconds() / (expected - started).total_seconds()
            parts.insert(0, progress_bar(fraction))
        if expected > now:
            parts.append(describe("progress_eta", {"expected_at": expected}, lang))
        else:
            parts.append(describe("progress_late", lang=lang))
    return " · ".join(parts)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # Documented as UTC; a naive one is read as UTC, never a crash.
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment


def _done_line(job: JobRecord, elapsed: float, lang: str) -> str:
    line = state_label(JobState.DONE, lang)
    if elapsed >= 1:
        line = f"{line} · {describe('done_in', {'elapsed': duration(elapsed, lang)}, lang)}"
    if job.delivery_kind == "dm":
        return f"{line} · {describe('delivered_by_dm', lang=lang)}"
    if job.delivery_kind == "thread":  # the member's settings: a thread of its own
        return f"{line} · {describe('delivered_in_thread', lang=lang)}"
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
        # Behind the first few a place isn't followed edit by edit (`bot.jobs.queue`): say so, not a stale number.
        if update.queue_position > EXACT_POSITIONS:
            waiting = describe("queue_waiting_far", {"front": EXACT_POSITIONS}, lang)
        else:
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

    Their files (a name that lies, a start past the video's end), or their credits.
    """
    if job.state is not JobState.FAILED or job.project_id is not None or not job.error_code:
        return False
    code = job.error_code
    bot_side = code in ("error", "internal_error", "interrupted", UNKNOWN_AT_MAGIC_HOUR) or code.startswith(
        ("magichour_", "magic_hour_")
    )
    return not bot_side


# States a job reaches only once its credits are reserved: from here on it has a public card.
_ADMITTED_STATES = frozenset(
    {
        JobState.UPLOADING,
        JobState.CREATING,
        JobState.SUBMITTED,
        JobState.RENDERING,
        JobState.DOWNLOADING,
        JobState.DELIVERING,
        JobState.DONE,
    }
)


def admitted(update: JobUpdate) -> bool:
    """Whether the job has been admitted (files checked, credits reserved): only then is it public.

    Before that a job is its member's business alone: queued, being checked, or refused.
    """
    job = update.job
    return update.credits_reserved or job.project_id is not None or job.state in _ADMITTED_STATES


def shows_number(job: JobRecord) -> bool:
    """Whether a member may see the job's number: only once it was admitted (its card posted).

    Job numbers are the store's row ids, and a job queued, being checked, refused or canceled
    before its card took one all the same: its member never saw it, so nothing shows it either.
    """
    before_card = job.state in (JobState.RECEIVED, JobState.FETCHING) or (
        job.state.terminal and job.status_message_id is None and job.project_id is None
    )
    return not (before_card or is_refusal(job))


def number_shown(job: JobRecord) -> str:
    """A job's number as its member's lists show it: `#12`, or `—` for a job never admitted."""
    return f"`#{job.id}`" if shows_number(job) else "`—`"


def private_progress_text(update: JobUpdate, lang: str) -> str:
    """What the member's private reply says before their job is admitted: no job number yet."""
    job = update.job
    if job.state is JobState.RECEIVED and update.queue_position is not None and update.queue_position > EXACT_POSITIONS:
        # Behind the first few a place isn't followed edit by edit (`bot.jobs.queue`): say so, not a stale number.
        line = f"{_STATE_EMOJI[JobState.RECEIVED]} {describe('queue_waiting_far', {'front': EXACT_POSITIONS}, lang)}."
    elif job.state is JobState.RECEIVED and update.queue_position is not None:
        data: dict[str, object] = {"position": update.queue_position}
        if update.expected_start is not None:
            data["expected_at"] = update.expected_start
            line = describe("private_queued_eta", data, lang)
        else:
            line = describe("private_queued", data, lang)
    elif job.state is JobState.FETCHING:
        line = describe("private_checking", lang=lang)
    else:
        line = describe("private_starting", lang=lang)
    return _clip(f"{line}\n{describe('private_only_you', lang=lang)}")


def card_posted_text(job_id: int | None, link: str | None, lang: str) -> str:
    """The member's private reply once their job's public card is up: where to follow it."""
    if job_id is None or link is None:
        return describe("private_starting", lang=lang)
    return describe("card_posted", {"job": job_id, "link": f"[{describe('card_link', lang=lang)}]({link})"}, lang)


def ended_privately_text(job: JobRecord, lang: str | None = None) -> str:
    """The private answer for a job that ended before it was admitted: why, and that it cost nothing."""
    lang = lang or job_language(job)
    if job.state is JobState.CANCELED:
        return describe("canceled_before_start", lang=lang)
    return _clip(f"❌ {describe('not_started', lang=lang)}\n{failure_text(job, lang)}")


def ping_text(job: JobRecord, lang: str) -> str:
    """The reply that pings a job's owner when its card shows how it ended (an edit notifies no one)."""
    key = "ping_done" if job.state is JobState.DONE else "ping_failed"
    return describe(key, {"member": job.user_id, "job": job.id}, lang)


def not_started_text(job: JobRecord, lang: str | None = None) -> str:
    """The private answer for a job refused after its files were fetched (`ended_privately_text`)."""
    return ended_privately_text(job, lang)


def result_text(
    job: JobRecord, *, sandbox: bool, kind: str, linked: bool = False, mention: bool = True, lang: str | None = None
) -> str:
    """The message that carries a finished video, or that offers it through buttons.

    `linked`: the video was too large to attach; a **Download** button carries the signed link.
    """
    lang = lang or job_language(job)
    data = {"job": job.id, "member": job.user_id, "name": _name(job)}
    ready = describe("result_ready" if mention else "result_ready_private", data, lang)
    # The result replaces the job's card: it says what was rendered too.
    lines = [f"{ready} {cost_text(job, lang)}", _inputs(job, lang)]
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
    if not job.state.terminal:  # Magic Hour hasn't confirmed the stop within the answer's minute
        return describe("cancel_pending", {"job": job.id}, lang)
    if job.state is JobState.CANCELED:
        return f"{describe('canceled_job', {'job': job.id}, lang)} {cost_text(job, lang)}"
    ended = describe("job_had_ended", {"job": job.id, "state": state_label(job.state, lang)}, lang)
    if job.state is JobState.FAILED:  # e.g. Magic Hour couldn't be read to stop it: say so
        ended = f"{ended} {failure_text(job, lang)}"
    return f"{ended} {cost_text(job, lang)}"


def started_text(lang: str = EN) -> str:
    """The private note under a picker once its job was handed on: its progress follows privately."""
    return describe("pick_started", lang=lang)


def _job_line(job: JobRecord, lang: str) -> str:
    style = style_for(lang)
    source = style.quote(job.video_filename) if job.video_filename else "YouTube"
    audio = style.quote(job.audio_filename or describe("audio_fallback", lang=lang))
    cost = cost_short(job, lang)
    price = f" · {cost}" if cost else ""
    # A job refused before it was admitted never had a card: its member never sees its number.
    number = number_shown(job)
    return (
        f"{number} {state_label(job.state, lang)} · {job.mode.value}{price} · "
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
    if any(not job.state.terminal for job in jobs):  # nothing to cancel otherwise: no hint
        number = describe("jobs_number", lang=lang)
        option = f"{option_name('job_id', lang, 'cancel')}:<{number}>"
        mention = MENTIONS.mention("cancel")  # clickable once the command's id is known
        cancel = f"{mention} `{option}`" if mention else f"`/{command_name('cancel', lang)} {option}`"
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
        lines.append(f"{number_shown(job)} {_where(job, position, lang)}")
    return _clip("\n".join(lines))


@dataclass(frozen=True)
class RunningJob:
    """One of the member's running jobs, as the panel shows it."""

    job: JobRecord
    position: int | None  # place in the bot's queue; None once it holds a slot
    elapsed: float  # seconds since it was asked for


def panel_text(
    balance: Balance,
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
    lines.extend(grant_lines(balance, lang))
    over = over_line(balance, lang)
    if over:
        lines.append(over)
    if not running:
        lines.append(describe("panel_none_running", {"max": balance.max_active_jobs}, lang))
    else:
        lines.append(describe("panel_running", {"count": len(running), "max": balance.max_active_jobs}, lang))
        for item in running:
            job = item.job
            cost = cost_short(job, lang)
            parts = [
                f"{number_shown(job)}{_name(job)} {_where(job, item.position, lang)}",
                describe("progress_so_far", {"elapsed": coarse_duration(item.elapsed, lang)}, lang),
            ]
            if cost:
                parts.append(cost)
            lines.append("• " + " · ".join(parts))
    lines.append(describe("panel_queue", {"queue": _queue_summary(snapshot, lang)}, lang))
    lines.append(describe("panel_more", lang=lang))
    return _clip("\n".join(lines))
