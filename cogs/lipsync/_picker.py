"""The message menus: "Lip-sync: use this video" and "Lip-sync: use this voice".

A member right-clicks a message that carries a clip or a voice and picks, in a private menu, the
other half from the channel's recent messages; after a mode menu and a Window form, picking starts
the same job as `/lipsync` (`cogs.lipsync._start.start_job`). docs/design-notes.md, "Creators' features",
says what the bot can see of a channel and why it remembers a member's last pick.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any, Literal

import discord

from bot import words
from bot.clock import Clock
from bot.config import GenerationMode
from bot.errors import InvalidInput
from bot.jobs.models import InputSource, JobRequest
from bot.jobs.validation import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, extension_of
from bot.jobs.youtube import canonical_youtube_url
from cogs import texts
from cogs.errors import report_error
from cogs.lipsync._start import WindowModal, start_job
from cogs.lipsync._texts import started_text
from cogs.locale import MemberView

log = logging.getLogger(__name__)

MENU_VIDEO = "Lip-sync: use this video"
MENU_VOICE = "Lip-sync: use this voice"
RECENT_MESSAGES = 50  # how far back the menu looks in the channel
MAX_CHOICES = 25  # Discord's limit of options in one select menu
PICKER_TIMEOUT = 600.0  # the menu answers for 10 minutes (an interaction token lives 15)
REMEMBER_FOR = 600.0

# The menu's parts (it lives in memory for PICKER_TIMEOUT: these ids need not survive a restart).
PICK_MEDIA, PICK_MODE, PICK_WINDOW = "lipsync:pick:media", "lipsync:pick:mode", "lipsync:pick:window"

Kind = Literal["video", "audio"]
_URL = re.compile(r"https?://[^\s<>|]+")


@dataclass(frozen=True)
class Media:
    """One clip or voice found in a message: what to send the engine, and how to show it."""

    kind: Kind
    label: str  # the file's name, or the YouTube link
    author_id: int
    author_name: str
    message_id: int
    source: InputSource | None = None  # an attachment (its signed URL is fetched at once, never stored)
    youtube_url: str | None = None
    voice: bool = False  # a Discord voice message
    seconds: float | None = None  # Discord's length of a voice message: shown, never trusted

    @property
    def key(self) -> tuple[int, str]:
        """The same media found twice (in the channel, and remembered) has the same key."""
        return self.message_id, self.label


def attachment_kind(attachment: discord.Attachment) -> Kind | None:
    """Whether an attachment is a video, a voice (voice messages included), or neither.

    A first sort for the menu only: the engine checks names, types and contents as it does for
    `/lipsync`.
    """
    if attachment.is_voice_message():
        return "audio"
    content_type = (attachment.content_type or "").split(";")[0].strip().lower()
    ext = extension_of(attachment.filename)
    if content_type.startswith("audio/") and ext in AUDIO_EXTENSIONS:
        return "audio"
    if ext in VIDEO_EXTENSIONS and not content_type.startswith("audio/"):
        return "video"
    if ext in AUDIO_EXTENSIONS:
        return "audio"
    return None


def youtube_links(text: str) -> list[str]:
    """The YouTube links in a message's text, canonical, each once."""
    found: list[str] = []
    for raw in _URL.findall(text or ""):
        try:
            url = canonical_youtube_url(raw.rstrip(").,;!?'\""))
        except InvalidInput:
            continue
        if url not in found:
            found.append(url)
    return found


def _carried(message: discord.Message) -> list[tuple[list[discord.Attachment], str]]:
    """The attachments and text a message carries: its own, then those of any message it forwards."""
    return [
        (message.attachments, message.content),
        *((snapshot.attachments, snapshot.content) for snapshot in message.message_snapshots),
    ]


def media_in(message: discord.Message, kind: Kind) -> list[Media]:
    """The clips (or voices) one message carries, in order; a forwarded message's count as its own."""
    author = message.author

    def media(label: str, **more: Any) -> Media:  # noqa: ANN401 - Media's own fields
        return Media(kind, label, author.id, author.display_name, message.id, **more)

    found = [
        media(
            attachment.filename,
            source=InputSource(
                filename=attachment.filename,
                size=attachment.size,
                content_type=attachment.content_type,
                url=attachment.url,
            ),
            voice=attachment.is_voice_message(),
            seconds=attachment.duration if attachment.is_voice_message() else None,
        )
        for attachments, _ in _carried(message)
        for attachment in attachments
        if attachment_kind(attachment) == kind
    ]
    if kind == "video":
        for _, text in _carried(message):
            found += [media(url, youtube_url=url) for url in youtube_links(text) if url not in _urls(found)]
    return found


