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
)


def _name(job: JobRecord) -> str:
    # A member's name for the job, shown as plain text: in a code span Discord makes no link, mention
    # or formatting of it (escaping markdown alone left a name that is a URL a clickable link).
    return f" {DISCORD.quote(job.name)}" if job.name else ""


def _title(job: JobRecord) -> str:
    title = bold(describe("job_title", {"job": job.id}))
    by = describe("job_by", {"member": job.user_id})
    line = f"{title}{_name(job)} · {job.mode.value} · {by}"
    if job.rerun_of is not None:
        line += f" · {describe('job_again_of', {'job': job.rerun_of})}"
    return line


def _inputs(job: JobRecord) -> str:
    style = DISCORD
    video = style.quote(job.video_filename) if job.video_filename else f"<{job.youtube_url}>"
    audio = style.quote(job.audio_filename or describe("audio_fallback"))
    line = f"{video} + {audio}"
    if job.start_seconds is not None and job.end_seconds is not None:
        # The part as planned from the probe (what is sent to render), not the one asked for.
        part = {"span": span(job.start_seconds, job.end_seconds)}
        line += f" · {describe('job_window', part)}"
    return line


def _timing(update: JobUpdate, now: dt.datetime) -> str:
    """Elapsed time, and the expected finish (or that it is late), for a job waiting on Magic Hour."""
    parts = [describe("progress_so_far", {"elapsed": coarse_duration(update.elapsed)})]
    expected = _utc(update.expected_at)
    if expected is not None:
        started = _utc(update.render_started_at)
        if started is not None and expected > started:
            # How far the render should be, by the forecast: a bar that never fills before the end.
            fraction = (now - started).total_seconds() / (expected - started).total_seconds()
            parts.insert(0, progress_bar(fraction))
        if expected > now:
            parts.append(describe("progress_eta", {"expected_at": expected}))
        else:
            parts.append(describe("progress_late"))
    return " · ".join(parts)


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # Documented as UTC; a naive one is read as UTC, never a crash.
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment


def _done_line(job: JobRecord, elapsed: float) -> str:
    line = state_label(JobState.DONE)
    if elapsed >= 1:
        line = f"{line} · {describe('done_in', {'elapsed': duration(elapsed)})}"
    if job.delivery_kind == "dm":
        return f"{line} · {describe('delivered_by_dm')}"
    if job.delivery_kind == "thread":  # the member's settings: a thread of its own
        return f"{line} · {describe('delivered_in_thread')}"
    if job.delivery_message_id is not None and job.channel_id is not None:
        link = jump_url(job.guild_id, job.channel_id, job.delivery_message_id)
        return f"{line} · [{describe('jump_to_video')}]({link})"
    return line


def job_language(job: JobRecord) -> str:
    """The language of a job's own messages: that of the member who started it."""
    return words.language_for(job.locale)


def status_text(update: JobUpdate) -> str:
    """The live status message of one job: what it is, where it is, what it costs. Public: no balance.

    Written in the reader's language: the job's hooks make that its owner's (`_presenter`).
    """
    job = update.job
    now = job.created_at + dt.timedelta(seconds=update.elapsed)
    if job.state is JobState.DONE:
        state = _done_line(job, update.elapsed)
    elif job.state is JobState.RECEIVED and update.queue_position is not None:
        # Behind the first few a place isn't followed edit by edit (`bot.jobs.queue`): say so, not a stale number.
        if update.queue_position > EXACT_POSITIONS:
            waiting = describe("queue_waiting_far", {"front": EXACT_POSITIONS})
        else:
            waiting = describe("queue_waiting", {"position": update.queue_position})
        state = f"{_STATE_EMOJI[JobState.RECEIVED]} {waiting}"
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
        lines.append(describe("job_started", {"at": job.created_at}))
    if update.sandbox:
        lines.append(sandbox_note())
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


def private_progress_text(update: JobUpdate) -> str:
    """What the member's private reply says before their job is admitted: no job number yet."""
    job = update.job
    if job.state is JobState.RECEIVED and update.queue_position is not None and update.queue_position > EXACT_POSITIONS:
        # Behind the first few a place isn't followed edit by edit (`bot.jobs.queue`): say so, not a stale number.
        line = f"{_STATE_EMOJI[JobState.RECEIVED]} {describe('queue_waiting_far', {'front': EXACT_POSITIONS})}."
    elif job.state is JobState.RECEIVED and update.queue_position is not None:
        data: dict[str, object] = {"position": update.queue_position}
        if update.expected_start is not None:
            data["expected_at"] = update.expected_start
            line = describe("private_queued_eta", data)
        else:
            line = describe("private_queued", data)
    elif job.state is JobState.FETCHING:
        line = describe("private_checking")
    else:
        line = describe("private_starting")
    return _clip(f"{line}\n{describe('private_only_you')}")


def card_posted_text(job_id: int | None, link: str | None) -> str:
    """The member's private reply once their job's public card is up: where to follow it."""
    if job_id is None or link is None:
        return describe("private_starting")
    return describe("card_posted", {"job": job_id, "link": f"[{describe('card_link')}]({link})"})


def ended_privately_text(job: JobRecord) -> str:
    """The private answer for a job that ended before it was admitted: why, and that it cost nothing."""
    if job.state is JobState.CANCELED:
        return describe("canceled_before_start")
    return _clip(f"❌ {describe('not_started')}\n{failure_text(job)}")


def ping_text(job: JobRecord) -> str:
    """The reply that pings a job's owner when its card shows how it ended (an edit notifies no one)."""
    key = "ping_done" if job.state is JobState.DONE else "ping_failed"
    return describe(key, {"member": job.user_id, "job": job.id})


def not_started_text(job: JobRecord) -> str:
    """The private answer for a job refused after its files were fetched (`ended_privately_text`)."""
    return ended_privately_text(job)


