"""What members see: each contradiction and exposure a walk-through found, as a test.

Every test reads the texts a member, a manager, or the rest of the channel (`harness.public()`, as
a member who never acts sees it) are shown through simcord.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import sqlite3
import sys
from collections.abc import Callable
from typing import Any

import discord
import pytest
import simcord

from bot.errors import QuotaExceeded
from bot.jobs.engine import JobEngine
from bot.jobs.models import JobUpdate
from bot.jobs.submit import project_name
from bot.store import JobState
from cogs import texts
from cogs.lipsync._status import StatusMessage
from tests.cogs.conftest import CHART_SETTLE_TIMEOUT, Harness

LONG_RENDER = 120.0
RAW_STATES = re.compile(r"\((" + "|".join(state.value for state in JobState) + r")\)")


def loaded_status_message() -> type[StatusMessage]:
    """The `StatusMessage` class the running bot uses (each bot imports its extensions afresh)."""
    loaded: type[StatusMessage] = sys.modules["cogs.lipsync._status"].StatusMessage
    return loaded


def answer(result: simcord.InteractionResult) -> str:
    """The ephemeral answer to a command or a click."""
    assert result.ephemeral and result.response is not None
    return result.response.content


def buttons(message: discord.Message) -> list[discord.Button]:
    return [
        child
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button)
    ]


async def admin(harness: Harness, sub: str, **options: object) -> str:
    return answer(await harness.manager.slash(harness.channel, f"lipsync-admin {sub}", **options))


# ---------------------------------------------------------------------------------- credits


async def test_a_sandbox_result_states_one_charge(harness: Harness) -> None:
    """Before: "Cost: 45 credits" beside "no credits spent". After: one charge, and how the sandbox counts it."""
    result = await harness.lipsync()
    final = await harness.finish((await harness.latest_job()).id)
    assert final.state is JobState.DONE
    [posted] = result.followups
    assert (await harness.message_of(final.id)).id == posted.message.id  # the result is the job's one message
    for text in (posted.content,):
        assert "Cost: 45 credits." in text
        assert "charged to your allowance here; no Magic Hour credits spent" in text
        assert "no credits spent" not in text


async def test_failed_and_canceled_jobs_cost_zero_refunded_everywhere(harness: Harness) -> None:
    """Before: `/jobs` said "45 credits" for jobs whose own message said none were used. After: 0, refunded."""
    harness.sandbox.faults.job_error("no_source_face")
    await harness.lipsync()
    failed = await harness.finish((await harness.latest_job()).id)
    assert failed.state is JobState.FAILED and failed.estimated_credits == 45
    assert "Cost: 0 credits (refunded)." in (await harness.message_of(failed.id)).content

    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    card = await harness.message_of(job.id)
    canceled_answer = answer(await harness.alice.click(card, label="Cancel"))
    assert canceled_answer == f"Canceled job #{job.id}. Cost: 0 credits (refunded)."
    canceled = await harness.finish(job.id)
    assert canceled.state is JobState.CANCELED and canceled.estimated_credits == 45
    assert "Cost: 0 credits (refunded)." in (await harness.message_of(job.id)).content

    lines = answer(await harness.alice.slash(harness.channel, "jobs")).splitlines()
    assert lines[1].startswith(f"`#{canceled.id}` 🛑 Canceled · lite · 0 credits (refunded) · ")
    assert lines[2].startswith(f"`#{failed.id}` ❌ Failed · lite · 0 credits (refunded) · ")
    # Discord timestamps (`<t:1796504507:R>`) are seconds since 1970 and may hold any digits.
    assert "45" not in re.sub(r"<t:\d+:\w>", "<t>", "\n".join(lines))


async def test_taking_credits_back_never_goes_below_what_can_be_taken(harness: Harness) -> None:
    """Before: "Granted -500 credits", "Extra granted: -460", "used all -360 credits". After: "took back".

    And before: "took back 100, they have 0 left" while the member had 55 left, so their balance
    went 45 below zero unseen. After: what is taken back is what was left unspent, and the member
    reads the same figure.
    """
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 100)
    await harness.lipsync()
    assert (await harness.finish((await harness.latest_job()).id)).state is JobState.DONE

    said = await admin(harness, "grant", member=harness.alice, credits=-500, note="spam")
    assert said.startswith(
        f"Took back 55 credits from <@{harness.alice.id}>, all they had left unspent (you asked for 500 credits), "
        "for this period (it resets <t:"
    )
    assert said.endswith("they have 0 credits left.")
    again = await admin(harness, "grant", member=harness.alice, credits=-10)
    assert again == (
        f"<@{harness.alice.id}> has nothing left to take back today: "
        "their allowance is already used or held by running jobs (45 credits used)."
    )

    quota = answer(await harness.alice.slash(harness.channel, "quota"))
    assert "Left: **0 credits**" in quota and "Taken back this period: 55 credits." in quota
    assert "Over the allowance" not in quota
    refused = await harness.lipsync()
    assert answer(refused).startswith("You have no credits left today. Your allowance resets <t:")
    for text in (said, again, quota, answer(refused)):
        assert not re.search(r"-\d", text), text  # no negative numbers anywhere


async def test_what_is_left_counts_an_empty_server_pool(harness: Harness) -> None:
    """Before: `/quota`'s "Left" ignored an empty pool. After: what can really be spent, and why."""
    await admin(harness, "server-limit", credits=12_000)
    await admin(harness, "server-pool", credits=50)
    await harness.lipsync()
    assert (await harness.finish((await harness.latest_job()).id)).state is JobState.DONE

    bob = answer(await harness.bob.slash(harness.channel, "quota"))
    assert "Left: **5 credits**" in bob
    assert "Less than the allowance gives: this server's shared pool has 5 credits left." in bob
    assert "Allowance: 12,000 credits per day, from this server's default." in bob
    refused = await harness.lipsync(harness.bob)
    await harness.finish((await harness.latest_job(harness.bob)).id)
    told = answer(refused)
    assert "This server has 5 credits left today, less than this clip's likely cost of 45 credits" in told