def _urls(found: list[Media]) -> set[str]:
    return {m.youtube_url for m in found if m.youtube_url}


async def recent_media(channel: discord.abc.Messageable, kind: Kind) -> list[Media]:
    """The clips (or voices) in the channel's recent messages, newest first, at most `MAX_CHOICES`."""
    found: list[Media] = []
    try:
        async for message in channel.history(limit=RECENT_MESSAGES):
            found += media_in(message, kind)
            if len(found) >= MAX_CHOICES:
                break
    except discord.HTTPException as exc:  # no Read Message History here: nothing to offer from it
        log.info("could not read the channel's recent messages: %s", exc)
    return found[:MAX_CHOICES]


class RecentPicks:
    """Each member's last use of a menu, per server, for `REMEMBER_FOR` seconds (in memory only)."""

    def __init__(self, clock: Clock, remember_for: float = REMEMBER_FOR) -> None:
        self._clock = clock
        self._remember_for = remember_for
        self._picks: dict[tuple[int | None, int, Kind], tuple[Media, float]] = {}

    def remember(self, guild_id: int | None, user_id: int, media: Media) -> None:
        """Keep `media` as this member's latest pick of its kind."""
        now = self._clock.monotonic()
        self._picks = {key: value for key, value in self._picks.items() if value[1] > now}
        self._picks[(guild_id, user_id, media.kind)] = (media, now + self._remember_for)

    def recall(self, guild_id: int | None, user_id: int, kind: Kind) -> Media | None:
        """This member's latest pick of this kind, if it is recent enough."""
        found = self._picks.get((guild_id, user_id, kind))
        if found is None or found[1] <= self._clock.monotonic():
            return None
        return found[0]


def menu_name(name: str) -> str:
    """A message menu's name as the reader sees it, in bold."""
    return texts.bold(texts.command_name(name))


def media_label(media: Media) -> str:
    """What kind of media it is: "Voice message (5 s)", "Audio file", "Video", "YouTube link"."""
    if media.voice:
        if media.seconds is not None:
            return texts.describe("media_voice_seconds", {"seconds": media.seconds})
        return texts.describe("media_voice")
    if media.youtube_url is not None:
        return texts.describe("media_youtube")
    return texts.describe("media_audio" if media.kind == "audio" else "media_video")


def _author(media: Media) -> str:
    return discord.utils.escape_markdown(discord.utils.escape_mentions(media.author_name))


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


class _MediaSelect(discord.ui.Select["Picker"]):
    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.picked(interaction, int(self.values[0]))


class _ModeSelect(discord.ui.Select["Picker"]):
    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.mode_chosen(interaction, GenerationMode(self.values[0]))


class _WindowButton(discord.ui.Button["Picker"]):
    async def callback(self, interaction: discord.Interaction) -> None:
        assert self.view is not None
        await self.view.ask_window(interaction)


