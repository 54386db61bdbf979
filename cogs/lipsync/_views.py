"""A job's buttons (cancel, new link, again, delete, the panel's refresh), which keep working after a restart.

Each is an `IdButton` (`cogs.buttons`): discord.py rebuilds it from its custom id whenever it is
clicked, in whichever process is running then. Clicks reach the engine and the store through
`cogs.services_of(interaction.client)`.

Labels are in the language of whoever the message is for (a job's buttons: its member's); a
rebuilt button needs no label, only its id. `AgainButton` runs a finished job again from the
files it uploaded (`bot.jobs.rerun`), for its owner only.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

import discord

from bot.errors import InvalidInput, NotAllowed
from bot.jobs.offers import Offer, applicable_offers
from bot.jobs.rerun import Again, offers, rerun_request
from bot.store import JobRecord, JobState
from cogs import role_ids, services_of, texts
from cogs.buttons import IdButton
from cogs.errors import report_error
from cogs.lipsync._start import WindowModal, start_job
from cogs.lipsync._texts import RunningJob, canceled_text, fresh_link_text, panel_text, shows_number

log = logging.getLogger(__name__)


class CancelButton(IdButton, action="cancel", parts={"job": int}):
    """Cancel on a job's status message; only the member who started the job may use it."""

    def __init__(self, job_id: int, *, label: str = "Cancel") -> None:
        # The label is the job's language's; a click rebuilds the button from its id alone.
        super().__init__(job_id, label=label, style=discord.ButtonStyle.danger)
        self.job_id = job_id

    async def callback(self, interaction: discord.Interaction) -> None:
        """Cancel the job for its owner; anyone else gets a polite ephemeral no."""
        await cancel_job(interaction, self.job_id)


class NewLinkButton(IdButton, action="link", parts={"job": int}):
    """Under a result too large to post: fetches a newly signed download link (old ones expire)."""

    def __init__(self, job_id: int, *, label: str = "New link") -> None:
        super().__init__(job_id, label=label, style=discord.ButtonStyle.secondary)
        self.job_id = job_id

    async def callback(self, interaction: discord.Interaction) -> None:
        """Answer the job's owner (or a server manager), only them, with a fresh link."""
        try:
            engine = services_of(interaction.client).engine
            manages = interaction.guild_id if interaction.permissions.manage_guild else None
            # Checked before deferring, so a refusal is instant; only then is Magic Hour asked.
            job = await engine.allow_link(self.job_id, by_user_id=interaction.user.id, manager_of=manages)
            await interaction.response.defer(ephemeral=True, thinking=True)
            url = await engine.fresh_download_url(job)
            button = len(url) <= texts.MAX_BUTTON_URL
            await interaction.edit_original_response(
                content=fresh_link_text(self.job_id, button=button, url=url),
                view=download_view(url) if button else None,
            )
        except Exception as exc:
            await report_error(interaction, exc)


class RefreshPanelButton(IdButton, action="panel"):
    """Under the `/lipsync-status` panel: shows it again, as it is now."""

    def __init__(self, *, label: str = "Refresh") -> None:
        super().__init__(label=label, style=discord.ButtonStyle.secondary)

    async def callback(self, interaction: discord.Interaction) -> None:
        """Redraw the panel of whoever pressed it (only they can see it: it is ephemeral)."""
        try:
            content, view = await panel(interaction)
            await interaction.response.edit_message(content=content, view=view)
        except Exception as exc:
            await report_error(interaction, exc)


class AgainButton(IdButton, action="again", parts={"job": int, "how": Again}):
    """On a finished job's message: run it again (in pro, on another window, or a retry), for its owner only.

    The job's uploaded files are reused while Magic Hour keeps them (`bot.jobs.rerun`); after that,
    or for anyone but the owner, the click is answered privately and costs nothing.
    """

    def __init__(self, job_id: int, how: Again, *, label: str | None = None) -> None:
        style = discord.ButtonStyle.secondary if how is Again.WINDOW else discord.ButtonStyle.primary
        super().__init__(job_id, how.value, label=label or how.value, style=style)
        self.job_id = job_id
        self.how = how

    async def callback(self, interaction: discord.Interaction) -> None:
        """Start the new job (the same checks, estimate and status message as `/lipsync`), or say why not."""
        try:
            services = services_of(interaction.client)
            job = await services.engine.job(self.job_id)
            if self.how is Again.VIDEO:
                # Another video can't come through a button: say how to bring one, privately.
                if job.user_id != interaction.user.id:
                    raise NotAllowed("rerun_not_owner", owner=job.user_id, job=job.id)
                await interaction.response.send_message(another_video_text(job), ephemeral=True)
                return
            # Checked before anything else, so a refusal is instant and only the presser sees it.
            request = rerun_request(
                job, self.how, by_user_id=interaction.user.id, guild_id=interaction.guild_id, now=services.clock.now()
            )
            if self.how is Again.WINDOW:
                modal = WindowModal(
                    on_window=self._window_chosen,
                    start=job.start_seconds,
                    end=job.end_seconds,
                )
                await interaction.response.send_modal(modal)
                return
            await start_job(interaction, request)
        except Exception as exc:
            await report_error(interaction, exc)

    async def _window_chosen(self, interaction: discord.Interaction, start: float, end: float | None) -> None:
        # Checked again: the form may have stayed open while the files expired.
        services = services_of(interaction.client)
        job = await services.engine.job(self.job_id)
        request = rerun_request(
            job,
            Again.WINDOW,
            by_user_id=interaction.user.id,
            guild_id=interaction.guild_id,
            now=services.clock.now(),
            start=start,
            end=end,
        )
        await start_job(interaction, request)


