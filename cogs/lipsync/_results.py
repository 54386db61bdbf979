"""Hands a finished video to its owner in Discord: `ResultPoster`, the engine's `Deliverer`.

The result is a new message that pings the owner (only them) and replaces the job's card
(`cogs.lipsync._status`), with the result's buttons under it: a followup while the interaction's
token lives; after that, a channel message, or a DM where the bot can't post in the channel. Each
place has its own upload limit: attached, re-encoded to fit, or a **Download** button (the signed
link is never written out) with a **New link** button.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from pathlib import Path

import discord

from bot import media
from bot.clock import Clock
from bot.jobs.models import Delivery, LinkProvider
from bot.ops.metrics import metrics_of
from bot.store import JobRecord
from cogs import texts
from cogs.lipsync._status import NO_MENTIONS, LanguageOf, only_mentioning, token_alive
from cogs.lipsync._texts import job_language, result_text
from cogs.lipsync._views import result_view

log = logging.getLogger(__name__)

__all__ = ["ResultPoster", "only_mentioning"]


@dataclass(frozen=True)
class _Payload:
    """What to send for one upload limit."""

    kind: str  # "file", "compressed" or "link"
    file: Path | None
    link: str | None


class ResultPoster:
    """Hands a finished video to its owner: a `Deliverer`.

    Tries, in order: a followup on the interaction while its token lives; a new message in the
    job's channel that mentions the member; a DM. In the channel it is written in the server's
    language (`language_of`), in a DM in the member's. Each
    place has its own upload limit: the file is attached if it fits, else re-encoded to fit, else
    replaced by a **Download** button (the signed link is never written out) and a **New link**
    button.
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
        language_of: LanguageOf = job_language,
    ) -> None:
        self._client = client
        self._clock = clock
        self._user_id = user_id
        self._channel_id = channel_id
        self._guild_id = guild_id
        self._interaction = interaction
        self._language_of = language_of
        self._fitted: dict[int, Path | None] = {}
        self._link: LinkProvider = _no_link

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Post the result (or only a link to it); raise only if it could not reach the member anywhere."""
        self._link = link
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
        lang = self._language_of(job)
        file, view = self._message_parts(job, payload, lang)
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload), lang=lang)
        message = await interaction.followup.send(
            content, file=file, view=view, wait=True, allowed_mentions=only_mentioning(job.user_id)
        )
        return Delivery(kind=payload.kind, message_id=message.id)

    async def _send_to_channel(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery:
        assert self._channel_id is not None
        guild = self._client.get_guild(self._guild_id) if self._guild_id is not None else None
        limit = guild.filesize_limit if guild is not None else discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES
        payload = await self._payload(job, result, limit)
        lang = self._language_of(job)
        content = result_text(job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload), lang=lang)
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        file, view = self._message_parts(job, payload, lang)
        message = await channel.send(content, file=file, view=view, allowed_mentions=only_mentioning(job.user_id))
        return Delivery(kind=payload.kind, message_id=message.id)

    async def _send_dm(self, job: JobRecord, result: Path | None, *, sandbox: bool) -> Delivery:
        user = self._client.get_user(self._user_id) or await self._client.fetch_user(self._user_id)
        payload = await self._payload(job, result, discord.utils.DEFAULT_FILE_SIZE_LIMIT_BYTES)
        lang = job_language(job)  # a DM is the member's own: their language
        content = result_text(
            job, sandbox=sandbox, kind=payload.kind, linked=_has_button(payload), mention=False, lang=lang
        )
        file, view = self._message_parts(job, payload, lang)
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

    def _message_parts(self, job: JobRecord, payload: _Payload, lang: str) -> tuple[discord.File, discord.ui.View]:
        """The file to attach (or the Download and New link buttons) and the ways to run it again.

        `MISSING` stands for "none" in discord.py.
        """
        file: discord.File = discord.utils.MISSING
        if payload.file is not None:
            # The name the member downloads: the engine names results "lipsync-<id>.mp4" (or "sandbox-…").
            file = discord.File(payload.file, filename=_download_name(payload.file))
        url = payload.link if _has_button(payload) else None
        view = result_view(job, self._clock.now(), lang, linked=payload.file is None, url=url)
        return file, view if view is not None else discord.utils.MISSING

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
