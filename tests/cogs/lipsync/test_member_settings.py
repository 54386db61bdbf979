"""`/lipsync-settings` and the Delete button: a member's own defaults, where their results go, and
removing one's own result, through simcord with the real engine, store and sandbox."""

from __future__ import annotations

import discord
import simcord

from bot.config import GenerationMode
from bot.store import JobState, MemberSettings, ResultPlace
from tests.cogs.conftest import Harness, button_ids


def answer(result: simcord.InteractionResult) -> str:
    assert result.response is not None
    return result.response.content


async def test_settings_round_trip_privately(harness: Harness) -> None:
    """Shown, changed and shown again, only to the member; reset goes back to the defaults."""
    shown = await harness.alice.slash(harness.channel, "lipsync-settings")
    mention = await harness.mention("lipsync-settings")  # a command hint is a clickable mention
    assert shown.ephemeral
    assert answer(shown) == (
        "**Your lip-sync settings here (only you see them)**\n"
        "Mode: the bot's default when you don't choose one.\n"
        "Frame-rate cap: the bot's, 30 fps, when you don't set one.\n"
        "Results: in the channel where you start the job.\n"
        "Ping: yes, a finished video mentions you.\n"
        f"Change them with {mention} and its options (reset: back to the bot's defaults)."
    )

    changed = await harness.alice.slash(
        harness.channel, "lipsync-settings", mode="standard", max_fps=24.5, results="thread", ping=False
    )

    assert changed.ephemeral
    assert answer(changed).splitlines()[:5] == [
        "**Saved: your lip-sync settings here (only you see them)**",
        "Mode: `standard` when you don't choose one.",
        "Frame-rate cap: 24.5 fps when you don't set one.",
        "Results: in a thread of their own, one per job.",
        "Ping: no, finished videos don't mention you.",
    ]
    again = await harness.alice.slash(harness.channel, "lipsync-settings")
    assert answer(again).splitlines()[1:5] == answer(changed).splitlines()[1:5]
    assert await harness.store.member_settings.get(harness.guild.id, harness.alice.id) == MemberSettings(
        mode=GenerationMode.STANDARD, max_fps=24.5, results=ResultPlace.THREAD, ping=False
    )
    # Bob's are his own; nothing reached the channel.
    assert "bot's default" in answer(await harness.bob.slash(harness.channel, "lipsync-settings"))
    assert harness.public() == []

    reset = await harness.alice.slash(harness.channel, "lipsync-settings", reset=True, ping=False)
    assert answer(reset).splitlines()[1:5] == [
        "Mode: the bot's default when you don't choose one.",
        "Frame-rate cap: the bot's, 30 fps, when you don't set one.",
        "Results: in the channel where you start the job.",
        "Ping: no, finished videos don't mention you.",
    ]


async def test_a_mode_the_server_does_not_allow_is_refused_as_a_default(harness: Harness) -> None:
    """The same refusal `/lipsync` gives, and nothing is saved."""
    await harness.store.limits.set_allowed_modes(harness.guild.id, [GenerationMode.LITE])
    refused = await harness.alice.slash(harness.channel, "lipsync-settings", mode="pro")
    assert refused.ephemeral
    assert answer(refused) == "The `pro` mode isn't enabled on this server. Allowed here: lite."
    assert (await harness.store.member_settings.get(harness.guild.id, harness.alice.id)).mode is None


async def test_lipsync_uses_the_members_defaults_when_options_are_left_empty(harness: Harness) -> None:
    """Mode and frame-rate cap from the settings; what the member types still wins."""
    await harness.alice.slash(harness.channel, "lipsync-settings", mode="standard", max_fps=15)

    await harness.lipsync()
    defaulted = await harness.finish((await harness.latest_job()).id)
    assert defaulted.state is JobState.DONE, defaulted.error_code
    assert (defaulted.mode, defaulted.max_fps) == (GenerationMode.STANDARD, 15.0)
    assert defaulted.charged_credits == 23  # 1.5 s at 15 fps, where the bot's 30 fps cap bills 45

    await harness.lipsync(mode="lite", max_fps=30)
    typed = await harness.finish((await harness.latest_job()).id)
    assert (typed.mode, typed.max_fps) == (GenerationMode.LITE, 30.0)

    # A default the server has since turned off is skipped, not turned into a refusal.
    await harness.store.limits.set_allowed_modes(harness.guild.id, [GenerationMode.LITE])
    await harness.lipsync()
    skipped = await harness.finish((await harness.latest_job()).id)
    assert skipped.state is JobState.DONE and skipped.mode is GenerationMode.LITE