class DeleteResultButton(IdButton, action="delete", parts={"job": int, "owner": int}):
    """Under a result: deletes that message, for the member whose job it is or a server manager.

    The owner is in the custom id, so the button keeps working after a restart, and after the
    member's data (the job's record) was deleted.
    """

    def __init__(self, job_id: int, owner_id: int, *, label: str = "Delete") -> None:
        super().__init__(job_id, owner_id, label=label, style=discord.ButtonStyle.secondary)
        self.job_id = job_id
        self.owner_id = owner_id

    async def callback(self, interaction: discord.Interaction) -> None:
        """Delete the result for its owner or a manager; anyone else gets a private no."""
        try:
            manager = interaction.guild_id is not None and (
                interaction.permissions.manage_messages or interaction.permissions.manage_guild
            )
            if interaction.user.id != self.owner_id and not manager:
                raise NotAllowed("delete_not_owner", owner=self.owner_id, job=self.job_id)
            if interaction.message is not None:
                await interaction.message.delete()
            done = texts.describe("result_deleted", {"job": self.job_id})
            await interaction.response.send_message(done, ephemeral=True)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        if interaction.message is not None:
            await _delete_ping_under(interaction, interaction.message)


# How far past a card its ping is looked for: it follows the card's end, within a few messages.
PING_SEARCH = 50


async def _delete_ping_under(interaction: discord.Interaction, card: discord.Message) -> None:
    """The bot's one-line reply that pinged the owner under `card` goes with it: it would point at nothing."""
    channel, me = interaction.channel, interaction.client.user
    if me is None or not isinstance(channel, discord.abc.Messageable):
        return
    try:
        async for message in channel.history(after=card, limit=PING_SEARCH):
            reference = message.reference
            if message.author.id == me.id and reference is not None and reference.message_id == card.id:
                await message.delete()
                return
    except discord.HTTPException as exc:  # history not readable here, or already gone
        log.info("could not remove the ping under deleted result %s: %s", card.id, exc)


def with_delete(view: discord.ui.View | None, job: JobRecord) -> discord.ui.View:
    """`view` (or a new one) with the Delete button a result carries, in the reader's language."""
    view = view if view is not None else discord.ui.View(timeout=None)
    label = texts.button_label("button_delete")
    view.add_item(DeleteResultButton(job.id, job.user_id, label=label))
    return view


_AGAIN_LABELS = {
    Again.PRO: "button_again_pro",
    Again.WINDOW: "button_again_window",
    Again.RETRY: "button_retry",
    Again.VIDEO: "button_again_video",
}


def another_video_text(job: JobRecord) -> str:
    """How to run a job again with another video (its voice kept), for its owner."""
    audio = job.audio_filename or texts.describe("audio_fallback")
    menu = texts.bold(texts.command_name("Lip-sync: use this video"))
    return texts.describe("again_other_video", {"audio": audio, "menu": menu})


def status_view(job_id: int) -> discord.ui.View:
    """The buttons under a running job's status message."""
    view = discord.ui.View(timeout=None)
    view.add_item(CancelButton(job_id, label=texts.button_label("button_cancel")))
    return view


async def final_view(client: discord.Client, job: JobRecord, now: dt.datetime) -> discord.ui.View | None:
    """The buttons under a finished job's message: run it again, while its files are kept.

    Only the ways that apply to its member now (`bot.jobs.offers`): "again in pro" with its price,
    and not at all where pro isn't allowed or the member can't pay for it; after a fault in the
    member's own input, another video or another part rather than Retry (`bot.jobs.rerun.offers`).
    """
    possible = offers(job, now)
    if Again.PRO not in possible:
        ways = tuple(Offer(how) for how in possible)  # nothing to price: no need to read the member's rules
    else:
        try:
            services = services_of(client)
            roles = await _owner_roles(client, job)
            admitted = await services.engine.admission.read(job.guild_id, job.user_id, roles)
            ways = applicable_offers(services.engine.config, job, admitted, now)
        except Exception:
            # The job's end is shown whatever happens; only a priced offer needs these reads.
            log.exception("job %s: could not price its re-runs; offering those without a price", job.id)
            ways = tuple(Offer(how) for how in possible if how is not Again.PRO)
    if not ways:
        return None
    view = discord.ui.View(timeout=None)
    for offer in ways:
        if offer.credits is not None:
            label = texts.button_label("button_again_pro_priced", credits=offer.credits)
        else:
            label = texts.button_label(_AGAIN_LABELS[offer.how])
        view.add_item(AgainButton(job.id, offer.how, label=label))
    return view


