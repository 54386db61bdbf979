"""One-click fixes under a refusal: each button starts the job again with one change that fits.

A job refused for credits offers a lower frame-rate cap, a shorter part or a cheaper mode that
would fit what the member has; a job whose part would have been cut offers that part, or another.
The engine priced each (`bot.jobs.fixes`, stored with the refusal); a click starts the changed
request through `start_job`, with every check and limit as any job.

The member's files are Discord attachment links, which can't be carried in a custom id, so these
buttons live in memory on the private answer (`FixesView`): they stop working when the bot
restarts, and after `FIXES_TIMEOUT` the answer says they have expired.
"""

from __future__ import annotations

import dataclasses
import logging

import discord

from bot import words
from bot.jobs.fixes import Fix, FixKind, fixes_in
from bot.jobs.models import JobRequest
from bot.store import JobRecord
from cogs import texts
from cogs.errors import report_error
from cogs.lipsync._start import WindowModal, start_job
from cogs.locale import MemberView

log = logging.getLogger(__name__)

# Ten minutes: inside the private answer's interaction token (15 minutes), so the expiry can be said.
FIXES_TIMEOUT = 600.0
# Refusals that announce a part that would have been cut: they also offer to choose another part.
CUT_CODES = frozenset({"voice_past_video", "part_past_video", "part_past_voice"})
_LABELS = {FixKind.MAX_FPS: "button_fix_max_fps", FixKind.END: "button_fix_end", FixKind.MODE: "button_fix_mode"}
_CHANGES = {FixKind.MAX_FPS: "fix_change_max_fps", FixKind.END: "fix_change_end", FixKind.MODE: "fix_change_mode"}


def _change_data(fix: Fix, request: JobRequest) -> dict[str, object]:
    if fix.kind is FixKind.MAX_FPS:
        return {"fps": fix.value}
    if fix.kind is FixKind.END:
        return {"start": request.start, "end": fix.value}
    return {"mode": fix.value}


def fix_line(fix: Fix, request: JobRequest) -> str:
    """One fix as a line: the change, its likely cost and its hold (the figures on its button)."""
    change = texts.describe(_CHANGES[fix.kind], _change_data(fix, request))
    return "• " + texts.describe("fix_line", {"change": change, **fix.quote.data()})


class _FixButton(discord.ui.Button["FixesView"]):
    """One fix: starts the changed job (or, with no fix, asks for another part first)."""

    def __init__(self, label: str, fix: Fix | None) -> None:
        style = discord.ButtonStyle.primary if fix is not None else discord.ButtonStyle.secondary
        super().__init__(label=label, style=style)
        self.fix = fix

    async def callback(self, interaction: discord.Interaction) -> None:
        """Start the job with this fix, or open the form for another part."""
        assert self.view is not None
        if self.fix is None:
            await self.view.ask_window(interaction)
        else:
            await self.view.start(interaction, self.fix.apply(self.view.request))


class FixesView(MemberView):
    """The fixes under one refused job's private answer, for its member only."""

    def __init__(self, request: JobRequest, offered: list[Fix], *, another_part: bool) -> None:
        super().__init__(timeout=FIXES_TIMEOUT)
        self.request = request
        self._language = words.current()  # for its expiry, which no member triggers
        # The private answer the buttons are on.
        self.message: discord.WebhookMessage | discord.InteractionMessage | None = None
        for fix in offered:
            data = {**_change_data(fix, request), **fix.quote.data()}
            self.add_item(_FixButton(texts.button_label(_LABELS[fix.kind], **data), fix))
        if another_part:
            self.add_item(_FixButton(texts.button_label("button_fix_window"), None))

    async def interaction_check(self, interaction: discord.Interaction) -> bool:
        """Only the member whose job was refused may use its fixes."""
        await super().interaction_check(interaction)
        if interaction.user.id == self.request.user_id:
            return True
        await interaction.response.send_message(texts.describe("fixes_not_yours"), ephemeral=True)
        return False

    async def ask_window(self, interaction: discord.Interaction) -> None:
        """Open the form for another part; the job starts with what is chosen there."""

        async def chosen(form: discord.Interaction, start: float, end: float | None) -> None:
            await self.start(form, dataclasses.replace(self.request, start=start, end=end))

        modal = WindowModal(on_window=chosen, start=self.request.start, end=self.request.end)
        await interaction.response.send_modal(modal)

    async def start(self, interaction: discord.Interaction, request: JobRequest) -> None:
        """Start `request` as a new job (every check and limit applies); the buttons go once it starts."""
        try:
            started = await start_job(interaction, request)
        except Exception as exc:
            await report_error(interaction, exc)
            return
        if started is not None:
            self.stop()  # one job from one refusal
            await self._edit(None)

    async def on_timeout(self) -> None:
        """Say on the answer that its buttons have expired, and take them off."""
        if self.message is None:
            return
        with words.using(self._language):  # nobody acted: the refused member reads it
            expired = texts.describe("fixes_expired")
        await self._edit(f"{self.message.content}\n{expired}")

    async def _edit(self, content: str | None) -> None:
        """Take the buttons off the answer (and change its text, when given)."""
        if self.message is None:
            return
        try:
            if content is None:
                self.message = await self.message.edit(view=None)
            else:
                self.message = await self.message.edit(content=content, view=None)
        except discord.HTTPException as exc:
            log.info("could not update the fixes under a refusal: %s", exc)


def fixes_offer(request: JobRequest, job: JobRecord) -> tuple[str, FixesView] | None:
    """The lines and buttons to add under `job`'s refusal, when it offers fixes; None when it offers none."""
    offered = fixes_in(job.error_data or {})
    if not offered:
        return None
    lines = [texts.describe("fixes_offer"), *(fix_line(fix, request) for fix in offered)]
    view = FixesView(request, offered, another_part=job.error_code in CUT_CODES)
    return "\n".join(lines), view