class Picker(MemberView):
    """The private menu of one member: the half they right-clicked, and the other half to pick."""

    def __init__(
        self,
        *,
        origin: discord.Interaction,
        chosen: Media,
        choices: list[Media],
        modes: tuple[GenerationMode, ...],
        remembered: Media | None = None,
    ) -> None:
        super().__init__(timeout=PICKER_TIMEOUT)
        self._origin = origin
        self._owner = origin.user.id
        self._language = words.current()  # for its expiry, which no member triggers
        self.chosen = chosen
        self.choices = choices[:MAX_CHOICES]
        self._remembered = remembered
        self._modes = modes or tuple(GenerationMode)
        self.mode = GenerationMode.LITE if GenerationMode.LITE in self._modes else self._modes[0]
        self.start = 0.0
        self.end: float | None = None
        self._media_select = _MediaSelect(
            placeholder=texts.describe(f"pick_placeholder_{self.wanted}")[:150],
            options=[self._option(index, media) for index, media in enumerate(self.choices)],
            custom_id=PICK_MEDIA,
            row=0,
        )
        self._mode_select = _ModeSelect(options=self._mode_options(), custom_id=PICK_MODE, row=1)
        self.add_item(self._media_select)
        self.add_item(self._mode_select)
        self.add_item(_WindowButton(label=texts.button_label("button_window"), custom_id=PICK_WINDOW, row=2))

    @property
    def wanted(self) -> Kind:
        """The kind the member picks here: the other half of what they right-clicked."""
        return "audio" if self.chosen.kind == "video" else "video"

    def _option(self, index: int, media: Media) -> discord.SelectOption:
        data = {"kind": media_label(media), "author": media.author_name}
        code = (
            "pick_option_remembered"
            if self._remembered is not None and media.key == self._remembered.key
            else "pick_option_from"
        )
        return discord.SelectOption(
            label=_truncate(media.label, 100),
            value=str(index),
            description=_truncate(texts.describe(code, data), 100),
        )

    def _mode_options(self) -> list[discord.SelectOption]:
        return [
            discord.SelectOption(
                label=texts.describe("pick_option_mode", {"mode": mode.value, "price": mode.credits_per_frame})[:100],
                value=mode.value,
                default=mode is self.mode,
            )
            for mode in self._modes
        ]

    def _window_text(self) -> str:
        youtube = (self.chosen.youtube_url is not None) or all(m.youtube_url is not None for m in self.choices)
        if self.end is not None:
            return texts.describe("pick_window", {"start": self.start, "end": self.end})
        if youtube:
            return texts.describe("pick_window_needed", {"button": texts.bold(texts.button_label("button_window"))})
        if self.start:
            return texts.describe("pick_window_from", {"start": self.start})
        return texts.describe("pick_window_default")

    def summary(self) -> str:
        """The menu's text: what was right-clicked, what to pick, and the settings it will use."""
        quoted = texts.DISCORD.quote(self.chosen.label)
        data = {"video": quoted, "audio": quoted, "author": _author(self.chosen)}
        heading = texts.describe("pick_heading_audio" if self.wanted == "audio" else "pick_heading_video", data)
        return "\n".join(
            [
                texts.bold(heading),
                texts.describe(f"pick_choose_{self.wanted}"),
                texts.describe("pick_settings", {"mode": self.mode.value, "window": self._window_text()}),
            ]
        )

    async def interaction_check(self, interaction: discord.Interaction, /) -> bool:
        """Only the member who opened it (the menu is private to them anyway)."""
        return await super().interaction_check(interaction) and interaction.user.id == self._owner

    async def mode_chosen(self, interaction: discord.Interaction, mode: GenerationMode) -> None:
        """Remember the mode and show it."""
        self.mode = mode
        self._mode_select.options = self._mode_options()
        await interaction.response.edit_message(content=self.summary(), view=self)

    async def ask_window(self, interaction: discord.Interaction) -> None:
        """Ask for the part of the clip to lip-sync."""
        modal = WindowModal(on_window=self._window_chosen, start=self.start, end=self.end)
        await interaction.response.send_modal(modal)

    async def _window_chosen(self, interaction: discord.Interaction, start: float, end: float | None) -> None:
        self.start, self.end = start, end
        await interaction.response.edit_message(content=self.summary(), view=self)

    async def picked(self, interaction: discord.Interaction, index: int) -> None:
        """Start the job with the picked half; a refusal is told privately and the menu stays."""
        try:
            other = self.choices[index]
            video, audio = (self.chosen, other) if self.chosen.kind == "video" else (other, self.chosen)
            if audio.source is None:
                raise InvalidInput("pick_not_audio", menu=menu_name(MENU_VOICE))
            request = JobRequest(
                user_id=interaction.user.id,
                audio=audio.source,
                video=video.source,
                youtube_url=video.youtube_url,
                start=self.start,
                end=self.end,
                mode=self.mode,
                guild_id=interaction.guild_id,
            )
            job = await start_job(interaction, request)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        if job is None:
            return
        self.stop()
        try:
            await self._origin.edit_original_response(content=started_text(), view=None)
        except discord.HTTPException as exc:
            log.info("could not close the media menu: %s", exc)

    async def on_timeout(self) -> None:
        """Say the menu expired (its selections would reach nothing now)."""
        # Nobody acted: the menu's member reads it, in the language they opened it in.
        with words.using(self._language):
            menu = menu_name(MENU_VIDEO if self.chosen.kind == "video" else MENU_VOICE)
            content = texts.describe("pick_expired", {"menu": menu})
        try:
            await self._origin.edit_original_response(content=content, view=None)
        except discord.HTTPException as exc:
            log.info("could not mark the media menu expired: %s", exc)


def with_remembered(choices: list[Media], remembered: Media | None) -> list[Media]:
    """The channel's media with the member's remembered pick first (once)."""
    if remembered is None:
        return choices
    return [remembered, *(media for media in choices if media.key != remembered.key)][:MAX_CHOICES]
