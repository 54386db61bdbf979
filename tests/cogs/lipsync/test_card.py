"""One live job card per job, scene by scene: what the channel and the member see, exactly.

A job is private until it is admitted (its files checked, its credits reserved): its member sees
its progress in the private reply to their command, and a refusal there. Then one public card
follows the job and becomes its result (the video attached by an edit) or its failure; a one-line
reply to it pings the owner (only them), since an edit notifies no one. `harness.public()` is the
channel as an onlooker sees it. The scenes: the happy path, a late refusal, failures, a cancel, a
re-run, the token's expiry (and a card Discord won't let the bot edit), and members' settings.
"""

from __future__ import annotations

import importlib

import discord
import pytest
import simcord

from bot.store import JobRecord, JobState
from cogs.texts import SANDBOX_NOTE
from tests.cogs.conftest import Harness, button_ids

LONG_RENDER = 120.0  # sandbox seconds: long enough that a job is still rendering while a test acts


def pinged(harness: Harness, message: discord.Message) -> list[int]:
    """Who a message notified when it was posted (an edit notifies no one)."""
    stored = harness.env.backend.get_message(message.channel.id, message.id)
    return list(stored.ping_user_ids)


def private(result: simcord.InteractionResult) -> str:
    """The member's private reply (the card, when posted through the interaction, is a public followup)."""
    assert result.response is not None and result.response.ephemeral
    assert not any(followup.ephemeral for followup in result.followups)
    return result.response.content


def jump(harness: Harness, message_id: int) -> str:
    return f"https://discord.com/channels/{harness.guild.id}/{harness.channel.id}/{message_id}"


async def card_while_rendering(harness: Harness) -> tuple[JobRecord, discord.Message]:
    job = await harness.latest_job()
    await harness.rendering(job.id)
    [card] = harness.public()
    return job, card


def reply_to(harness: Harness, message: discord.Message) -> discord.Message:
    """The one public message that replies to `message` (the ping under a card)."""
    [reply] = [m for m in harness.public() if m.reference is not None and m.reference.message_id == message.id]
    return reply


def ready_ping(harness: Harness, job_id: int) -> str:
    return f"<@{harness.alice.id}>, your job #{job_id} is ready: the result is on its card above."


def failed_ping(harness: Harness, job_id: int) -> str:
    return f"<@{harness.alice.id}>, your job #{job_id} didn't work out: its card above says why and what to change."


