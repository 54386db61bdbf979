"""Hands a finished video to its owner in Discord: `ResultPoster`, the engine's `Deliverer`.

The job's card becomes the result: the video attached to it by an edit (through the interaction's
token while it lives, else the bot's), with the result's buttons under it; the card then pings its
owner with a short reply (`cogs.lipsync._status`). A new message only where Discord forces it (the
card can't be edited) or the member chose another place (a thread of its own, a DM): a followup, a
channel message that mentions the member and replies to the card, or a DM. Each place has its own
upload limit: attached, re-encoded to fit, or a **Download** button (the signed link is never
written out) with a **New link** button.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import discord

from bot import media, words
from bot.clock import Clock
from bot.jobs.models import Delivery, LinkProvider
from bot.ops.metrics import metrics_of
from bot.store import JobRecord, ResultPlace
from cogs import texts
from cogs.lipsync._settings import pings_owner, result_place
from cogs.lipsync._status import NO_MENTIONS, LanguageOf, StatusMessage, only_mentioning, token_alive
from cogs.lipsync._texts import job_language, result_text
from cogs.lipsync._views import link_view, result_view, with_delete

log = logging.getLogger(__name__)


__all__ = ["ResultPoster", "only_mentioning", "owner_mentions"]


def owner_mentions(job: JobRecord) -> discord.AllowedMentions:
    """Mentions allowed in a job's result: its owner, if their settings ask for a ping; no one else."""
    return only_mentioning(job.user_id) if pings_owner(job) else NO_MENTIONS


@dataclass(frozen=True)
class _Payload:
    """What to send for one upload limit."""

    kind: str  # "file", "compressed" or "link"
    file: Path | None
    link: str | None