async def test_large_numbers_have_thousands_separators(harness: Harness) -> None:
    """Every figure a member or manager reads is grouped: 10,000 not 10000."""
    quota = answer(await harness.alice.slash(harness.channel, "quota"))
    assert "Left: **10,000 credits**" in quota and "Allowance: 10,000 credits per day" in quota
    said = await admin(harness, "member-limit", member=harness.bob, credits=1_500_000)
    assert said == f"<@{harness.bob.id}> may now use 1,500,000 credits per day."
    overview = await admin(harness, "settings")
    assert "Member allowance: 10,000 credits per day (bot default)" in overview
    assert f"<@{harness.bob.id}>: 1,500,000 credits per day" in overview
    for text in (quota, said, overview):
        assert not re.search(r"\d{4}", re.sub(r"<[@&#:t]+\d+(:[A-Za-z])?>", "", text)), text


# ---------------------------------------------------------------------------------- privacy


async def test_no_public_message_carries_a_balance_a_signed_url_or_a_project_id(
    harness: Harness, upload_limit: Callable[[int], None]
) -> None:
    """The channel sees jobs and what they cost; never what a member has left, a signed link or a project id."""
    upload_limit(5_000)  # the result can only be offered as a link
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 1_234)
    await harness.lipsync()
    linked = await harness.finish((await harness.latest_job()).id)
    assert linked.state is JobState.DONE and linked.delivery_kind == "link"
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    await harness.alice.click(await harness.message_of(job.id), label="Cancel")
    canceled = await harness.finish(job.id)

    public = harness.public()
    # One card per job (the linked result, the canceled card) and the result's ping; a cancel pings no one.
    assert len(public) == 3 and sum("is ready: the result is on its card" in m.content for m in public) == 1
    texts = [m.content for m in public] + [str(e.to_dict()) for m in public for e in m.embeds]
    for text in texts:
        assert "1,189" not in text and "1189" not in text and not re.search(r"\bleft\b", text), text
        assert "http://127.0.0.1" not in text and "expires=" not in text and "sig=" not in text, text
        for project_id in (linked.project_id, canceled.project_id):
            assert project_id and project_id not in text, text
        assert not RAW_STATES.search(text), text
    [result] = [m for m in public if "is ready." in m.content]
    # The link is on the button; then the ways to run it again, and Delete for its owner.
    assert [b.label for b in buttons(result)] == [
        "Download",
        "New link",
        "Again in pro · 90 credits",
        "Again with another part",
        "Delete",
    ]
    quota = answer(await harness.alice.slash(harness.channel, "quota"))
    assert "Left: **1,189 credits**" in quota  # the member's own balance, told to them alone