async def _owner_roles(client: discord.Client, job: JobRecord) -> tuple[int, ...]:
    """The job's member's roles (their limits depend on them): from the cache, else asked of Discord."""
    guild = client.get_guild(job.guild_id) if job.guild_id is not None else None
    if guild is None:
        return ()
    member = guild.get_member(job.user_id)
    if member is None:
        try:
            member = await guild.fetch_member(job.user_id)
        except discord.HTTPException:
            return ()  # gone from the server, or Discord didn't answer: the server's default applies
    return role_ids(member)


async def result_view(
    client: discord.Client, job: JobRecord, now: dt.datetime, *, linked: bool, url: str | None = None
) -> discord.ui.View:
    """The buttons under a result: Download/New link when not attached, the ways to run it again, Delete."""
    done = job.model_copy(update={"state": JobState.DONE})  # delivered now: offered as the done job it becomes
    view = link_view(job.id, url) if linked else None
    again = await final_view(client, done, now)
    if again is not None:
        view = view or discord.ui.View(timeout=None)
        for item in again.children:
            view.add_item(item)
    return with_delete(view, job)


def link_view(job_id: int, url: str | None = None) -> discord.ui.View:
    """The buttons under a result that was too large to attach: Download (when given a link) and New link."""
    view = discord.ui.View(timeout=None) if url is None else download_view(url)
    view.add_item(NewLinkButton(job_id, label=texts.button_label("button_new_link")))
    return view


def download_view(url: str) -> discord.ui.View:
    """A Download button: the signed link stays on the button, never in the message's text."""
    view = discord.ui.View(timeout=None)
    label = texts.button_label("button_download")
    view.add_item(discord.ui.Button(label=label, style=discord.ButtonStyle.link, url=url))
    return view


# A message holds at most 25 buttons: the panel's Cancel buttons stop short of that.
MAX_PANEL_BUTTONS = 20


async def panel(interaction: discord.Interaction) -> tuple[str, discord.ui.View]:
    """`/lipsync-status` for the member behind `interaction`: their credits, running jobs and the queue.

    Each running job gets its own Cancel button (the same restart-proof button as on its status
    message), and a Refresh button redraws the panel.
    """
    services = services_of(interaction.client)
    guild_id, user = interaction.guild_id, interaction.user
    balance = await services.store.usage.balance(guild_id, user.id, role_ids(user))
    recent = await services.store.jobs.recent_for_member(guild_id, user.id, MAX_PANEL_BUTTONS)
    now = services.clock.now()
    running = [
        RunningJob(
            job=job,
            position=services.engine.queue_position(job.id),
            elapsed=max(0.0, (now - job.created_at).total_seconds()),
        )
        for job in recent
        if not job.state.terminal
    ]
    window = services.settings.quota_window
    text = panel_text(balance, window, running, services.engine.queue_snapshot())
    view = discord.ui.View(timeout=None)
    for item in running:
        if item.job.state not in (JobState.DOWNLOADING, JobState.DELIVERING):  # too late to cancel those
            if shows_number(item.job):
                label = texts.button_label("button_cancel_job", job=item.job.id)
            else:  # not admitted yet: its member never saw its number
                label = texts.button_label("button_cancel")
            view.add_item(CancelButton(item.job.id, label=label))
    view.add_item(RefreshPanelButton(label=texts.button_label("button_refresh")))
    return text, view


DYNAMIC_ITEMS: tuple[type[discord.ui.DynamicItem[Any]], ...] = (
    CancelButton,
    NewLinkButton,
    RefreshPanelButton,
    AgainButton,
    DeleteResultButton,
)


async def cancel_job(interaction: discord.Interaction, job_id: int) -> None:
    """Cancel `job_id` for the member behind `interaction` (the button and `/cancel` share this)."""
    try:
        engine = services_of(interaction.client).engine
        job = await engine.job(job_id)
        if job.guild_id != interaction.guild_id:
            raise InvalidInput("no_such_job", job=job_id)
        if job.user_id != interaction.user.id:
            # Checked before deferring, so the refusal is instant and only the presser sees it.
            raise NotAllowed("not_owner_of", owner=job.user_id, job=job_id)
        await interaction.response.defer(ephemeral=True, thinking=True)
        canceled = await engine.cancel(job_id, by_user_id=interaction.user.id)
        await interaction.edit_original_response(content=canceled_text(canceled))
    except Exception as exc:
        await report_error(interaction, exc)
