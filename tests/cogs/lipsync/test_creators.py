"""Creators' features: the slow path made short, through simcord with the real engine, store and sandbox.

Message menus that take the clip and the voice from messages already in the channel (voice
messages included), re-runs from the files a job already uploaded, and members answered in their
own language.
"""

from __future__ import annotations

import datetime as dt
import math

import discord
import pytest
import simcord

from bot.config import GenerationMode
from bot.store import JobState
from cogs.lipsync._picker import MENU_VIDEO, MENU_VOICE, PICK_MEDIA, PICK_MODE, PICK_WINDOW
from tests.cogs.conftest import VOICE_MESSAGE_NAME, Harness, button_ids


def select_options(message: discord.Message, custom_id: str) -> list[discord.SelectOption]:
    """The options of one select menu on a message."""
    for row in message.components:
        if isinstance(row, discord.ActionRow):
            for child in row.children:
                if isinstance(child, discord.SelectMenu) and child.custom_id == custom_id:
                    return child.options
    raise AssertionError(f"no select {custom_id!r} on the message")


def button_labels(message: discord.Message) -> list[str | None]:
    return [
        child.label
        for row in message.components
        if isinstance(row, discord.ActionRow)
        for child in row.children
        if isinstance(child, discord.Button)
    ]


def shown(result: simcord.InteractionResult) -> discord.Message:
    """The message an interaction answered with (the picker, a refusal, a status message)."""
    assert result.response is not None
    return result.response.message


async def job_message(harness: Harness, job_id: int) -> discord.Message:
    """A job's one public message (its card, or the result or failure that replaced it)."""
    record = await harness.store.jobs.get(job_id)
    assert record is not None
    [message] = [m for m in harness.public() if m.id == record.status_message_id]
    return message


async def uploads(harness: Harness) -> int:
    """Upload requests the sandbox has seen (each job that uploads makes one)."""
    return harness.sandbox.counters.requests["upload_urls"]


# ---------------------------------------------------------------------------------- message menus


async def test_right_click_a_video_pick_a_voice_message_and_get_the_result(harness: Harness, voice_ogg: bytes) -> None:
    """The clip is in the channel already, the voice is a voice message: two clicks, one job, one result."""
    clip = await harness.post(harness.bob, "my take", files=["face.mp4"])
    await harness.post(harness.bob, files=["voice.mp3"])
    await harness.voice_message(harness.alice, voice_ogg, seconds=1.5)

    menu = await harness.alice.context_menu(harness.channel, MENU_VIDEO, clip)

    assert menu.ephemeral  # only the member who asked sees the menu
    picker = shown(menu)
    assert "`face.mp4` by bob" in picker.content and "Mode: `lite`" in picker.content
    options = select_options(picker, PICK_MEDIA)
    # Newest first, with the file's name, its kind and who posted it.
    assert [(o.label, o.description) for o in options] == [
        (VOICE_MESSAGE_NAME, "Voice message (1.5 s) · by alice"),
        ("voice.mp3", "Audio file · by bob"),
    ]
    assert await harness.ledger_rows() == 0  # nothing is spent by looking

    started = await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)

    assert started.acknowledged and started.ephemeral  # private until admitted, like /lipsync's
    job = await harness.latest_job()
    assert (job.video_filename, job.audio_filename) == ("face.mp4", VOICE_MESSAGE_NAME)
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE, final.error_code
    # The voice's length as probed (Opus pads it a little past 1.5 s), at 30 fps, lite.
    assert final.audio_seconds is not None
    assert final.charged_credits == final.estimated_credits == math.ceil(final.audio_seconds * 30)
    [result] = started.followups
    assert f"<@{harness.alice.id}>, your lip-sync job #{job.id} is ready." in result.message.content
    assert result.message.attachments  # the video itself
    assert (await job_message(harness, job.id)).id == result.message.id  # the job's one public message
    assert shown(started).content.startswith(f"▶️ Your job #{job.id} has started: [follow it here](")
    # The private menu says where the job went, and offers nothing more to pick.
    picker = shown(menu)
    assert picker.content == (
        "Your job is on its way: its progress is in the answer below, "
        "and its card appears in the channel once it starts."
    )
    assert not picker.components


