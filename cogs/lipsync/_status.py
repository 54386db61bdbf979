"""How a job shows up in Discord: its private progress, then its one public card (`StatusMessage`).

Until the job is admitted (its files checked and its credits reserved) only its member sees it, in
the private reply to their command; a refusal before that is told there, and the channel never
sees the job. Then the public card is posted, edited as the job moves on, and at the end becomes
the result (the video attached to it by `cogs.lipsync._results.ResultPoster`) or the failure, with
a short reply that pings the owner. `cogs.lipsync._presenter.JobPresenter` builds both, for a job
started by a command (with its interaction) or resumed after a restart (from the card's ids stored
in its record).
docs/design-notes.md, "The job card", says which token edits it when, and what the channel may see.
"""

from __future__ import annotations

import asyncio
import dataclasses
import io
import logging
from collections.abc import Awaitable, Callable

import discord

from bot import words
from bot.clock import Clock
from bot.jobs.models import JobUpdate
from bot.store import JobRecord, JobState
from cogs import texts
from cogs.lipsync._pacing import EditPacer
from cogs.lipsync._private import (
    NO_MENTIONS,
    TOKEN_MARGIN,
    Offer,
    PrivateReply,
    only_mentioning,
    token_alive,
    token_gone,
)
from cogs.lipsync._settings import pings_owner
from cogs.lipsync._texts import admitted, job_language, ping_text, status_text
from cogs.lipsync._views import final_view, status_view

__all__ = [
    "DEFAULT_MIN_INTERVAL",
    "DEFAULT_TICK",
    "NO_MENTIONS",
    "TOKEN_MARGIN",
    "LanguageOf",
    "Offer",
    "StatusMessage",
    "StatusMoved",
    "only_mentioning",
    "token_alive",
    "token_gone",
]

log = logging.getLogger(__name__)

# Edit a status message at most this often; terminal states are always shown at once.
DEFAULT_MIN_INTERVAL = 3.0
# Refresh the status of a job waiting on Magic Hour this often (never more often than the edit
# interval), so its elapsed time and expected finish move on. An edit is made only when the words
# change, which, with `texts.coarse_duration`, is about once a minute.
DEFAULT_TICK = 15.0
# The card's first-frame picture of the member's video (`JobUpdate.thumbnail`).
THUMBNAIL_NAME = "first-frame.jpg"


StatusMoved = Callable[[int, int, int], Awaitable[None]]
"""Called with (job id, channel id, message id) whenever the job's public message is (re)posted."""

LanguageOf = Callable[[JobRecord], str]
"""The language a job's public messages are written in (the server's)."""


