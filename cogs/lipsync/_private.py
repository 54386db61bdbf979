"""A job's private side in Discord: its member's reply until the job is admitted, and the tokens.

Until the job's files are checked and its credits reserved, its progress is shown only in the
private reply to the member's command (`PrivateReply`), without a job number; a job that ends
before that is told there, with the fixes a refusal offers, or by DM once the interaction's token
is gone. Once the public card is up, the reply points at it. `cogs.lipsync._status` owns the card.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

import discord

from bot import words
from bot.jobs.models import JobUpdate
from bot.store import JobRecord
from cogs import texts
from cogs.lipsync._fixes import FixesView
from cogs.lipsync._pacing import EditPacer
from cogs.lipsync._texts import card_posted_text, ended_privately_text, job_language, private_progress_text
from cogs.lipsync._views import status_view

log = logging.getLogger(__name__)

# Stop using an interaction token this long before Discord's 15 minutes run out.
TOKEN_MARGIN = dt.timedelta(seconds=60)

NO_MENTIONS = discord.AllowedMentions.none()

Offer = Callable[[JobRecord], tuple[str, FixesView] | None]
"""What a refusal offers its member, told privately with it: lines and their buttons (`_fixes.fixes_offer`)."""


def only_mentioning(user_id: int) -> discord.AllowedMentions:
    """Mentions allowed in a message that pings a job's owner: them, no one else."""
    return discord.AllowedMentions(everyone=False, roles=False, users=[discord.Object(user_id)], replied_user=False)


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


class PrivateReply:
    """The member's private reply to their command (nothing without an interaction), in their language."""

    def __init__(
        self,
        client: discord.Client,
        interaction: discord.Interaction | None,
        *,
        pacer: EditPacer | None = None,
        offer: Offer | None = None,
    ) -> None:
        self._client = client
        self._interaction = interaction
        self._pacer = pacer
        self._offer = offer
        self.shown: str | None = None  # what the reply says now

    def _live(self) -> discord.Interaction | None:
        return self._interaction if token_alive(self._interaction) else None

    async def progress(self, update: JobUpdate) -> bool:
        """Show a not-yet-admitted job's progress, with its Cancel button; whether the reply was edited."""
        interaction = self._live()
        if interaction is None:
            return False
        with words.using(job_language(update.job)):  # private: the member's language, whoever's card is shown
            text = private_progress_text(update)
            view = status_view(update.job.id)
        if text == self.shown:
            return False
        if self._pacer is not None:
            await self._pacer.turn()
        try:
            await interaction.edit_original_response(content=text, view=view, allowed_mentions=NO_MENTIONS)
        except discord.HTTPException as exc:
            log.info("job %s: could not update the private reply: %s", update.job.id, exc)
            return False
        self.shown = text
        return True

    async def ended(self, job: JobRecord) -> None:
        """Tell the member alone how their job ended before it was admitted: in the reply, else by DM."""
        with words.using(job_language(job)):
            text = ended_privately_text(job)
        if not (await self._tell_in_reply(job, text) or await self._tell_by_dm(job, text)):
            log.warning("job %s: ended before its card, and the member could not be told", job.id)

    async def _tell_in_reply(self, job: JobRecord, text: str) -> bool:
        """The reply says how the job ended; a refusal for credits offers its fixes there."""
        interaction = self._live()
        if interaction is None:
            return False
        try:
            offered = self._offer(job) if self._offer is not None else None
            if offered is None:
                await interaction.edit_original_response(content=text, view=None, allowed_mentions=NO_MENTIONS)
            else:
                lines, view = offered
                view.message = await interaction.edit_original_response(
                    content=f"{text}\n{lines}"[: texts.MAX_CONTENT], view=view, allowed_mentions=NO_MENTIONS
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

    async def before_card(self, lang: str) -> None:
        """A reply still "thinking" would turn the next followup (the card) into itself: say something first."""
        interaction = self._live()
        if interaction is not None and self.shown is None:
            with words.using(lang):
                text = card_posted_text(None, None)
            await interaction.edit_original_response(content=text, view=None)

    async def point_at(self, job_id: int, link: str, lang: str) -> None:
        """Point the reply at the job's public card."""
        interaction = self._live()
        if interaction is None:
            return
        with words.using(lang):
            self.shown = card_posted_text(job_id, link)
        try:
            await interaction.edit_original_response(content=self.shown, view=None)
        except discord.HTTPException as exc:
            log.info("job %s: could not point the private reply at the card: %s", job_id, exc)