async def test_a_forwarded_clip_can_be_lip_synced(harness: Harness) -> None:
    """A clip forwarded from another channel carries its file in a snapshot: the menu finds it, the job uses it."""
    elsewhere = harness.guild.create_text_channel("clips")
    original = await harness.bob.send(elsewhere, "take 2", attachments=[harness.file("face.mp4")])
    forwarded = await harness.alice.forward(original, harness.channel)
    assert forwarded.attachments == [] and forwarded.message_snapshots  # Discord's shape of a forward
    await harness.post(harness.alice, files=["voice.mp3"])

    menu = await harness.alice.context_menu(harness.channel, MENU_VIDEO, forwarded)
    picker = shown(menu)
    assert "`face.mp4` by alice" in picker.content
    assert [o.label for o in select_options(picker, PICK_MEDIA)] == ["voice.mp3"]

    started = await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)
    job = await harness.latest_job()
    assert (job.video_filename, job.audio_filename) == ("face.mp4", "voice.mp3")
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE, final.error_code
    assert started.followups[0].message.attachments


async def test_a_voice_message_works_as_audio(harness: Harness, voice_ogg: bytes) -> None:
    """Right-click a voice message: the menu offers the channel's videos, and the voice is the job's audio."""
    await harness.post(harness.bob, "clip", files=["face.mp4"])
    voice = await harness.voice_message(harness.alice, voice_ogg)

    menu = await harness.alice.context_menu(harness.channel, MENU_VOICE, voice)

    picker = shown(menu)
    assert "Pick the video below" in picker.content
    assert [(o.label, o.description) for o in select_options(picker, PICK_MEDIA)] == [("face.mp4", "Video · by bob")]
    started = await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE, final.error_code
    assert final.audio_filename == VOICE_MESSAGE_NAME and final.audio_seconds is not None
    assert abs(final.audio_seconds - 1.5) < 0.1  # probed from the Ogg/Opus file, not taken from Discord
    assert started.followups


async def test_mode_and_window_are_set_before_picking(harness: Harness, voice_ogg: bytes) -> None:
    """The menu's defaults can be changed first: pro, and a part of the clip; the estimate follows them."""
    clip = await harness.post(harness.bob, files=["long.mp4"])
    await harness.voice_message(harness.alice, voice_ogg)
    menu = await harness.alice.context_menu(harness.channel, MENU_VIDEO, clip)
    picker = shown(menu)
    assert [o.value for o in select_options(picker, PICK_MODE)] == ["lite", "standard", "pro"]

    await harness.alice.select(picker, ["pro"], custom_id=PICK_MODE)
    form = await harness.alice.click(shown(menu), custom_id=PICK_WINDOW)
    assert form.modal is not None
    await harness.alice.submit_modal(form, {"window:start": "2", "window:end": "3,5"})  # a decimal comma works too

    picker = shown(menu)
    assert "Mode: `pro` · Part: 2 s to 3.5 s." in picker.content
    await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)
    job = await harness.latest_job()
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE, final.error_code
    assert (final.start_seconds, final.end_seconds, final.mode.value) == (2.0, 3.5, "pro")
    # 1.5 s of a 25 fps clip: 38 frames, but Magic Hour holds 45 at create (30 fps), 2 credits each.
    assert final.estimated_credits == 90


async def test_a_message_with_no_media_gets_a_clear_answer_and_costs_nothing(harness: Harness) -> None:
    """Right-clicking text: told at once, privately, what to post instead; nothing is fetched or stored."""
    chat = await harness.post(harness.bob, "nice weather today")

    for menu, says in ((MENU_VIDEO, "has no video or YouTube link"), (MENU_VOICE, "has no voice message")):
        answer = await harness.alice.context_menu(harness.channel, menu, chat)
        assert answer.ephemeral and not answer.deferred
        assert (
            says in shown(answer).content and "right-click it and choose **Lip-sync: use this" in shown(answer).content
        )

    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id) == []
    assert await harness.ledger_rows() == 0 and harness.cdn.requests == 0