def result_text(job: JobRecord, *, sandbox: bool, kind: str, linked: bool = False, mention: bool = True) -> str:
    """The message that carries a finished video, or that offers it through buttons.

    `linked`: the video was too large to attach; a **Download** button carries the signed link.
    """
    data = {"job": job.id, "member": job.user_id, "name": _name(job)}
    ready = describe("result_ready" if mention else "result_ready_private", data)
    # The result replaces the job's card: it says what was rendered too.
    lines = [f"{ready} {cost_text(job)}", _inputs(job)]
    if kind == "compressed":
        lines.append(describe("result_compressed"))
    if kind == "link":
        buttons = {
            "download": bold(button_label("button_download")),
            "new_link": bold(button_label("button_new_link")),
        }
        lines.append(describe("result_too_large_linked" if linked else "result_too_large", buttons))
    if sandbox:
        lines.append(sandbox_note())
    return _clip("\n".join(lines))


def fresh_link_text(job_id: int, *, button: bool, url: str) -> str:
    """The private answer to the **New link** button; the link itself is on a button when it fits one."""
    if button:
        return describe("fresh_link_button", {"job": job_id, "download": bold(button_label("button_download"))})
    # The link's words come from the catalogue; the markdown link around them is Discord's.
    link = f"[{describe('download_the_video')}](<{url}>)"
    return describe("fresh_link", {"job": job_id, "link": link})


def canceled_text(job: JobRecord) -> str:
    """The answer to Cancel and `/cancel`."""
    if not job.state.terminal:  # Magic Hour hasn't confirmed the stop within the answer's minute
        return describe("cancel_pending", {"job": job.id})
    if job.state is JobState.CANCELED:
        return f"{describe('canceled_job', {'job': job.id})} {cost_text(job)}"
    ended = describe("job_had_ended", {"job": job.id, "state": state_label(job.state)})
    if job.state is JobState.FAILED:  # e.g. Magic Hour couldn't be read to stop it: say so
        ended = f"{ended} {failure_text(job)}"
    return f"{ended} {cost_text(job)}"


def started_text() -> str:
    """The private note under a picker once its job was handed on: its progress follows privately."""
    return describe("pick_started")


def _job_line(job: JobRecord) -> str:
    style = DISCORD
    source = style.quote(job.video_filename) if job.video_filename else "YouTube"
    audio = style.quote(job.audio_filename or describe("audio_fallback"))
    cost = cost_short(job)
    price = f" · {cost}" if cost else ""
    # A job refused before it was admitted never had a card: its member never sees its number.
    number = number_shown(job)
    return (
        f"{number} {state_label(job.state)} · {job.mode.value}{price} · "
        f"{discord_timestamp(job.created_at)} · {source} + {audio}"
    )


def jobs_text(jobs: Sequence[JobRecord]) -> str:
    """A member's recent jobs, newest first, one line each (private)."""
    if not jobs:
        return describe("jobs_none")
    lines = [bold(describe("jobs_heading"))]
    for job in jobs:
        line = _job_line(job)
        if job.state is JobState.FAILED and job.error_code:
            line += f"\n  ↳ {failure_text(job)}"
        lines.append(line)
    if any(not job.state.terminal for job in jobs):  # nothing to cancel otherwise: no hint
        number = describe("jobs_number")
        option = f"{option_name('job_id', 'cancel')}:<{number}>"
        mention = MENTIONS.mention("cancel")  # clickable once the command's id is known
        cancel = f"{mention} `{option}`" if mention else f"`/{command_name('cancel')} {option}`"
        lines.append(describe("jobs_cancel_hint", {"cancel": cancel}))
    return _clip("\n".join(lines))


def _queue_summary(snapshot: QueueSnapshot) -> str:
    busy = describe("queue_slots", {"in_flight": snapshot.in_flight, "capacity": snapshot.capacity})
    if snapshot.waiting == 0:
        return f"{busy}, {describe('queue_nobody_waiting')}"
    return f"{busy}, {describe('queue_some_waiting', {'waiting': snapshot.waiting})}"


def _where(job: JobRecord, position: int | None) -> str:
    if position is not None:
        return describe("queue_position", {"position": position})
    return state_label(job.state)


def queue_text(snapshot: QueueSnapshot, mine: Sequence[tuple[JobRecord, int | None]]) -> str:
    """`/queue`: how busy the bot is, and where each of the member's running jobs stands."""
    lines = [f"{bold(describe('queue_heading'))}: {_queue_summary(snapshot)}."]
    if not mine:
        lines.append(describe("queue_none_running"))
    for job, position in mine:
        lines.append(f"{number_shown(job)} {_where(job, position)}")
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
) -> str:
    """`/lipsync-status`: the member's credits, running jobs and the queue, in one private panel."""
    lines = [
        bold(describe("panel_heading")),
        describe("panel_credits", {"left": bold(left_text(balance, window))}),
    ]
    lines.extend(grant_lines(balance))
    over = over_line(balance)
    if over:
        lines.append(over)
    if not running:
        lines.append(describe("panel_none_running", {"max": balance.max_active_jobs}))
    else:
        lines.append(describe("panel_running", {"count": len(running), "max": balance.max_active_jobs}))
        for item in running:
            job = item.job
            cost = cost_short(job)
            parts = [
                f"{number_shown(job)}{_name(job)} {_where(job, item.position)}",
                describe("progress_so_far", {"elapsed": coarse_duration(item.elapsed)}),
            ]
            if cost:
                parts.append(cost)
            lines.append("• " + " · ".join(parts))
    lines.append(describe("panel_queue", {"queue": _queue_summary(snapshot)}))
    lines.append(describe("panel_more"))
    return _clip("\n".join(lines))
