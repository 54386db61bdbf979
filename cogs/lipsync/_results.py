"""Hands a finished video to its owner in Discord: `ResultPoster`, the engine's `Deliverer`.

While the interaction's token lives the result is a followup; after that, a new channel message
that mentions the member and replies to the job's status message, or a DM where the bot can't post
in the channel. Each place has its own upload limit: attached, re-encoded to fit, or a **Download**
button (the signed link is never written out) with a **New link** button.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import discord

from bot import media
from bot.jobs.models import Delivery, LinkProvider
from bot.ops.metrics import metrics_of
from bot.store import JobRecord, ResultPlace
from cogs import texts
from cogs.lipsync._settings import pings_owner, result_place
from cogs.lipsync._status import NO_MENTIONS, StatusMessage, token_alive
from cogs.lipsync._texts import result_text
from cogs.lipsync._views import link_view, with_delete

log = logging.getLogger(__name__)


def owner_mentions(job: JobRecord) -> discord.AllowedMentions:
    """Mentions allowed in a job's result: its owner, if their settings ask for a ping; no one else."""
    return only_mentioning(job.user_id) if pings_owner(job) else NO_MENTIONS


def only_mentioning(user_id: int) -> discord.AllowedMentions:
    """Mentions allowed in a message that carries member text (a job's name): its owner, no one else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False)


@dataclass(frozen=True)
class _Payload:
    """What to send for one upload limit."""

    kind: str  # "file", "compressed" or "link"
    file: Path | None
    link: str | None


class ResultPoster:
    """Hands a finished video to its owner: a `Deliverer`.

    Tries, in order: a followup on the interaction while its token lives; a new message in the
    job's channel that mentions the member and replies to the job's status message; a DM. Each
    place has its own upload limit: the file is attached if it fits, else re-encoded to fit, else
    replaced by a **Download** button (the signed link is never written out) and a **New link**
    button.
    """

    def __init__(
        self,
        client: discord.Client,
        *,
        user_id: int,
        channel_id: int | None,
        guild_id: int | None,
        interaction: discord.Interaction | None = None,
        status: StatusMessage | None = None,
    ) -> None:
        self._client = client
        self._user_id = user_id
        self._channel_id = channel_id
        self._guild_id = guild_id
        self._interaction = interaction
        self._status = status
        self._fitted: dict[int, Path | None] = {}
        self._thread: discord.Thread | None = None  # the job's own thread, once made (members' settings)
        self._link: LinkProvider = _no_link

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Post the result (or only a link to it); raise only if it could not reach the member anywhere."""
        self._link = link
        # The member's choice of place (a thread, a DM), when it can be honoured; else as below.
        chosen = await self._to_chosen_place(job, result, sandbox=sandbox)
        if chosen is not None:
            return chosen
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
        file, view = _message_parts(job, payload)
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload))
        message = await interaction.followup.send(
            content, file=file, view=view, wait=True, allowed_mentions=owner_mentions(job)
        )
        return Delivery(kind=payload.kind, message_id=message.id)

    async def _send_to_channel(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery:
        assert self._channel_id is not None
        guild = self._client.get_guild(self._guild_id) if self._guild_id is not None else None
        limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        payload = await self._payload(job, result, limit)
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload))
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        file, view = _message_parts(job, payload)
        message = await channel.send(
            content,
            file=file,
            view=view,
            allowed_mentions=owner_mentions(job),
            reference=self._reply_to() or discord.utils.MISSING,
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
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload))
        file, view = _message_parts(job, payload)
        message = await thread.send(content, file=file, view=view, allowed_mentions=owner_mentions(job))
        return Delivery(kind="thread", message_id=message.id, detail=payload.kind)

    async def _new_thread(self, job: JobRecord) -> discord.Thread | None:
        assert self._channel_id is not None
        name = texts.describe("result_thread_name", {"job": job.id})[:100]
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
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload), mention=False)
        file, view = _message_parts(job, payload)
        message = await user.send(content, file=file, view=view, allowed_mentions=NO_MENTIONS)
        return Delivery(kind="dm", message_id=message.id, detail=payload.kind)

    async def _payload(self, job: JobRecord, result: Path | None, limit: int) -> _Payload:
        if result is not None:
            size = await asyncio.to_thread(lambda: result.stat().st_size)
            if size <= limit:
                return _Payload("file", result, None)
            fitted = await self._fit(result, limit)
            if fitted is not None:
                metrics_of(self._client).delivery_fallback("compressed")
                return _Payload("compressed", fitted, None)
        metrics_of(self._client).delivery_fallback("link")
        return _Payload("link", None, await self._link())

    async def _fit(self, result: Path, limit: int) -> Path | None:
        # Each limit is tried once: a followup that failed and a channel post share the work.
        if limit not in self._fitted:
            dest = result.with_name(f"{result.stem}-fit-{limit}{result.suffix}")
            self._fitted[limit] = await media.compress_to_fit(result, dest, limit)
        return self._fitted[limit]


def _has_button(payload: _Payload) -> bool:
    # Discord refuses link buttons with URLs over 512 characters: then only New link is offered.
    return payload.link is not None and len(payload.link) <= texts.MAX_BUTTON_URL


def _message_parts(job: JobRecord, payload: _Payload) -> tuple[discord.File, discord.ui.View]:
    """The file to attach (`MISSING`: none, in discord.py's words), or the Download and New link buttons; and Delete."""
    file: discord.File = discord.utils.MISSING
    view: discord.ui.View | None = None
    if payload.file is not None:
        # The name the member downloads: the engine names results "lipsync-<id>.mp4" (or "sandbox-…").
        file = discord.File(payload.file, filename=_download_name(payload.file))
    else:
        view = link_view(job.id, payload.link if _has_button(payload) else None)
    return file, with_delete(view, job)


def _download_name(path: Path) -> str:
    # A re-encoded copy keeps the original's name: "lipsync-12-fit-10485760.mp4" -> "lipsync-12.mp4".
    stem = path.stem.split("-fit-", 1)[0]
    return f"{stem}.mp4"


async def _no_link() -> str:
    raise RuntimeError("deliver() sets the link provider before any payload is made")