async def test_nothing_to_pick_says_how_to_post_one(harness: Harness) -> None:
    """A video with no voice anywhere near: the answer says how to add one."""
    clip = await harness.post(harness.bob, files=["face.mp4"])

    answer = await harness.alice.context_menu(harness.channel, MENU_VIDEO, clip)

    assert answer.ephemeral
    text = shown(answer).content
    assert text.startswith("There's no voice message or audio file in this channel's recent messages")
    assert "Record a voice message here" in text and "**Lip-sync: use this voice**" in text
    assert await harness.ledger_rows() == 0


async def test_a_youtube_link_in_a_message_is_a_clip(harness: Harness, voice_ogg: bytes) -> None:
    """A message with a YouTube link offers it as the video; a YouTube clip asks for its part first."""
    link = await harness.post(harness.bob, "watch this <https://youtu.be/dQw4w9WgXcQ>!")
    await harness.voice_message(harness.alice, voice_ogg)

    menu = await harness.alice.context_menu(harness.channel, MENU_VIDEO, link)

    picker = shown(menu)
    assert "`https://www.youtube.com/watch?v=dQw4w9WgXcQ` by bob" in picker.content
    assert "a YouTube clip needs an end" in picker.content
    refused = await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)
    assert refused.ephemeral and "With a YouTube link, set `end`" in shown(refused).content
    assert await harness.ledger_rows() == 0


@pytest.mark.env(approved_intents=discord.Intents(guilds=True))
async def test_without_the_message_content_intent_the_two_clicks_meet(harness: Harness, voice_ogg: bytes) -> None:
    """Discord hides other messages' attachments from a bot without the intent; the bot remembers the first click."""
    clip = await harness.post(harness.bob, files=["face.mp4"])
    voice = await harness.voice_message(harness.alice, voice_ogg)

    first = await harness.alice.context_menu(harness.channel, MENU_VIDEO, clip)
    assert "There's no voice message" in shown(first).content  # the channel's history shows no attachments
    assert "the bot remembers `face.mp4` for 10 minutes" in shown(first).content

    second = await harness.alice.context_menu(harness.channel, MENU_VOICE, voice)
    picker = shown(second)
    [option] = select_options(picker, PICK_MEDIA)
    assert (option.label, option.description) == ("face.mp4", "Video · by bob · your pick from a moment ago")
    await harness.alice.select(picker, ["0"], custom_id=PICK_MEDIA)
    job = await harness.latest_job()
    assert (await harness.finish(job.id)).state is JobState.DONE


# ---------------------------------------------------------------------------------- re-runs