async def test_happy_path_one_card_becomes_the_pinged_result(harness: Harness) -> None:
    """Private until admitted; one public card while it runs; the video is attached to it; a reply pings the owner."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    result = await harness.lipsync()
    job, card = await card_while_rendering(harness)
    assert card.content.startswith(f"**Lip-sync job #{job.id}** · lite · by <@{harness.alice.id}>\n")
    assert button_ids(card) == [f"lipsync:cancel:{job.id}"] and pinged(harness, card) == []
    [thumbnail] = card.attachments  # the first frame of the member's video, read by the bot
    assert thumbnail.filename == "first-frame.jpg" and (await thumbnail.read()).startswith(b"\xff\xd8\xff")
    started = private(result)
    assert started == f"▶️ Your job #{job.id} has started: [follow it here]({jump(harness, card.id)})."
    record = await harness.store.jobs.get(job.id)
    assert record is not None and record.status_message_id == card.id  # a restart finds the card

    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)

    assert final.state is JobState.DONE and final.delivery_kind == "file"
    message, ping = harness.public()  # the card, now the result, and the reply that pings
    assert message.id == card.id == final.delivery_message_id == final.status_message_id  # the same message
    assert (
        message.content.splitlines()[0]
        == f"<@{harness.alice.id}>, your lip-sync job #{job.id} is ready. Cost: 45 credits."
    )
    assert SANDBOX_NOTE in message.content
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]  # the video replaced it
    assert button_ids(message) == [
        f"lipsync:again:{job.id}:pro",
        f"lipsync:again:{job.id}:window",
        f"lipsync:delete:{job.id}:{harness.alice.id}",
    ]
    assert ping.content == ready_ping(harness, job.id) and reply_to(harness, message).id == ping.id
    assert pinged(harness, ping) == [harness.alice.id]  # only the owner, and only by the reply
    assert private(result) == started


async def test_a_late_refusal_is_private_and_shows_no_job_number(harness: Harness) -> None:
    """Refused after fetching (a file whose name lies): only the member is told, with no job number."""
    result = await harness.lipsync(video="liar.mp4")
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.FAILED and final.error_code == "name_mismatch"
    assert private(result).splitlines() == [
        "❌ Your job didn't start, and nothing was charged.",
        "`liar.mp4` is named like a .mp4 file, but it's really a text file. Please send the real media file.",
    ]
    assert harness.public() == []  # no public message for a refused job, at any moment
    assert final.status_message_id is None
    listed = await harness.alice.slash(harness.channel, "jobs")
    assert listed.response is not None and f"#{job.id}" not in listed.response.content
    assert listed.response.content.splitlines()[1].startswith("`—` ❌ Failed · lite · ")
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 0 and balance.reserved == 0


async def test_a_failure_pings_the_owner_and_says_what_to_change(harness: Harness) -> None:
    """No face found: one public message that pings the owner, says what to change, and offers another video."""
    harness.sandbox.faults.job_error("no_source_face")
    result = await harness.lipsync()
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.FAILED and final.error_code == "magic_hour_no_source_face"
    message, ping = harness.public()
    assert message.id == final.status_message_id
    assert ping.content == failed_ping(harness, job.id) and pinged(harness, ping) == [harness.alice.id]
    assert reply_to(harness, message).id == ping.id
    assert (
        "❌ Failed: Magic Hour couldn't find a face in the video. "
        "Use a clip with one clear, front-facing, well-lit face." in message.content.splitlines()
    )
    assert "Cost: 0 credits (refunded)." in message.content.splitlines()
    # Retrying the same files can't find a face: another video is offered instead.
    assert button_ids(message) == [f"lipsync:again:{job.id}:video"]
    assert private(result) == f"▶️ Your job #{job.id} has started: [follow it here]({jump(harness, message.id)})."

    hint = await harness.alice.click(message, custom_id=f"lipsync:again:{job.id}:video")
    assert hint.ephemeral and hint.response is not None
    assert hint.response.content == (
        f"Post another video of one clear, front-facing, well-lit face, then run {await harness.mention('lipsync')} "
        "with it and `voice.mp3`, or right-click it and choose **Lip-sync: use this video**."
    )
    refused = await harness.bob.click(message, custom_id=f"lipsync:again:{job.id}:video")
    assert refused.ephemeral and refused.response is not None and refused.response.content.startswith("Only <@")
    assert len(harness.public()) == 2


async def test_a_failure_retrying_can_fix_offers_retry(harness: Harness) -> None:
    """A failure on Magic Hour's side (not the member's files) offers Retry."""
    harness.sandbox.faults.job_error("internal_error")
    await harness.lipsync()
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    message, ping = harness.public()
    assert final.state is JobState.FAILED and ping.content == failed_ping(harness, job.id)
    assert button_ids(message) == [f"lipsync:again:{job.id}:retry"]


async def test_cancel_edits_the_card_without_a_ping(harness: Harness) -> None:
    """The owner's own cancel is shown on the card itself: no new message, no ping, no buttons."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    result = await harness.lipsync()
    job, card = await card_while_rendering(harness)
    canceled = await harness.alice.click(card, label="Cancel")
    assert canceled.ephemeral and canceled.response is not None
    assert canceled.response.content == f"Canceled job #{job.id}. Cost: 0 credits (refunded)."
    final = await harness.finish(job.id)
    assert final.state is JobState.CANCELED
    [message] = harness.public()
    assert message.id == card.id and "🛑 Canceled" in message.content.splitlines()
    assert pinged(harness, message) == [] and button_ids(message) == []
    assert private(result) == f"▶️ Your job #{job.id} has started: [follow it here]({jump(harness, card.id)})."


async def test_a_rerun_gets_its_own_single_card(harness: Harness) -> None:
    """Again in pro: a new job with its own private reply, its own card that becomes its result, and its own ping."""
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    first_message, first_ping = harness.public()
    again = await harness.alice.click(first_message, custom_id=f"lipsync:again:{first.id}:pro")
    second = await harness.finish((await harness.latest_job()).id)
    assert second.id != first.id and second.state is JobState.DONE and second.rerun_of == first.id
    second_message, second_ping = harness.public()[2:]
    assert [m.id for m in harness.public()] == [first_message.id, first_ping.id, second_message.id, second_ping.id]
    assert second_message.id == second.delivery_message_id == second.status_message_id
    assert (
        private(again) == f"▶️ Your job #{second.id} has started: [follow it here]({jump(harness, second_message.id)})."
    )
    assert second_ping.content == ready_ping(harness, second.id) and pinged(harness, second_ping) == [harness.alice.id]
    assert button_ids(second_message) == [  # already pro
        f"lipsync:again:{second.id}:window",
        f"lipsync:delete:{second.id}:{harness.alice.id}",
    ]


