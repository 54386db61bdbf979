"""How a job shows up in Discord: its live status message (`StatusMessage`, a `ProgressSink`).

The result goes out through `cogs.lipsync._results.ResultPoster`; `cogs.lipsync._presenter.JobPresenter` builds both,
for a job started by a slash command (with its interaction) or for one resumed after a restart
(from the ids stored in its record). docs/design-notes.md, "The status message", says which token
edits it when, and what the channel may see.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

import discord

from bot.clock import Clock
from bot.jobs.models import JobUpdate
from bot.store import JobRecord
from cogs import texts
from cogs.lipsync._fixes import FixesView
from cogs.lipsync._pacing import EditPacer
from cogs.lipsync._texts import is_refusal, not_started_public, not_started_text, status_text
from cogs.lipsync._views import final_view, status_view

log = logging.getLogger(__name__)

# Edit a status message at most this often; terminal states are always shown at once.
DEFAULT_MIN_INTERVAL = 3.0
# Refresh the status of a job waiting on Magic Hour this often (never more often than the edit
# interval), so its elapsed time and expected finish move on. An edit is made only when the words
# change, which, with `texts.coarse_duration`, is about once a minute.
DEFAULT_TICK = 15.0
# Stop using an interaction token this long before Discord's 15 minutes run out.
TOKEN_MARGIN = dt.timedelta(seconds=60)

NO_MENTIONS = discord.AllowedMentions.none()


StatusMoved = Callable[[int, int, int], Awaitable[None]]
"""Called with (job id, channel id, message id) when a status message had to be posted anew."""

Offer = Callable[[JobRecord], tuple[str, FixesView] | None]
"""What a refusal offers its member, told privately with it: lines and their buttons (`_fixes.fixes_offer`)."""


def token_alive(interaction: discord.Interaction | None) -> bool:
    """True while the interaction's token can still be used (with a margin)."""
    return interaction is not None and discord.utils.utcnow() < interaction.expires_at - TOKEN_MARGIN


def token_gone(error: discord.HTTPException) -> bool:
    """True for the answers that mean an interaction token can't be used any more.

    Discord says 401 (50027, Invalid Webhook Token) after 15 minutes and sometimes 404 (10062,
    Unknown interaction; 10015, Unknown Webhook). Never retry these: invalid requests count
    towards Discord's IP ban threshold.
    """
    return (error.status == 401 and error.code == 50027) or (error.status == 404 and error.code in (10015, 10062))


