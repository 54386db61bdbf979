"""Every figure a member is shown about a job's price agrees, whichever surface shows it.

For any job (its window, the rate its probe trusted, its cap, its mode, what it holds), the status
message, `/lipsync-status`, `/jobs`, the terminal's progress line and its report all state the job's
quote in the same sentence, with the figures the reservation was made from (`Pricing.quote`); a
refusal states the same figures and names the one that didn't fit; each fix is priced as the job it
would start, on its button and in its line alike.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.console import Console
from rich.progress import Progress

from bot import words
from bot.config import GenerationMode, QuotaWindow
from bot.jobs.admission import refused
from bot.jobs.fixes import FixKind, as_data, fixes_for, fixes_in
from bot.jobs.models import GuildRules, InputSource, JobRequest, JobUpdate, QueueSnapshot
from bot.jobs.quote import Pricing, Quote, Short, quote_of
from bot.store import JobRecord, JobState, LimitKind, Refusal
from bot.store.balance import Balance
from bot.terminal.commands import _report
from bot.terminal.output import Output, SaveToFile
from bot.terminal.progress import ProgressDisplay
from bot.terminal.style import TERMINAL
from bot.terminal.style import describe as terminal_describe
from cogs import texts
from cogs.lipsync._fixes import fix_line
from cogs.lipsync._texts import RunningJob, jobs_text, panel_text, status_text
from tests.store.test_usage_figures import limits

NOW = dt.datetime(2026, 5, 1, 12, 0, tzinfo=dt.UTC)
RUNNING = (JobState.UPLOADING, JobState.CREATING, JobState.SUBMITTED, JobState.RENDERING)
LANGUAGES = ("en", "es", "pt-BR")
RULES = GuildRules(allowed_modes=tuple(GenerationMode), max_clip_seconds=60.0, max_input_bytes=50_000_000)

pricings = st.builds(
    Pricing,
    seconds=st.floats(0.1, 60.0),
    mode=st.sampled_from(GenerationMode),
    source_fps=st.none() | st.floats(1.0, 120.0),
    max_fps=st.floats(1.0, 60.0),
)


def record(pricing: Pricing, start: float, state: JobState, held: int, lang: str) -> JobRecord:
    """A job as the store holds it once its hold was reserved (`held`: with any top-up at create)."""
    return JobRecord(
        id=12,
        user_id=42,
        guild_id=10,
        channel_id=11,
        video_filename="face.mp4",
        video_size=1000,
        audio_filename="voice.mp3",
        audio_size=500,
        youtube_url=None,
        start_seconds=start,
        end_seconds=start + pricing.seconds,
        mode=pricing.mode,
        max_fps=pricing.max_fps,
        name=None,
        state=state,
        project_id=None,
        estimated_credits=held,
        charged_credits=None,
        error_code=None,
        error_data=None,
        delivery_kind=None,
        delivery_message_id=None,
        status_channel_id=11,
        status_message_id=13,
        created_at=NOW,
        updated_at=NOW,
        locale={"en": "en-US", "es": "es-ES", "pt-BR": "pt-BR"}[lang],
        source_fps=pricing.source_fps,
    )


def balance(remaining: int) -> Balance:
    """A member with `remaining` credits and nothing else limiting them (one job running)."""
    effective = limits(allowance=remaining, member_available=remaining, remaining=remaining, active_jobs=1)
    return Balance.of(effective, [])


def terminal_sentence(quote: Quote) -> str:
    return terminal_describe(*quote.sentence(), TERMINAL)


async def terminal_line(job: JobRecord) -> str:
    progress = Progress(console=Console(file=io.StringIO()))
    await ProgressDisplay(progress).update(JobUpdate(job=job, elapsed=1.0))
    return str(progress.tasks[0].description)


def terminal_report(job: JobRecord) -> str:
    out = io.StringIO()
    console = Console(file=out, width=500)
    _report(console, job, SaveToFile(Output.parse(None)), TERMINAL, sandbox=False)
    return out.getvalue()


@settings(max_examples=150, deadline=None)
@given(
    pricing=pricings,
    start=st.floats(0.0, 30.0),
    state=st.sampled_from(RUNNING),
    top_up=st.integers(0, 50) | st.just(0),
    lang=st.sampled_from(LANGUAGES),
)
async def test_every_surface_states_the_same_quote_the_reservation_was_made_from(
    pricing: Pricing, start: float, state: JobState, top_up: int, lang: str
) -> None:
    made = pricing.quote()
    job = record(pricing, start, state, made.hold + top_up, lang)
    quote = quote_of(job)
    # The figures a record gives back are the ones the reservation was made from (a top-up raises the hold).
    assert quote == Quote(made.estimate, made.hold + top_up)
    with words.using(lang):  # the member's, who reads each of these
        sentence = texts.quote_text(quote)
        assert texts.credits(quote.estimate) in sentence and texts.credits(quote.hold) in sentence
        surfaces = {
            "status message": status_text(JobUpdate(job=job, elapsed=5.0)),
            "/lipsync-status": panel_text(
                balance(1000), QuotaWindow.DAILY, [RunningJob(job, None, 5.0)], QueueSnapshot(1, 2, 0)
            ),
            "/jobs": jobs_text([job]),
        }
    for surface, text in surfaces.items():
        assert sentence in text, surface
    english = terminal_sentence(quote)
    assert english in await terminal_line(job)
    assert english in terminal_report(job)


@settings(max_examples=150, deadline=None)
@given(pricing=pricings, available=st.integers(0, 10_000), lang=st.sampled_from(LANGUAGES))
def test_a_refusal_states_the_quote_and_names_what_didnt_fit(pricing: Pricing, available: int, lang: str) -> None:
    quote = pricing.quote()
    refusal = Refusal(limit=LimitKind.MEMBER, available=available, requested=quote.hold, resets_at=NOW)
    error = refused(refusal, QuotaWindow.DAILY, quote=quote)
    assert (error.data["estimate"], error.data["hold"]) == (quote.estimate, quote.hold)
    short = quote.short_of(available)
    assert error.code == ("quota_member_hold" if short is Short.HOLD else "quota_member")
    with words.using(lang):
        discord_text = texts.error_text(error)
    terminal_text = terminal_describe(error.code, error.data, TERMINAL)  # the terminal speaks English
    for text, language in ((discord_text, lang), (terminal_text, "en")):
        assert words.credits(quote.estimate, language) in text and words.credits(quote.hold, language) in text
        assert words.credits(available, language) in text


def request_for(pricing: Pricing, start: float) -> JobRequest:
    return JobRequest(
        user_id=42,
        audio=InputSource(filename="voice.mp3", url="https://cdn.discordapp.com/a/voice.mp3"),
        video=InputSource(filename="face.mp4", url="https://cdn.discordapp.com/a/face.mp4"),
        start=start,
        mode=pricing.mode,
        max_fps=pricing.max_fps,
    )


@settings(max_examples=150, deadline=None)
@given(
    pricing=pricings,
    start=st.floats(0.0, 30.0),
    share=st.floats(0.0, 0.99),
    lang=st.sampled_from(LANGUAGES),
)
def test_every_fix_fits_and_is_priced_as_the_job_it_starts(
    pricing: Pricing, start: float, share: float, lang: str
) -> None:
    quote = pricing.quote()
    available = int(quote.hold * share)
    offered = fixes_in(json.loads(json.dumps(as_data(fixes_for(pricing, start, RULES, available)))))
    request = request_for(pricing, start)
    for fix in offered:
        assert fix.quote.fits(available)
        changed = fix.apply(request)
        seconds = pricing.seconds if fix.kind is not FixKind.END else changed.end - start  # type: ignore[operator]
        again = dataclasses.replace(pricing, seconds=seconds, mode=changed.mode, max_fps=changed.max_fps).quote()
        assert fix.quote == again
        with words.using(lang):
            line = fix_line(fix, request)
            assert texts.credits(fix.quote.estimate) in line and texts.credits(fix.quote.hold) in line