async def test_results_go_by_direct_message_when_asked(harness: Harness) -> None:
    """A DM, not the channel; the status message says where it went."""
    await harness.alice.slash(harness.channel, "lipsync-settings", results="dm")

    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)

    assert job.state is JobState.DONE and (job.delivery_kind, job.deliver_to) == ("dm", ResultPlace.DM)
    dm = harness.alice.user.dm_channel.last_message
    assert dm is not None and dm.id == job.delivery_message_id
    assert dm.content.startswith(f"Your lip-sync job #{job.id} is ready.")
    assert [a.filename for a in dm.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    [card] = started.followups  # nothing in the channel but the job's card, and no ping (a DM notifies)
    assert [m.id for m in harness.public()] == [card.message.id] == [job.status_message_id]
    assert "sent by direct message" in harness.public()[0].content


async def test_results_go_to_a_thread_of_their_own_without_a_ping_when_asked(harness: Harness) -> None:
    """A thread off the job's status message holds the video; the mention pings no one."""
    await harness.alice.slash(harness.channel, "lipsync-settings", results="thread", ping=False)

    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)

    assert job.state is JobState.DONE and job.delivery_kind == "thread"
    [thread] = harness.channel.threads
    assert thread.name == f"Lip-sync #{job.id}"
    [posted] = thread.history()
    assert posted.id == job.delivery_message_id
    assert posted.content.startswith(f"<@{harness.alice.id}>, your lip-sync job #{job.id} is ready.")
    # Shown, not pinged: the message allows no one to be notified (Discord still lists the mention).
    stored = harness.env.backend.get_message(thread.id, posted.id)
    assert not stored.allowed_mentions.allows_user(harness.alice.id)
    assert [a.filename for a in posted.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    [card] = started.followups  # the thread starts from the job's card, which says where the result went
    # (simcord announces every new thread with a system message; it is not the bot's)
    posts = [m for m in harness.public() if m.type is not discord.MessageType.thread_created]
    assert [m.id for m in posts] == [card.message.id] == [job.status_message_id]
    assert "sent in a thread of its own" in posts[0].content


async def test_a_thread_the_bot_may_not_make_falls_back_to_the_channel(harness: Harness) -> None:
    """Without Create Public Threads the result still arrives, in the channel, as without settings."""
    await harness.alice.slash(harness.channel, "lipsync-settings", results="thread")
    harness.env.inject_error(
        "POST", f"/channels/{harness.channel.id}/messages/*/threads", status=403, code=50013, message="Missing Access"
    )

    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)

    assert job.state is JobState.DONE and job.delivery_kind == "file"
    assert harness.channel.threads == []
    [posted] = started.followups  # the card, which became the result
    assert posted.message.id == job.delivery_message_id and posted.message.attachments


async def test_a_result_pings_its_member_by_default(harness: Harness) -> None:
    """No settings: the result is on the card in the channel, and a reply to it pings the member (only them)."""
    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)
    [card] = started.followups
    assert card.message.id == job.delivery_message_id
    [ping] = [m for m in harness.public() if m.reference is not None and m.reference.message_id == card.message.id]
    assert [m.id for m in ping.mentions] == [harness.alice.id]
    stored = harness.env.backend.get_message(harness.channel.id, ping.id)
    assert stored.allowed_mentions.allows_user(harness.alice.id)
    assert not stored.allowed_mentions.allows_user(harness.bob.id)
    assert job.delivery_kind == "file" and (job.deliver_to, job.ping_owner) == (ResultPlace.CHANNEL, True)


async def test_delete_removes_ones_own_result_and_refuses_others(harness: Harness) -> None:
    """The owner or a manager may delete a result; anyone else is told privately, and it stays."""
    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)
    [posted] = started.followups
    delete = f"lipsync:delete:{job.id}:{harness.alice.id}"
    assert delete in button_ids(posted.message)

    refused = await harness.bob.click(posted.message, custom_id=delete)

    assert refused.ephemeral
    assert answer(refused) == f"Only <@{harness.alice.id}> or a server manager can delete the result of job #{job.id}."
    assert posted.message.id in [m.id for m in harness.public()]

    assert len(harness.public()) == 2  # the result on its card, and the reply that pinged its owner
    deleted = await harness.alice.click(posted.message, custom_id=delete)

    assert deleted.ephemeral and answer(deleted) == f"Deleted the result of job #{job.id}."
    assert harness.public() == []  # the ping under it went too: it would point at nothing
    # The job itself and what it cost are untouched: deleting a message gives nothing back.
    kept = await harness.store.jobs.get(job.id)
    assert kept is not None and kept.charged_credits == 45


async def test_a_manager_may_delete_a_members_result_after_a_restart(harness: Harness) -> None:
    """The button is rebuilt from its id by a new process, and a manager's click deletes the result."""
    started = await harness.lipsync()
    job = await harness.finish((await harness.latest_job()).id)
    [posted] = started.followups
    await harness.restart()

    deleted = await harness.manager.click(posted.message, custom_id=f"lipsync:delete:{job.id}:{harness.alice.id}")

    assert answer(deleted) == f"Deleted the result of job #{job.id}."
    assert posted.message.id not in [m.id for m in harness.public()]