class StatusMessage:
    """One job's private progress and public card: a `ProgressSink` that edits only when the text changes.

    Updates arriving less than `min_interval` seconds (on `clock`) after the last edit are
    coalesced: a single delayed edit later shows the newest one. Before the job is admitted
    (`admitted`) progress goes to the member's private reply only; a job that ends before that is
    told there (or by DM), never in the channel. The card is posted once the job is admitted and
    edited until the end: the `ResultPoster` turns it into the result (`become_result`), a failure
    is written on it, and either is followed by a reply that pings the owner (an edit notifies no
    one). While the job waits on Magic Hour the card is refreshed every `tick` seconds.
    """

    def __init__(
        self,
        client: discord.Client,
        clock: Clock,
        *,
        channel_id: int,
        message_id: int | None,
        guild_id: int | None = None,
        interaction: discord.Interaction | None = None,
        min_interval: float = DEFAULT_MIN_INTERVAL,
        tick: float = DEFAULT_TICK,
        on_moved: StatusMoved | None = None,
        language_of: LanguageOf = job_language,
        pacer: EditPacer | None = None,
        offer: Offer | None = None,
    ) -> None:
        self._client = client
        self._pacer = pacer
        self._private = PrivateReply(client, interaction, pacer=pacer, offer=offer)
        self._clock = clock
        self._channel_id = channel_id
        self._guild_id = guild_id
        self._interaction = interaction
        self._message_id = message_id
        self._min_interval = min_interval
        self._tick_every = max(tick, min_interval)
        self._on_moved = on_moved
        self._language_of = language_of
        self._latest: JobUpdate | None = None
        self._latest_at = 0.0  # when `_latest` arrived, on the clock's monotonic time
        self._shown: str | None = None
        self._last_edit: float | None = None
        self._pending: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._final_retried = False
        self._closed = False
        self._ended_privately = False  # ended before its card: the channel is shown nothing
        self._is_result = False  # the card carries the result now: progress never overwrites it
        self.edits = 0

    @property
    def message_id(self) -> int | None:
        """The job's public message (None before its card is posted)."""
        return self._message_id

    @property
    def channel_id(self) -> int:
        """The channel the job's card is in."""
        return self._channel_id

    @property
    def pacer(self) -> EditPacer | None:
        """The bot-wide pace its edits wait for (None: unpaced)."""
        return self._pacer

    def _public(self, update: JobUpdate) -> bool:
        return self._message_id is not None or admitted(update)

    async def update(self, update: JobUpdate) -> None:
        """Show this snapshot now, later (coalesced), or not at all if nothing visible changed."""
        if self._latest is not None and self._latest.job.state.terminal:
            return  # the final state is shown once; a late progress snapshot never replaces it
        self._latest = update
        self._latest_at = self._clock.monotonic()
        self._stop_ticking()
        if update.job.state.terminal:
            self._cancel_pending()
            if self._public(update):
                await self._flush()
            else:
                await self._end_privately(update.job)
            return
        if self._pending is not None:
            return  # the delayed edit will show this snapshot
        due = self._last_edit + self._min_interval if self._last_edit is not None else 0.0
        if due <= self._clock.monotonic():
            await self._flush()
        else:
            self._pending = asyncio.get_running_loop().create_task(self._flush_at(due))

    def close(self) -> None:
        """Stop every delayed edit and refresh (the bot is shutting down; a new one takes over)."""
        self._closed = True
        self._cancel_pending()
        self._stop_ticking()

    def _now_showing(self) -> JobUpdate | None:
        """The latest snapshot, its elapsed time moved on to now while the job runs."""
        update = self._latest
        if update is None or update.job.state.terminal:
            return update
        waited = max(0.0, self._clock.monotonic() - self._latest_at)
        return dataclasses.replace(update, elapsed=update.elapsed + waited) if waited else update

    async def _flush_at(self, due: float) -> None:
        # The deadline, not a delay, is fixed when scheduling: time that passes before this task
        # first runs still counts.
        try:
            await self._clock.sleep(due - self._clock.monotonic())
            self._pending = None
            await self._flush()
        except Exception:
            log.exception("delayed status update failed")

    def _cancel_pending(self) -> None:
        if self._pending is not None and self._pending is not asyncio.current_task():
            self._pending.cancel()
        self._pending = None

    def _stop_ticking(self) -> None:
        # Only a refresh still waiting is stopped; one already editing finishes its edit.
        if self._ticker is not None and self._ticker is not asyncio.current_task():
            self._ticker.cancel()
        self._ticker = None

    def _keep_ticking(self) -> None:
        update = self._latest
        if self._closed or update is None or update.job.state not in texts.TIMED_STATES:
            return
        self._stop_ticking()
        due = self._clock.monotonic() + self._tick_every
        self._ticker = asyncio.get_running_loop().create_task(self._tick_at(due))

    async def _tick_at(self, due: float) -> None:
        try:
            await self._clock.sleep(due - self._clock.monotonic())
            self._ticker = None
            if self._pending is None:  # a delayed edit on its way refreshes the time as well
                await self._flush()
        except Exception:
            log.exception("status refresh failed")

    async def _flush(self) -> None:
        async with self._lock:
            update = self._now_showing()
            if update is None or self._ended_privately:
                return
            if not self._public(update):
                if await self._private.progress(update):
                    self._last_edit = self._clock.monotonic()
                return
            if self._is_result and not update.job.state.terminal:
                return  # the card carries the result: a late progress edit must not replace it
            with words.using(self._language_of(update.job)):  # the public card: the server's language
                await self._flush_public(update)

    async def _flush_public(self, update: JobUpdate) -> None:
        """Show `update` on the public card (under the lock, in the card's language)."""
        content = status_text(update)
        if content == self._shown:
            self._keep_ticking()
            return
        if self._pacer is not None:
            # Every status message shares one pace; the text is read again after the wait.
            await self._pacer.turn(urgent=update.job.state.terminal)
            update = self._now_showing() or update
            content = status_text(update)
        job = update.job
        try:
            if job.state.terminal:
                await self._finish(job, content)
            else:
                await self._show(job.id, content, status_view(job.id))
        except discord.HTTPException as exc:
            # A display problem must never fail the job: log it and keep going. The final
            # state is worth one more try later (it removes the Cancel button).
            log.warning("job %s: could not update the status message: %s", job.id, exc)
            if job.state.terminal and not self._final_retried:
                self._final_retried = True
                due = self._clock.monotonic() + self._min_interval
                self._pending = asyncio.get_running_loop().create_task(self._flush_at(due))
            else:
                self._keep_ticking()
            return
        self._shown = content
        self._last_edit = self._clock.monotonic()
        self.edits += 1
        self._keep_ticking()

    # ------------------------------------------------------------------ before the card: private

    async def _end_privately(self, job: JobRecord) -> None:
        """Tell the member alone how their job ended before it was admitted: the channel never saw it.

        In the private reply while the interaction's token lives, else by DM.
        """
        async with self._lock:
            # Set first: an edit already waiting for the lock (a refresh) must not write it out.
            self._ended_privately = True
            await self._private.ended(job)

    # ------------------------------------------------------------------ the public card

    async def _show(self, job_id: int, content: str, view: discord.ui.View | None, *, repost: bool = True) -> None:
        """Edit the card (posting it the first time); `view=None` on an edit removes the buttons.

        A card that can't be edited is posted anew, unless `repost` is False (its job's result is
        already a message of its own: a second copy of the card would only be noise).
        """
        if self._message_id is None:
            await self._post_card(job_id, content, view)
            return
        try:
            await self._edit_card(self._message_id, content, view)
            return
        except (discord.NotFound, discord.Forbidden) as exc:
            # Deleted, or an interaction reply the bot token may not edit: post a new one.
            log.info("job %s: status message %s not editable (%s)", job_id, self._message_id, exc)
            if not repost:
                return
        await self._send(job_id, content, view, NO_MENTIONS)

    async def _edit_card(
        self,
        message_id: int,
        content: str,
        view: discord.ui.View | None,
        attachments: list[discord.File] = discord.utils.MISSING,
    ) -> None:
        """One edit of the card: through the interaction while its token lives, else the bot's own."""
        interaction = self._interaction
        if interaction is not None and token_alive(interaction):
            try:
                await interaction.followup.edit_message(
                    message_id, content=content, view=view, attachments=attachments, allowed_mentions=NO_MENTIONS
                )
                return
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
        self._interaction = None
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        await channel.get_partial_message(message_id).edit(
            content=content, view=view, attachments=attachments, allowed_mentions=NO_MENTIONS
        )

    async def _post_card(self, job_id: int, content: str, view: discord.ui.View | None) -> None:
        interaction = self._interaction
        if interaction is None or not token_alive(interaction):
            await self._send(job_id, content, view, NO_MENTIONS)
            return
        await self._private.before_card(job_language(self._latest.job) if self._latest is not None else texts.EN)
        message = await interaction.followup.send(
            content,
            view=view or discord.utils.MISSING,
            file=self._thumbnail(),
            wait=True,
            allowed_mentions=NO_MENTIONS,
        )
        await self._moved(job_id, message.id)
        await self._point_reply(job_id)

    def _thumbnail(self) -> discord.File:
        """The first frame of the member's video, for a card being posted (`MISSING`: none, in discord.py's words).

        Posted with the card and kept by its edits; the result's video replaces it.
        """
        picture = self._latest.thumbnail if self._latest is not None else None
        if picture is None:
            missing: discord.File = discord.utils.MISSING
            return missing
        thumbnail: discord.File = discord.File(io.BytesIO(picture), filename=THUMBNAIL_NAME)
        return thumbnail

    async def _point_reply(self, job_id: int) -> None:
        """Point the member's private reply at the job's card."""
        if self._message_id is not None and self._latest is not None:
            link = texts.jump_url(self._guild_id, self._channel_id, self._message_id)
            await self._private.point_at(job_id, link, job_language(self._latest.job))

    async def _send(
        self, job_id: int, content: str, view: discord.ui.View | None, mentions: discord.AllowedMentions
    ) -> None:
        """A new public message for the job: a followup while the token lives, else a channel message."""
        interaction = self._interaction
        message: discord.Message
        if interaction is not None and token_alive(interaction):
            message = await interaction.followup.send(
                content,
                view=view or discord.utils.MISSING,
                file=self._thumbnail(),
                wait=True,
                allowed_mentions=mentions,
            )
        else:
            channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
            message = await channel.send(
                content, view=view or discord.utils.MISSING, file=self._thumbnail(), allowed_mentions=mentions
            )
        await self._moved(job_id, message.id)

    async def _moved(self, job_id: int, message_id: int) -> None:
        self._message_id = message_id
        if self._on_moved is not None:
            await self._on_moved(job_id, self._channel_id, message_id)

    # ------------------------------------------------------------------ the end: the same card, a ping

    async def become_result(
        self, job_id: int, content: str, view: discord.ui.View, file: discord.File | None
    ) -> int | None:
        """Turn the card into the job's result by an edit: `content`, `view`, and the video attached.

        Returns the card's id; None when there is no card to edit. Raises `discord.HTTPException`
        when Discord refuses the edit (the `ResultPoster` then posts the result anew).
        """
        async with self._lock:
            if self._message_id is None or self._ended_privately:
                return None
            self._cancel_pending()
            self._stop_ticking()
            if self._pacer is not None:
                await self._pacer.turn(urgent=True)
            # The video replaces whatever the card carried (its thumbnail); a link leaves none.
            await self._edit_card(self._message_id, content, view, [file] if file is not None else [])
            self._is_result = True
            self._shown = content
            self.edits += 1
            return self._message_id

    async def _finish(self, job: JobRecord, content: str) -> None:
        """Show how the job ended on its card, then ping its owner where the card itself is the news."""
        on_card = job.state is JobState.DONE and job.delivery_message_id == self._message_id
        if not on_card:
            delivered = job.state is JobState.DONE and job.delivery_message_id is not None
            await self._show(job.id, content, await self._final_view(job), repost=not delivered)
        if self._message_id is not None and self._pings(job, on_card=on_card):
            await self._ping(job)

    async def _final_view(self, job: JobRecord) -> discord.ui.View | None:
        """The ways to run a finished job again, on its card; none where its result carries them."""
        if job.state is JobState.DONE and job.delivery_message_id is not None and job.delivery_kind != "dm":
            return None  # the result, in the channel or its thread, has them under it
        return await final_view(self._client, job, self._clock.now())

    @staticmethod
    def _pings(job: JobRecord, *, on_card: bool) -> bool:
        """A failure, or a result on the card, pings its owner (if they want it): an edit notifies no
        one. A result posted anew pinged by itself, one sent by DM notifies anyway, and a cancel is
        the member's own act."""
        if not pings_owner(job):
            return False
        return job.state is JobState.FAILED or on_card

    async def _ping(self, job: JobRecord) -> None:
        """A one-line reply to the card that mentions only its owner; kept, so the mention stays readable."""
        assert self._message_id is not None
        text = ping_text(job)
        mentions = only_mentioning(job.user_id)
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        card = discord.MessageReference(
            message_id=self._message_id, channel_id=self._channel_id, guild_id=self._guild_id, fail_if_not_exists=False
        )
        try:
            await channel.send(text, reference=card, allowed_mentions=mentions)
            return
        except discord.HTTPException as exc:
            log.info("job %s: could not reply to the card (%s); pinging by followup", job.id, exc)
        interaction = self._interaction
        if interaction is None or not token_alive(interaction):
            return
        try:
            await interaction.followup.send(text, allowed_mentions=mentions)
        except discord.HTTPException as exc:
            log.warning("job %s: could not ping its owner: %s", job.id, exc)