async def test_again_in_pro_reuses_the_uploads_with_a_fresh_estimate(harness: Harness) -> None:
    """ "Again in pro": a second job, no upload and no download, the same frames at 2 credits each."""
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.DONE and first.charged_credits == 45
    assert first.audio_file_path and first.video_file_path and first.files_uploaded_at is not None
    uploads_before, fetched_before = await uploads(harness), harness.cdn.requests

    again = await harness.alice.click(await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:pro")

    assert again.acknowledged and again.ephemeral  # private until admitted, then its own public card
    second = await harness.latest_job()
    assert second.id != first.id
    final = await harness.finish(second.id)
    # Its run records which job's files it reuses (the click returns before the run has begun).
    assert final.state is JobState.DONE and final.rerun_of == first.id, final.error_code
    assert await uploads(harness) == uploads_before and harness.cdn.requests == fetched_before
    assert (final.video_file_path, final.audio_file_path) == (first.video_file_path, first.audio_file_path)
    assert final.files_uploaded_at == first.files_uploaded_at  # the week counts from the first upload
    assert final.mode.value == "pro" and (final.start_seconds, final.end_seconds) == (0.0, 1.5)
    assert final.estimated_credits == 90 and final.charged_credits == 90
    status = (await job_message(harness, final.id)).content
    assert f"your lip-sync job #{final.id} is ready" in status
    balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
    assert balance.used == 45 + 90 and balance.reserved == 0
    # A pro job offers only another part (and Delete, for its owner).
    assert button_ids(await job_message(harness, final.id)) == [
        f"lipsync:again:{final.id}:window",
        f"lipsync:delete:{final.id}:{harness.alice.id}",
    ]


async def test_again_in_pro_shows_the_price_it_will_set_aside(harness: Harness) -> None:
    """The button says what the pro re-run costs; a member with exactly that much left is offered it."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 45 + 90)
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.DONE and first.charged_credits == 45

    result = await job_message(harness, first.id)  # the card, now the result
    assert button_labels(result) == ["Again in pro · 90 credits", "Again with another part", "Delete"]

    await harness.alice.click(result, custom_id=f"lipsync:again:{first.id}:pro")
    second = await harness.finish((await harness.latest_job()).id)
    assert second.state is JobState.DONE and second.estimated_credits == second.charged_credits == 90


async def test_again_in_pro_is_absent_where_the_server_does_not_allow_pro(harness: Harness) -> None:
    """A button that could only be refused is not shown."""
    await harness.store.limits.set_allowed_modes(harness.guild.id, [GenerationMode.LITE, GenerationMode.STANDARD])
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.DONE
    assert button_ids(await job_message(harness, first.id)) == [
        f"lipsync:again:{first.id}:window",
        f"lipsync:delete:{first.id}:{harness.alice.id}",
    ]


async def test_again_in_pro_is_absent_when_the_member_cannot_pay_for_it(harness: Harness) -> None:
    """89 credits left for a 90-credit re-run: no pro button, the other window is still offered."""
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 45 + 89)
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.DONE and first.charged_credits == 45
    assert button_ids(await job_message(harness, first.id)) == [
        f"lipsync:again:{first.id}:window",
        f"lipsync:delete:{first.id}:{harness.alice.id}",
    ]


async def test_again_with_another_window_is_priced_for_that_window(harness: Harness) -> None:
    """Another window of the same upload: asked in a form, priced at the source's own rate."""
    await harness.lipsync(video="long.mp4")  # 8 s at 25 fps
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.DONE and first.source_fps == 25.0

    form = await harness.alice.click(await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:window")
    assert form.modal is not None
    # As long as the 1.5 s voice: a longer part would be announced, not rendered short.
    again = await harness.alice.submit_modal(form, {"window:start": "4", "window:end": "5.5"})

    second = await harness.latest_job()
    final = await harness.finish(second.id)
    assert final.state is JobState.DONE, final.error_code
    assert (final.start_seconds, final.end_seconds) == (4.0, 5.5)
    # 1.5 s at 25 fps is 38 frames; Magic Hour holds 45 (30 fps) at create, and that is what is reserved.
    assert final.estimated_credits == 45
    assert again.followups


async def test_retry_a_failed_job_from_its_uploads(harness: Harness) -> None:
    """A job Magic Hour failed on its side has a Retry button for its owner; the retry uploads nothing.

    (A failure the member's input caused offers no Retry: `test_card.py`.)
    """
    harness.sandbox.faults.job_error("internal_error")
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    assert first.state is JobState.FAILED and (first.error_code or "").startswith("magic_hour_")
    assert button_ids(await job_message(harness, first.id)) == [f"lipsync:again:{first.id}:retry"]
    uploads_before = await uploads(harness)

    retry = await harness.alice.click(await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:retry")

    final = await harness.finish((await harness.latest_job()).id)
    assert final.state is JobState.DONE and final.rerun_of == first.id and final.mode == first.mode
    assert await uploads(harness) == uploads_before
    assert retry.followups


async def test_someone_elses_job_buttons_are_refused_privately(harness: Harness) -> None:
    """Only the member who started a job can run it again; anyone else is told so, and nothing is spent."""
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    rows = await harness.ledger_rows()

    for how in ("pro", "window"):
        refused = await harness.bob.click(
            await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:{how}"
        )
        assert refused.ephemeral and refused.modal is None
        assert shown(refused).content == f"Only <@{harness.alice.id}> can run job #{first.id} again."

    assert await harness.store.jobs.recent_for_member(harness.guild.id, harness.bob.id) == []
    assert await harness.ledger_rows() == rows


async def test_expired_file_paths_are_told_and_cost_nothing(harness: Harness) -> None:
    """Magic Hour keeps uploads for 7 days: after that the button says so, and no job is made."""
    await harness.lipsync()
    first = await harness.finish((await harness.latest_job()).id)
    eight_days_ago = harness.bot.services.clock.now() - dt.timedelta(days=8)
    await harness.store.jobs.update(first.id, files_uploaded_at=eight_days_ago)
    rows, uploads_before = await harness.ledger_rows(), await uploads(harness)

    for how in ("pro", "window"):
        refused = await harness.alice.click(
            await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:{how}"
        )
        assert refused.ephemeral and refused.modal is None
        text = shown(refused).content
        assert text.startswith(f"Magic Hour keeps uploaded files for 7 days, and job #{first.id}'s expired <t:")
        assert f"Use {await harness.mention('lipsync')} with the files again." in text

    assert (await harness.latest_job()).id == first.id
    assert await harness.ledger_rows() == rows and await uploads(harness) == uploads_before


# ---------------------------------------------------------------------------------- languages


async def test_a_spanish_member_is_answered_in_spanish(harness: Harness) -> None:
    """Refusals and private answers: in the language of the member's Discord (es-ES). The job's public
    messages: in the server's language (English here; `test_a_spanish_server_sees_its_cards_in_spanish`)."""
    harness.speaks(harness.alice, "es-ES")

    refused = await harness.lipsync(start=4.0, end=2.0)
    assert refused.ephemeral
    assert shown(refused).content == "`fin` (2 s) debe ser posterior a `inicio` (4 s)."
    refused = await harness.lipsync(video=None)
    assert "el bot necesita un clip con una cara" in shown(refused).content

    result = await harness.lipsync()
    job = await harness.latest_job()
    assert job.locale == "es-ES"
    final = await harness.finish(job.id)
    assert final.state is JobState.DONE
    message = await job_message(harness, job.id)
    assert f"<@{harness.alice.id}>, your lip-sync job #{job.id} is ready. Cost: 45 credits." in message.content
    assert button_labels(message) == ["Again in pro · 90 credits", "Again with another part", "Delete"]
    assert shown(result).content.startswith(f"▶️ Tu trabajo #{job.id} ha empezado: [síguelo aquí](")
    # Her private answers too; Bob's stay English.
    jobs = await harness.alice.slash(harness.channel, "jobs")
    assert shown(jobs).content.startswith("**Tus trabajos de lip-sync recientes**")
    assert "cancelar" not in shown(jobs).content  # nothing runs: no hint to cancel
    theirs = await harness.bob.click(message, custom_id=f"lipsync:again:{job.id}:pro")
    assert shown(theirs).content == f"Only <@{harness.alice.id}> can run job #{job.id} again."


@pytest.mark.guild(preferred_locale="es-ES")
async def test_a_spanish_server_sees_its_cards_in_spanish(harness: Harness) -> None:
    """A server whose preferred language is Spanish gets its job cards in Spanish, whoever runs them."""
    harness.sandbox.config.render_seconds = 120.0
    result = await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    card = await job_message(harness, job.id)
    assert card.content.startswith(f"**Trabajo de lip-sync #{job.id}** · lite · de <@{harness.alice.id}>")
    assert button_labels(card) == ["Cancelar"]
    assert shown(result).content.startswith(f"▶️ Your job #{job.id} has started")  # Alice's own: English
    await harness.sandbox_clock.advance(121)
    final = await harness.finish(job.id)
    message = await job_message(harness, final.id)
    assert f"<@{harness.alice.id}>, tu trabajo de lip-sync #{job.id} está listo. Coste: 45 créditos." in message.content
    assert button_labels(message) == ["Otra vez en pro · 90 créditos", "Otra vez con otro fragmento", "Borrar"]


async def test_a_quota_refusal_is_in_spanish_with_spanish_numbers(harness: Harness) -> None:
    """Numbers and periods follow the language: "10.000 créditos", "hoy"."""
    harness.speaks(harness.alice, "es-419")  # Latin American Spanish reads the same catalogue
    await harness.store.limits.set_member_limit(harness.guild.id, harness.alice.id, 0, by_user_id=harness.manager.id)

    refused = await harness.lipsync()

    assert refused.ephemeral
    assert shown(refused).content.startswith("No te quedan créditos hoy. Tu asignación se renueva <t:")
    assert await harness.ledger_rows() == 0


@pytest.mark.guild(preferred_locale="pt-BR")
async def test_a_job_keeps_its_servers_language_across_a_restart(harness: Harness) -> None:
    """A card edited by the next process is still in the server's language (Portuguese)."""
    harness.sandbox.config.render_seconds = 120.0
    await harness.lipsync()
    job = await harness.latest_job()
    await harness.rendering(job.id)
    assert "Renderizando" in (await job_message(harness, job.id)).content

    await harness.restart()
    await harness.sandbox_clock.advance(121)
    final = await harness.finish(job.id)

    assert final.state is JobState.DONE
    status = harness.channel.history()
    texts = [m.content for m in status if f"#{job.id}" in m.content]
    assert texts == [  # the card, now the result, and its ping: both in Portuguese
        f"<@{harness.alice.id}>, seu trabalho de lip-sync #{job.id} está pronto. Custo: 45 créditos.\n"
        + texts[0].split("\n", 1)[1],
        f"<@{harness.alice.id}>, seu trabalho #{job.id} está pronto: o resultado está no cartão dele, acima.",
    ], texts


async def test_commands_are_localised_for_discord(harness: Harness) -> None:
    """The synced commands carry Spanish and Portuguese names, descriptions and choices."""
    commands = {command.name: command for command in await harness.bot.tree.fetch_commands()}

    cancel = commands["cancel"]
    assert cancel.name_localizations[discord.Locale.spain_spanish] == "cancelar"
    assert cancel.name_localizations[discord.Locale.latin_american_spanish] == "cancelar"
    assert cancel.name_localizations[discord.Locale.brazil_portuguese] == "cancelar"
    assert discord.Locale.french not in cancel.name_localizations  # no catalogue: Discord shows English
    lipsync = commands["lipsync"]
    assert lipsync.description_localizations[discord.Locale.spain_spanish].startswith("Sincroniza los labios")
    mode = next(option for option in lipsync.options if option.name == "mode")
    assert mode.name_localizations[discord.Locale.brazil_portuguese] == "modo"
    pro = next(choice for choice in mode.choices if choice.value == "pro")  # type: ignore[union-attr]
    assert pro.name_localizations[discord.Locale.spain_spanish] == "pro — 2 créditos/fotograma"
    menu = commands[MENU_VOICE]
    assert menu.name_localizations[discord.Locale.brazil_portuguese] == "Lip-sync: usar esta voz"


async def test_a_window_typed_past_its_bound_is_refused_clearly(harness: Harness) -> None:
    """The form takes any text: a start a week into the video is refused with the bound, and costs nothing."""
    await harness.lipsync(video="long.mp4")
    first = await harness.finish((await harness.latest_job()).id)
    form = await harness.alice.click(await job_message(harness, first.id), custom_id=f"lipsync:again:{first.id}:window")
    assert form.modal is not None
    again = await harness.alice.submit_modal(form, {"window:start": "604800", "window:end": "604801"})
    assert again.response is not None and again.ephemeral
    assert "can be at most 24 h into the video" in again.response.content, again.response.content
    assert (await harness.latest_job()).id == first.id  # no job was made