class StatusMessage:
    """One job's live status message: a `ProgressSink` that edits only when the text changes.

    Updates arriving less than `min_interval` seconds (on `clock`) after the last edit are
    coalesced: a single delayed edit later shows the newest one. Terminal states (done, failed,
    canceled) are shown at once and replace the Cancel button with the ways to run the job again
    (`final_view`), if any; a refusal (`is_refusal`) is
    told to the member privately and the message removed. While the job waits on Magic Hour the
    message is refreshed every `tick` seconds, with the elapsed time moved on by the clock.
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
        pacer: EditPacer | None = None,
        offer: Offer | None = None,
    ) -> None:
        self._client = client
        self._pacer = pacer
        self._offer = offer
        self._clock = clock
        self._channel_id = channel_id
        self._guild_id = guild_id
        self._interaction = interaction
        self._message_id = message_id
        self._min_interval = min_interval
        self._tick_every = max(tick, min_interval)
        self._on_moved = on_moved
        self._latest: JobUpdate | None = None
        self._latest_at = 0.0  # when `_latest` arrived, on the clock's monotonic time
        self._shown: str | None = None
        self._last_edit: float | None = None
        self._pending: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()
        self._final_retried = False
        self._closed = False
        self._ended_privately = False  # a refusal told to the member: the channel is shown nothing more
        self.edits = 0

    @property
    def message_id(self) -> int | None:
        """The message currently showing the status (None once it was removed)."""
        return self._message_id

    @property
    def channel_id(self) -> int:
        """The channel the status message is in."""
        return self._channel_id

    @property
    def pacer(self) -> EditPacer | None:
        """The bot-wide pace its edits wait for (None: unpaced)."""
        return self._pacer

    async def update(self, update: JobUpdate) -> None:
        """Show this snapshot now, later (coalesced), or not at all if nothing visible changed."""
        if self._latest is not None and self._latest.job.state.terminal:
            return  # the final state is shown once; a late progress snapshot never replaces it
        self._latest = update
        self._latest_at = self._clock.monotonic()
        self._stop_ticking()
        if update.job.state.terminal:
            self._cancel_pending()
            if is_refusal(update.job):
                await self._end_privately(update.job)
            else:
                await self._flush()
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
            # A finished job offers to run again from its uploaded files (while Magic Hour keeps them).
            if job.state.terminal:
                view = await final_view(self._client, job, self._clock.now())
            else:
                view = status_view(job.id)
            try:
                await self._show(update.job.id, content, view)
            except discord.HTTPException as exc:
                # A display problem must never fail the job: log it and keep going. The final
                # state is worth one more try later (it removes the Cancel button).
                log.warning("job %s: could not update the status message: %s", update.job.id, exc)
                if update.job.state.terminal and not self._final_retried:
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

    async def _show(self, job_id: int, content: str, view: discord.ui.View | None) -> None:
        # `view=None` on an edit removes the buttons; on a new message there are none either way.
        if self._interaction is not None and token_alive(self._interaction):
            try:
                await self._interaction.edit_original_response(content=content, view=view, allowed_mentions=NO_MENTIONS)
                return
            except discord.HTTPException as exc:
                if not token_gone(exc):
                    raise
        self._interaction = None
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        if self._message_id is not None:
            try:
                await channel.get_partial_message(self._message_id).edit(
                    content=content, view=view, allowed_mentions=NO_MENTIONS
                )
                return
            except (discord.NotFound, discord.Forbidden) as exc:
                # Deleted, or an interaction reply the bot token may not edit: post a new one.
                log.info("job %s: status message %s not editable (%s); posting anew", job_id, self._message_id, exc)
        if view is None:
            message = await channel.send(content, allowed_mentions=NO_MENTIONS)
        else:
            message = await channel.send(content, view=view, allowed_mentions=NO_MENTIONS)
        self._message_id = message.id
        if self._on_moved is not None:
            await self._on_moved(job_id, self._channel_id, message.id)

    # ------------------------------------------------------------------ a refusal, told privately

    async def _end_privately(self, job: JobRecord) -> None:
        """Tell the member alone why their job didn't start, and take the status off the channel.

        With the interaction's token: an ephemeral followup, then the reply is deleted. Without it:
        a DM, then the message is deleted. If the member can't be told privately, or the message
        can't be removed, the channel keeps a neutral line: no reason, no numbers.
        """
        async with self._lock:
            # Set first: an edit already waiting for the lock (a refresh) must not write the refusal out.
            self._ended_privately = True
            text = not_started_text(job)
            told = await self._tell_ephemerally(job, text) or await self._tell_by_dm(job, text)
            if told and await self._remove(job.id):
                return
            try:
                await self._show(job.id, not_started_public(job), None)
            except discord.HTTPException as exc:
                log.warning("job %s: could not update the status message: %s", job.id, exc)

    async def _tell_ephemerally(self, job: JobRecord, text: str) -> bool:
        interaction = self._interaction
        if interaction is None or not token_alive(interaction):
            return False
        try:
            if self._shown is None:
                # A reply still "thinking" would turn the next followup into itself, in public.
                await interaction.edit_original_response(
                    content=not_started_public(job), view=None, allowed_mentions=NO_MENTIONS
                )
            offered = self._offer(job) if self._offer is not None else None
            if offered is None:
                await interaction.followup.send(text, ephemeral=True, allowed_mentions=NO_MENTIONS)
            else:
                lines, view = offered
                content = f"{text}\n{lines}"[: texts.MAX_CONTENT]
                view.message = await interaction.followup.send(
                    content, ephemeral=True, allowed_mentions=NO_MENTIONS, view=view, wait=True
                )
        except discord.HTTPException as exc:
            log.info("job %s: could not answer privately through the interaction: %s", job.id, exc)
            return False
        return True

    async def _tell_by_dm(self, job: JobRecord, text: str) -> bool:
        try:
            user = self._client.get_user(job.user_id) or await self._client.fetch_user(job.user_id)
            await user.send(text, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("job %s: could not send the member a DM: %s", job.id, exc)
            return False
        return True

    async def _remove(self, job_id: int) -> bool:
        interaction = self._interaction
        if interaction is not None and token_alive(interaction):
            try:
                await interaction.delete_original_response()
                self._message_id = None
                return True
            except discord.HTTPException as exc:
                log.info("job %s: could not delete the reply through the interaction: %s", job_id, exc)
        if self._message_id is None:
            return True
        channel = self._client.get_partial_messageable(self._channel_id, guild_id=self._guild_id)
        try:
            await channel.get_partial_message(self._message_id).delete()
        except discord.NotFound:
            pass
        except discord.HTTPException as exc:
            log.info("job %s: could not delete status message %s: %s", job_id, self._message_id, exc)
            return False
        self._message_id = None
        return True