class ResultPoster:
    """Hands a finished video to its owner: a `Deliverer`.

    Tries, in order: the member's chosen place (a thread, a DM); the job's card, edited into the
    result; a followup on the interaction while its token lives; a new message in the job's channel
    that mentions the member and replies to the card; a DM. In the channel it is written in the
    server's language (`language_of`), in a DM in the member's. Each place has its own upload
    limit: the file is attached if it fits, else re-encoded to fit, else replaced by a **Download**
    button (the signed link is never written out) and a **New link** button.
    """

    def __init__(
        self,
        client: discord.Client,
        clock: Clock,
        *,
        user_id: int,
        channel_id: int | None,
        guild_id: int | None,
        interaction: discord.Interaction | None = None,
        status: StatusMessage | None = None,
        language_of: LanguageOf = job_language,
    ) -> None:
        self._client = client
        self._clock = clock
        self._language_of = language_of
        self._user_id = user_id
        self._channel_id = channel_id
        self._guild_id = guild_id
        self._interaction = interaction
        self._status = status
        self._fitted: dict[int, Path | None] = {}
        self._counted: set[tuple[str, int]] = set()
        self._thread: discord.Thread | None = None  # the job's own thread, once made (members' settings)
        self._link: LinkProvider = _no_link

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Post the result (or only a link to it); raise only if it could not reach the member anywhere."""
        self._link = link
        # The member's choice of place (a thread, a DM), when it can be honoured; else as below.
        chosen = await self._to_chosen_place(job, result, sandbox=sandbox)
        if chosen is not None:
            return chosen
        on_card = await self._onto_card(job, result, sandbox=sandbox)
        if on_card is not None:
            return on_card
        interaction = self._interaction
        if interaction is not None and token_alive(interaction):
            try:
                return await self._send_followup(interaction, job, result, sandbox=sandbox)
            except discord.HTTPException as exc:
                log.info("job %s: followup failed (%s); posting in the channel instead", job.id, exc)
        if self._channel_id is not None:
            metrics_of(self._client).delivery_fallback("channel")
            try:
                return await self._send_to_channel(job, result, sandbox=sandbox)
            except (discord.Forbidden, discord.NotFound) as exc:
                log.info("job %s: can't post in channel %s (%s); sending a DM", job.id, self._channel_id, exc)
        metrics_of(self._client).delivery_fallback("dm")
        return await self._send_dm(job, result, sandbox=sandbox)

    async def _send_followup(
        self, interaction: discord.Interaction, job: JobRecord, result: Path | None, *, sandbox: bool
    ) -> Delivery:
        payload = await self._payload(job, result, interaction.filesize_limit)
        content, file, view = await self._parts(job, payload, sandbox=sandbox, lang=self._language_of(job))
        message = await interaction.followup.send(
            content, file=file, view=view, wait=True, allowed_mentions=owner_mentions(job)
        )
        return Delivery(kind=payload.kind, message_id=message.id)

    async def _send_to_channel(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery:
        assert self._channel_id is not None
        guild = self._client.get_guild(self._guild_id) if self._guild_id is not None else None
        limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        payload = await self._payload(job, result, limit)
        content, file, view = await self._parts(job, payload, sandbox=sandbox, lang=self._language_of(job))
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        card = self._reply_to()
        if card is None:
            message = await channel.send(content, file=file, view=view, allowed_mentions=owner_mentions(job))
        else:  # under the card it was meant for, so the card and its result stay together
            message = await channel.send(
                content, file=file, view=view, allowed_mentions=owner_mentions(job), reference=card
            )
        return Delivery(kind=payload.kind, message_id=message.id)

    async def _to_chosen_place(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery | None:
        """Deliver where the member's settings send results (`result_place`); None: to the channel as usual.

        A place that can't be used (DMs closed, threads not allowed here) falls back to the channel.
        """
        place = result_place(job)
        try:
            if place is ResultPlace.DM:
                return await self._send_dm(job, result, sandbox=sandbox)
            if place is ResultPlace.THREAD and self._channel_id is not None:
                return await self._send_to_thread(job, result, sandbox=sandbox)
        except discord.HTTPException as exc:  # forbidden, gone, or refused: the channel still works
            log.info("job %s: can't deliver to the member's %s (%s); using the channel", job.id, place.value, exc)
        return None

    async def _send_to_thread(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery | None:
        """A thread of the job's own, started from its status message (or in its channel), with the result.

        None where the channel can't hold threads. A thread made once is used again if sending fails
        and the delivery is retried.
        """
        thread = self._thread or await self._new_thread(job)
        if thread is None:
            return None
        self._thread = thread
        guild = self._client.get_guild(self._guild_id) if self._guild_id is not None else None
        limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        payload = await self._payload(job, result, limit)
        # Named as in the channel; whether it pings is the mentions' business (`owner_mentions`).
        content, file, view = await self._parts(job, payload, sandbox=sandbox, lang=self._language_of(job))
        message = await thread.send(content, file=file, view=view, allowed_mentions=owner_mentions(job))
        return Delivery(kind="thread", message_id=message.id, detail=payload.kind)

    async def _new_thread(self, job: JobRecord) -> discord.Thread | None:
        assert self._channel_id is not None
        name = texts.describe("result_thread_name", {"job": job.id}, self._language_of(job))[:100]
        status = self._status
        if status is not None and status.message_id is not None and status.channel_id == self._channel_id:
            channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
            return await channel.get_partial_message(status.message_id).create_thread(name=name)
        parent = self._client.get_channel(self._channel_id) or await self._client.fetch_channel(self._channel_id)
        if not isinstance(parent, discord.TextChannel):
            return None  # a thread, a forum, a voice channel's chat: results go there as usual
        return await parent.create_thread(name=name, type=discord.ChannelType.public_thread)

    def _reply_to(self) -> discord.MessageReference | None:
        """The job's status message, when it is in the channel the result goes to."""
        status = self._status
        if status is None or status.message_id is None or status.channel_id != self._channel_id:
            return None
        return discord.MessageReference(
            message_id=status.message_id,
            channel_id=status.channel_id,
            guild_id=self._guild_id,
            fail_if_not_exists=False,
        )

    async def _send_dm(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery:
        user = self._client.get_user(self._user_id) or await self._client.fetch_user(self._user_id)
        payload = await self._payload(job, result, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)
        # A DM is the member's own (their language); its re-runs stay on the card in the server: a
        # button in a DM has no server to run in.
        content, file, view = await self._parts(
            job, payload, sandbox=sandbox, lang=job_language(job), mention=False, again=False
        )
        message = await user.send(content, file=file, view=view, allowed_mentions=NO_MENTIONS)
        return Delivery(kind="dm", message_id=message.id, detail=payload.kind)

    async def _onto_card(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery | None:
        """Edit the job's card into its result; None where there is no card in this channel or Discord refuses."""
        status = self._status
        if status is None or status.message_id is None or status.channel_id != self._channel_id:
            return None
        interaction = self._interaction
        if interaction is not None and token_alive(interaction):
            limit = interaction.filesize_limit
        else:
            guild = self._client.get_guild(self._guild_id) if self._guild_id is not None else None
            limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        payload = await self._payload(job, result, limit)
        # The card names its owner (no ping: an edit notifies no one; the card's reply does).
        content, file, view = await self._parts(job, payload, sandbox=sandbox, lang=self._language_of(job))
        try:
            card = await status.become_result(job.id, content, view, file or None)
        except discord.HTTPException as exc:
            log.info("job %s: could not put the result on its card (%s); posting it anew", job.id, exc)
            return None
        return Delivery(kind=payload.kind, message_id=card) if card is not None else None

    async def _parts(
        self, job: JobRecord, payload: _Payload, *, sandbox: bool, lang: str, mention: bool = True, again: bool = True
    ) -> tuple[str, discord.File, discord.ui.View]:
        """The result's words, in `lang` (the card's server's, or the member's in a DM), with its file and buttons."""
        with words.using(lang):
            content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload), mention=mention)
            file, view = await self._message_parts(job, payload, again=again)
        return content, file, view

    async def _message_parts(
        self, job: JobRecord, payload: _Payload, *, again: bool = True
    ) -> tuple[discord.File, discord.ui.View]:
        """The file to attach (`MISSING`: none, in discord.py's words), and the buttons under it.

        Download and New link when not attached; the ways to run it again (`again`); Delete.
        """
        file: discord.File = discord.utils.MISSING
        if payload.file is not None:
            # The name the member downloads: the engine names results "lipsync-<id>.mp4" (or "sandbox-…").
            file = discord.File(payload.file, filename=_download_name(payload.file))
        url = payload.link if _has_button(payload) else None
        linked = payload.file is None
        if again:
            view = await result_view(self._client, job, self._clock.now(), linked=linked, url=url)
        else:
            view = with_delete(link_view(job.id, url) if linked else None, job)
        return file, view

    async def _payload(self, job: JobRecord, result: Path | None, limit: int) -> _Payload:
        if result is not None:
            size = await asyncio.to_thread(lambda: result.stat().st_size)
            if size <= limit:
                return _Payload("file", result, None)
            fitted = await self._fit(result, limit)
            if fitted is not None:
                self._count("compressed", limit)
                return _Payload("compressed", fitted, None)
        self._count("link", limit)
        return _Payload("link", None, await self._link())

    def _count(self, fallback: str, limit: int) -> None:
        # Once per limit: the card and a followup share the interaction's limit and its copy.
        if (fallback, limit) not in self._counted:
            self._counted.add((fallback, limit))
            metrics_of(self._client).delivery_fallback(fallback)

    async def _fit(self, result: Path, limit: int) -> Path | None:
        # Each limit is tried once: a followup that failed and a channel post share the work.
        if limit not in self._fitted:
            dest = result.with_name(f"{result.stem}-fit-{limit}{result.suffix}")
            self._fitted[limit] = await media.compress_to_fit(result, dest, limit)
        return self._fitted[limit]


def _has_button(payload: _Payload) -> bool:
    # Discord refuses link buttons with URLs over 512 characters: then only New link is offered.
    return payload.link is not None and len(payload.link) <= texts.MAX_BUTTON_URL


def _download_name(path: Path) -> str:
    # A re-encoded copy keeps the original's name: "lipsync-12-fit-10485760.mp4" -> "lipsync-12.mp4".
    stem = path.stem.split("-fit-", 1)[0]
    return f"{stem}.mp4"


async def _no_link() -> str:
    raise RuntimeError("deliver() sets the link provider before any payload is made")