async def test_after_the_token_the_bot_attaches_the_result_to_the_card_itself(harness: Harness) -> None:
    """A render that outlives the 15-minute token: the bot's own token edits the video onto the same card."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    result = await harness.lipsync()
    job, card = await card_while_rendering(harness)
    await harness.env.advance_time(16 * 60)  # Discord's clock: the interaction token is gone
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE
    message, ping = harness.public()
    assert message.id == card.id == final.delivery_message_id == final.status_message_id
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert ping.content == ready_ping(harness, job.id) and pinged(harness, ping) == [harness.alice.id]
    # The private reply can't be edited any more: it still points at the card, which is the result.
    assert private(result) == f"▶️ Your job #{job.id} has started: [follow it here]({jump(harness, card.id)})."


async def test_a_card_deleted_meanwhile_is_posted_again_and_becomes_the_result(harness: Harness) -> None:
    """After the token, a card a moderator deleted can't be edited: the bot posts it again (its ids stored for a
    restart), and that new card becomes the result, with its ping. Still one card in the channel."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job, card = await card_while_rendering(harness)
    await harness.env.advance_time(16 * 60)
    harness.env.backend.delete_message(harness.channel.id, card.id)  # as a moderator would
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE
    message, ping = harness.public()
    assert message.id != card.id and message.id == final.delivery_message_id == final.status_message_id
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert ping.content == ready_ping(harness, job.id) and pinged(harness, ping) == [harness.alice.id]


async def test_settings_a_member_who_wants_no_ping_gets_the_card_alone(harness: Harness) -> None:
    """`/lipsync-settings ping:False`: the card still becomes the result, and nothing pings anyone."""
    await harness.alice.slash(harness.channel, "lipsync-settings", ping=False)
    await harness.lipsync()
    final = await harness.finish((await harness.latest_job()).id)
    [message] = harness.public()
    assert message.id == final.delivery_message_id == final.status_message_id
    assert [a.filename for a in message.attachments] == [f"sandbox-lipsync-{final.id}.mp4"]
    assert pinged(harness, message) == []


async def test_settings_a_result_by_dm_leaves_the_card_saying_so(harness: Harness) -> None:
    """Results by DM: the video goes to the member's DMs (which notify); the card says where it went, no ping."""
    await harness.alice.slash(harness.channel, "lipsync-settings", results="dm")
    await harness.lipsync()
    final = await harness.finish((await harness.latest_job()).id)
    assert final.delivery_kind == "dm"
    [card] = harness.public()
    assert card.id == final.status_message_id and [a.filename for a in card.attachments] == ["first-frame.jpg"]
    assert card.content.splitlines()[1].startswith("✅ Done") and "sent by direct message" in card.content
    dm = harness.alice.user.dm_channel.last_message
    assert dm is not None and [a.filename for a in dm.attachments] == [f"sandbox-lipsync-{final.id}.mp4"]
    assert pinged(harness, card) == []


async def test_a_youtube_card_has_no_thumbnail(harness: Harness) -> None:
    """A link the bot never fetched gets no picture: the card is words alone, then the result."""
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync(video=None, youtube_url="https://youtu.be/dQw4w9WgXcQ", end=1.5)
    job, card = await card_while_rendering(harness)
    assert card.attachments == [] and "<https://www.youtube.com/watch?v=dQw4w9WgXcQ>" in card.content
    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE and final.delivery_message_id == card.id


async def test_a_video_whose_first_frame_cant_be_read_in_bounds_is_carded_without_one(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The thumbnail's reading fails (here: its child answers nothing): the job runs, its card has no picture."""
    thumbnails = importlib.import_module("bot.media.thumbnail")

    async def nothing(request: dict[str, object], limits: object) -> None:
        return None

    monkeypatch.setattr(thumbnails, "run_bounded", nothing)
    harness.sandbox.config.render_seconds = LONG_RENDER
    await harness.lipsync()
    job, card = await card_while_rendering(harness)
    assert card.attachments == []
    await harness.sandbox_clock.advance(LONG_RENDER)
    assert (await harness.finish(job.id)).state is JobState.DONE
