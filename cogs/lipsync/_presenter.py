"""Builds each job's Discord hooks: its `StatusMessage` and its `ResultPoster`.

For a job started by a command (with its interaction) or resumed after a restart (from the card's
ids stored in its record). A job's public card is in the server's language (its preferred locale);
everything else its hooks write is in the language of the member who started it.
"""

from __future__ import annotations

import functools
import logging
import weakref
from pathlib import Path

import discord

from bot import words
from bot.jobs.models import Deliverer, Delivery, JobHooks, JobRequest, JobUpdate, LinkProvider, ProgressSink
from bot.services import Services
from bot.store import JobRecord
from cogs.lipsync._fixes import FixesView, fixes_offer
from cogs.lipsync._pacing import EditPacer
from cogs.lipsync._results import ResultPoster
from cogs.lipsync._status import DEFAULT_MIN_INTERVAL, StatusMessage
from cogs.lipsync._texts import job_language

log = logging.getLogger(__name__)


class JobPresenter:
    """Builds a job's `JobHooks`: its status message and its result poster.

    Every status message it builds waits `min_interval` between its own edits and shares one
    bot-wide `EditPacer`; `min_interval=0` turns both off (tests that read each update at once).
    """

    def __init__(
        self, client: discord.Client, services: Services, *, min_interval: float = DEFAULT_MIN_INTERVAL
    ) -> None:
        self._client = client
        self._services = services
        self._min_interval = min_interval
        self._sinks: weakref.WeakSet[StatusMessage] = weakref.WeakSet()
        self._pacer = EditPacer(services.clock) if min_interval > 0 else None
        self._offered: weakref.WeakSet[FixesView] = weakref.WeakSet()

    def close(self) -> None:
        """Stop every status message's delayed edits and refreshes, and its fixes' buttons (shutting down)."""
        for sink in list(self._sinks):
            sink.close()
        for view in list(self._offered):
            view.stop()  # their files' links die with this process: nothing may wait on them after it

    def _offer(self, request: JobRequest, job: JobRecord) -> tuple[str, FixesView] | None:
        """The fixes under `job`'s refusal (`_fixes.fixes_offer`), kept so a shutdown can stop them."""
        offered = fixes_offer(request, job)
        if offered is not None:
            self._offered.add(offered[1])
        return offered

    def _track(self, sink: StatusMessage) -> StatusMessage:
        self._sinks.add(sink)
        return sink

    def server_language(self, job: JobRecord) -> str:
        """The language of a job's public messages: its server's preferred locale (else its member's)."""
        guild = self._client.get_guild(job.guild_id) if job.guild_id is not None else None
        if guild is None:
            return job_language(job)
        return words.language_for(str(guild.preferred_locale))

    def for_interaction(self, interaction: discord.Interaction, request: JobRequest | None = None) -> JobHooks:
        """Hooks for a job started by `/lipsync`: both use the interaction while its token lives.

        With the job's `request`, a refusal told to the member offers its fixes as buttons (`_fixes`).
        """
        assert interaction.channel_id is not None
        sink = self._track(
            StatusMessage(
                self._client,
                self._services.clock,
                channel_id=interaction.channel_id,
                guild_id=interaction.guild_id,
                message_id=None,  # the card is posted once the job is admitted
                interaction=interaction,
                min_interval=self._min_interval,
                on_moved=self._remember,
                pacer=self._pacer,
                offer=functools.partial(self._offer, request) if request is not None else None,
                language_of=self.server_language,
            )
        )
        poster = ResultPoster(
            self._client,
            self._services.clock,
            user_id=interaction.user.id,
            channel_id=interaction.channel_id,
            guild_id=interaction.guild_id,
            interaction=interaction,
            status=sink,
            language_of=self.server_language,
        )
        return in_owners_language(JobHooks(sink=sink, deliverer=poster))

    def for_record(self, record: JobRecord) -> JobHooks:
        """Hooks for a job resumed after a restart, from the ids in its record (a `HooksFactory`)."""
        channel_id = record.status_channel_id or record.channel_id
        status: StatusMessage | None = None
        if channel_id is not None:
            status = self._track(
                StatusMessage(
                    self._client,
                    self._services.clock,
                    channel_id=channel_id,
                    guild_id=record.guild_id,
                    message_id=record.status_message_id,
                    min_interval=self._min_interval,
                    on_moved=self._remember,
                    pacer=self._pacer,
                    language_of=self.server_language,
                )
            )
        poster = ResultPoster(
            self._client,
            self._services.clock,
            user_id=record.user_id,
            channel_id=record.channel_id,
            guild_id=record.guild_id,
            status=status,
            language_of=self.server_language,
        )
        sink: StatusMessage | _NoStatus = status if status is not None else _NoStatus()
        return in_owners_language(JobHooks(sink=sink, deliverer=poster))

    async def _remember(self, job_id: int, channel_id: int, message_id: int) -> None:
        # The card's ids go in with the job, so that a later restart edits the message members see.
        try:
            await self._services.engine.status_moved(job_id, channel_id, message_id)
        except Exception:
            log.exception("job %s: could not record the moved status message", job_id)


class _NoStatus:
    """A sink for a job with no channel to show it in (e.g. started from the command line)."""

    async def update(self, update: JobUpdate) -> None:
        """Nothing to show."""


def in_owners_language(hooks: JobHooks) -> JobHooks:
    """`hooks` that write in the language of the job's member, whichever task calls them.

    The engine calls them from the job's own task, and sometimes from another member's (a manager
    who cancels it); a status message's delayed edits start inside them and keep that language.
    """
    return JobHooks(sink=OwnersSink(hooks.sink), deliverer=OwnersDeliverer(hooks.deliverer))


class OwnersSink:
    """A job's progress, shown in the language of the member who started it (`JobRecord.locale`)."""

    def __init__(self, inner: ProgressSink) -> None:
        self.inner = inner

    async def update(self, update: JobUpdate) -> None:
        """Show the snapshot, in the owner's language."""
        with words.using(job_language(update.job)):
            await self.inner.update(update)


class OwnersDeliverer:
    """A job's result, handed over in the language of the member who started it."""

    def __init__(self, inner: Deliverer) -> None:
        self.inner = inner

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        """Deliver the result, in the owner's language."""
        with words.using(job_language(job)):
            return await self.inner.deliver(job, result, sandbox=sandbox, link=link)