REFUSED_AFTER_FETCHING: list[Any] = [
    pytest.param({"video": "liar.mp4"}, "is named like a .mp4 file, but it's really a text file", id="file-lies"),
    pytest.param({"start": 5.0}, "`start` (5 s) is past the end of `face.mp4` (2 s long).", id="start-past-end"),
    pytest.param(
        {"limit": 15}, "You have 15 credits left today, less than this clip's likely cost of 45 credits", id="shortfall"
    ),
]


@pytest.mark.parametrize(("options", "says"), REFUSED_AFTER_FETCHING)
async def test_a_refusal_after_fetching_is_told_only_to_the_member(
    harness: Harness, options: dict[str, Any], says: str
) -> None:
    """Before: a public ❌. After: the private reply says why; the channel never saw the job."""
    if "limit" in options:
        await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, options.pop("limit"))
    result = await harness.lipsync(**options)
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.FAILED and final.project_id is None
    told = answer(result)
    assert told.startswith("❌ Your job didn't start, and nothing was charged.\n")  # no job number to see
    assert says in told and result.followups == []
    assert harness.public() == []
    assert (await harness.store.quota.limits(harness.guild.id, harness.alice.id)).used == 0


@pytest.mark.settings(max_jobs_in_flight=1)
async def test_a_refusal_after_the_token_expired_goes_by_dm(harness: Harness) -> None:
    """A job that waited in line past the 15-minute token and was then refused: told by DM, never public."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    first = await harness.latest_job()
    await harness.rendering(first.id)
    await harness.store.limits.set_member_limit(harness.guild.id, harness.bob.id, 10)
    waiting = await harness.lipsync(harness.bob)
    bobs = await harness.latest_job(harness.bob)
    assert "Queued: 1 in line." in answer(waiting)  # Bob's alone to see
    public_before = [m.id for m in harness.public()]
    assert public_before == [(await harness.message_of(first.id)).id]
    await harness.env.advance_time(16 * 60)

    await harness.engine.cancel(first.id, by_user_id=harness.alice.id)
    await harness.finish(first.id)
    final = await harness.finish(bobs.id)

    assert final.state is JobState.FAILED and final.error_code == "quota_member"
    dm = harness.bob.user.dm_channel.last_message
    assert dm is not None and dm.content.startswith("❌ Your job didn't start")
    assert "You have 10 credits left today" in dm.content
    assert waiting.followups == []  # the token was gone
    assert [m.id for m in harness.public()] == public_before  # Bob's job never had a public message


# ---------------------------------------------------------------------------------- progress


async def test_the_expected_finish_appears_when_the_engine_knows_it(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`JobUpdate.expected_at` (filled by the engine from render history) shows as a live Discord time."""
    eta = dt.datetime(2031, 5, 4, 12, 30, tzinfo=dt.UTC)
    live = loaded_status_message()
    shown = live.update

    async def with_eta(self: StatusMessage, update: JobUpdate) -> None:
        if update.job.state in texts.TIMED_STATES:
            update = dataclasses.replace(update, expected_at=eta)
        await shown(self, update)

    monkeypatch.setattr(live, "update", with_eta)
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    state = (await harness.message_of(job.id)).content.splitlines()[1]
    # The bar runs from the render's submission to the expected finish (years away here: empty).
    assert state == f"🎬 Rendering · ▱▱▱▱▱▱▱▱▱▱ 0% · a few seconds so far · should be done <t:{int(eta.timestamp())}:R>"
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE
    assert "should be done" not in (await harness.message_of(job.id)).content


# ---------------------------------------------------------------------------------- one panel


