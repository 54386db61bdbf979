"""`/quota`, `/jobs` and `/forget-me`: a member's own credits, history and data."""

from __future__ import annotations

import re

from bot.store import JobState, MemberSettings
from tests.cogs.conftest import Harness


async def test_quota_shows_what_is_left_what_applies_and_the_reset(harness: Harness) -> None:
    """The balance, the limit it comes from, and the reset as a Discord relative time."""
    await harness.store.limits.set_server_default(harness.guild.id, 500)
    await harness.lipsync()
    assert (await harness.finish((await harness.latest_job()).id)).state is JobState.DONE

    result = await harness.alice.slash(harness.channel, "quota")

    assert result.ephemeral and result.response is not None
    text = result.response.content
    assert re.search(r"Left: \*\*455 credits\*\* · resets <t:\d+:R>", text), text
    assert "Allowance: 500 credits per day, from this server's default." in text
    assert "Used this period: 45 credits." in text
    assert "Running jobs: 0 of 1 at a time." in text


async def test_jobs_lists_recent_jobs(harness: Harness) -> None:
    """Newest first, with state, mode, cost and the reason for a failure (a job refused before its card
    shows no number: its member never saw one)."""
    empty = await harness.alice.slash(harness.channel, "jobs")
    assert empty.response is not None and "haven't started any" in empty.response.content
    await harness.lipsync(video="liar.mp4")
    failed = await harness.finish((await harness.latest_job()).id)
    await harness.lipsync()
    done = await harness.finish((await harness.latest_job()).id)

    result = await harness.alice.slash(harness.channel, "jobs")

    assert result.ephemeral and result.response is not None
    lines = result.response.content.splitlines()
    assert lines[1].startswith(f"`#{done.id}` ✅ Done · lite · 45 credits · <t:")
    assert lines[2].startswith("`—` ❌ Failed · lite · 0 credits (refunded) · <t:")
    assert f"#{failed.id}" not in result.response.content
    assert "named like a .mp4 file" in lines[3]


async def test_jobs_shows_the_cancel_hint_only_while_a_job_runs(harness: Harness) -> None:
    """A hint to cancel is noise when nothing can be canceled: shown while a job runs, gone after."""
    harness.sandbox.config.render_seconds = 120
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)

    running = await harness.alice.slash(harness.channel, "jobs")

    assert running.response is not None
    cancel, status = await harness.mention("cancel"), await harness.mention("lipsync-status")
    hint = f"Cancel a running job with {cancel} `job_id:<number>`, or from {status}."
    assert running.response.content.endswith(hint)
    await harness.sandbox_clock.advance(121)
    assert (await harness.finish(job.id)).state is JobState.DONE

    ended = await harness.alice.slash(harness.channel, "jobs")

    assert ended.response is not None and ended.response.content.startswith("**Your recent lip-sync jobs**")
    assert "Cancel" not in ended.response.content


async def test_forget_me_deletes_after_confirmation(harness: Harness) -> None:
    """Nothing is deleted until the member confirms; then their jobs and limits are gone."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 99)
    await harness.alice.slash(harness.channel, "lipsync-settings", results="dm", ping=False)
    await harness.lipsync()
    await harness.finish((await harness.latest_job()).id)

    asked = await harness.alice.slash(harness.channel, "forget-me")
    assert asked.ephemeral and asked.response is not None and "can't be undone" in asked.response.content
    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id) != []

    confirmed = await harness.alice.click(asked.response, label="Delete my data")

    assert confirmed.response is not None
    assert confirmed.response.content.startswith("Done: deleted 1 job record and your name from your past usage.")
    assert "still counts against your allowance" in confirmed.response.content
    assert "Limits a server manager set for you stay in place." in confirmed.response.content
    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id) == []
    assert await harness.store.member_settings.get(harness.guild.id, harness.alice.id) == MemberSettings()
    # A manager's limit survives: forgetting must not be a way out of a restriction.
    assert await harness.store.limits.member_limits(harness.guild.id) == {harness.alice.id: 99}
    after = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert after.used == 45 and after.remaining == 99 - 45
    # Usage stays in the server's totals, without a name.
    report = await harness.store.quota.usage(harness.guild.id)
    assert report.total.used == 45 and None in report.by_member


async def test_forget_me_waits_for_running_jobs(harness: Harness) -> None:
    """A member with a running job is asked to cancel it first."""
    harness.sandbox.config.render_seconds = 120
    await harness.lipsync()
    job = await harness.latest_job()
    asked = await harness.alice.slash(harness.channel, "forget-me")
    assert asked.response is not None
    refused = await harness.alice.click(asked.response, label="Delete my data")
    assert refused.response is not None
    assert f"Some of your jobs are still running (#{job.id})" in refused.response.content
    assert await harness.store.jobs.get(job.id) is not None