async def test_lipsync_status_shows_credits_running_jobs_and_the_queue(harness: Harness) -> None:
    """`/lipsync-status`: one private panel instead of `/quota`, `/jobs` and `/queue`, with Cancel buttons."""
    empty = await harness.alice.slash(harness.channel, "lipsync-status")
    lines = answer(empty).splitlines()
    assert lines[0] == "**Your lip-sync status**"
    assert re.fullmatch(r"Credits: \*\*10,000 credits left today, resets <t:\d+:R>\*\*\.", lines[1])
    start = await harness.mention("lipsync")  # a command hint is a clickable mention
    assert lines[2] == f"Running jobs: none (up to 1 at a time). Start one with {start}."

    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync(name="intro")
    job = await harness.latest_job()
    await harness.rendering(job.id)
    panel = await harness.alice.slash(harness.channel, "lipsync-status")
    lines = answer(panel).splitlines()
    assert re.fullmatch(r"Credits: \*\*9,955 credits left today, resets <t:\d+:R>\*\*\.", lines[1])
    assert lines[2] == "Running jobs (1 of 1 at a time):"
    assert lines[3].startswith(f"• `#{job.id}` `intro` 🎬 Rendering · ")
    quote = "Likely cost: 45 credits, held until it finishes (you pay only what Magic Hour charges)."
    assert lines[3].endswith(f" so far · {quote}")
    assert lines[4] == f"Queue: 1 of {harness.settings.max_jobs_in_flight} job slots in use, nobody is waiting."
    assert panel.response is not None
    assert [b.label for b in buttons(panel.response.message)] == [f"Cancel #{job.id}", "Refresh"]

    canceled = await harness.alice.click(panel.response, label=f"Cancel #{job.id}")
    assert answer(canceled) == f"Canceled job #{job.id}. Cost: 0 credits (refunded)."
    await harness.finish(job.id)
    refreshed = await harness.alice.click(panel.response, label="Refresh")
    assert refreshed.response is not None
    assert "Running jobs: none" in refreshed.response.content
    assert [b.label for b in buttons(refreshed.response.message)] == ["Refresh"]


# ---------------------------------------------------------------------------------- managers


@pytest.mark.env(settle_timeout=CHART_SETTLE_TIMEOUT)
@pytest.mark.usefixtures("chart_ready")
async def test_usage_lists_jobs_whose_fate_at_magic_hour_is_unknown(harness: Harness) -> None:
    """A create whose answer was lost counts as spent; managers get its project name to look it up."""
    harness.sandbox.faults.disconnect("create", after_effect=True)  # Magic Hour made it; the answer is lost
    await harness.lipsync(name="intro")
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.FAILED and final.error_code == "unknown_at_magic_hour"
    assert "Cost: 45 credits, counted as spent until the bot's operator checks it with Magic Hour." in (
        (await harness.message_of(job.id)).content
    )

    report = await admin(harness, "usage")
    assert (
        "Unknown at Magic Hour (1 job, counted as spent): the bot lost contact with Magic Hour while running them. "
        "Look each one up in the Magic Hour dashboard by its project name." in report
    )
    assert f"• `{project_name(job.id, 'intro')}`: job #{job.id} by <@{harness.alice.id}>, 45 credits counted" in report
    assert project_name(job.id, "intro") == f"#{job.id} · intro"


async def test_a_refusal_between_the_check_and_the_start_is_private_too(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Refused after the reply was deferred (a second job started elsewhere meanwhile): in the private reply."""

    async def refuse(*_: Any, **__: Any) -> None:
        raise QuotaExceeded("active_jobs", limit=1)

    monkeypatch.setattr(JobEngine, "submit", refuse)
    result = await harness.lipsync()
    assert answer(result).startswith("❌ You can have 1 job running at a time") and result.followups == []
    assert harness.public() == []


async def test_an_unexpected_error_after_the_public_reply_is_private_too(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not a refusal but a fault (the database was locked) after deferring: the apology is in the private reply."""

    async def fail(*_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("database is locked")

    monkeypatch.setattr(JobEngine, "submit", fail)
    result = await harness.lipsync()
    told = answer(result)
    assert "something went wrong" in told and "reference" in told and result.followups == []
    assert "database" not in told
    assert harness.public() == []
