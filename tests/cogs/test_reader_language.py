"""Who reads which language: set once per interaction, once per job, and explicit where they differ.

Members with different locales acting at the same time on one bot each read their own language
(commands, buttons, message menus, selects and forms); a job's messages are its owner's, whoever's
task shows them; a reader named explicitly (a form or menu expiring with nobody acting) wins.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib
import pkgutil
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import discord
import pytest
import simcord

import bot.app
import cogs
from bot import words
from bot.clock import FakeClock
from bot.jobs.fixes import Fix, FixKind
from bot.jobs.models import Delivery, InputSource, JobHooks, JobRequest, LinkProvider
from bot.jobs.quote import Quote
from bot.services import Services
from bot.store import JobRecord, JobState
from cogs import texts
from cogs.buttons import IdButton
from cogs.lipsync._fixes import FixesView
from cogs.lipsync._picker import MENU_VIDEO, PICK_MODE, PICK_WINDOW
from cogs.lipsync._presenter import JobPresenter, in_owners_language
from cogs.locale import MemberModal, MemberView
from tests.cogs.conftest import Harness
from tests.cogs.lipsync.test_status import update

SPANISH, PORTUGUESE = "es-ES", "pt-BR"

Spoken = list[tuple[str, str]]


def shown(result: simcord.InteractionResult) -> discord.Message:
    """The message an interaction answered with."""
    assert result.response is not None
    return result.response.message


@pytest.fixture
def spoken(monkeypatch: pytest.MonkeyPatch) -> Spoken:
    """In order: each language an interaction's check set ("set") and each text written ("wrote")."""
    events: Spoken = []
    original_use = words.use

    def use(language: str) -> None:
        events.append(("set", language))
        original_use(language)

    monkeypatch.setattr(words, "use", use)
    return events


def writes(spoken: Spoken, monkeypatch: pytest.MonkeyPatch, module_name: str, name: str) -> None:
    """Record the reader's language each time `name` in the module writes a text.

    The module as the running bot loaded it: each bot loads its extensions' modules afresh.
    """
    module = sys.modules[module_name]
    original: Callable[..., str] = getattr(module, name)

    def wrote(*args: Any, **kwargs: Any) -> str:
        spoken.append(("wrote", words.current()))
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrote)


GO_ON = "test_go_on"  # the event that lets a paused interaction go on


@pytest.fixture
def pauses(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Callable[[], Awaitable[None]]:
    """Alice's interactions wait after their first check (her language set, nothing written yet);
    the returned function lets them go on. Meanwhile another member's interaction runs whole."""
    checks: list[tuple[type, str]] = [
        (bot.app.LipsyncTree, "interaction_check"),
        (IdButton, "interaction_check"),
        (MemberView, "interaction_check"),
        (MemberModal, "interaction_check"),
    ]
    for cls, name in checks:
        original: Callable[[Any, discord.Interaction], Awaitable[bool]] = getattr(cls, name)

        async def check(self: Any, interaction: discord.Interaction, /, _original: Any = original) -> bool:
            allowed: bool = await _original(self, interaction)
            if interaction.user.id == harness.alice.id:
                # Parked on `wait_for` (which simcord knows), the next action goes in; no time passes.
                await interaction.client.wait_for(GO_ON)
            return allowed

        monkeypatch.setattr(cls, name, check)

    async def resume() -> None:
        harness.bot.dispatch(GO_ON)
        await harness.env.settle()

    return resume


def overlapped(spoken: Spoken) -> None:
    """Alice's language was set, then Bob's interaction ran whole, then Alice's wrote: a language shared
    by the bot (not held per interaction) would have had her read Bob's."""
    assert spoken == [("set", "es"), ("set", "pt-BR"), ("wrote", "pt-BR"), ("wrote", "es")], spoken


# ---------------------------------------------------------------------------- per interaction


async def test_members_acting_at_once_read_their_own_languages(
    harness: Harness, spoken: Spoken, pauses: Callable[[], Awaitable[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two slash commands running at once on one bot: each member reads their own language."""
    harness.speaks(harness.alice, SPANISH)
    harness.speaks(harness.bob, PORTUGUESE)
    writes(spoken, monkeypatch, "cogs.lipsync._cog", "jobs_text")

    alices = await harness.alice.slash(harness.channel, "jobs")
    assert alices.response is None  # still running
    bobs = await harness.bob.slash(harness.channel, "jobs")
    await pauses()

    overlapped(spoken)
    assert shown(alices).content.startswith("Aún no has iniciado ningún trabajo"), shown(alices).content
    assert shown(bobs).content.startswith("Você ainda não iniciou nenhum trabalho"), shown(bobs).content


async def test_button_clicks_at_once_are_answered_in_each_members_language(
    harness: Harness, spoken: Spoken, pauses: Callable[[], Awaitable[None]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restart-proof button (the panel's Refresh), clicked by two members at once."""
    harness.speaks(harness.alice, SPANISH)
    harness.speaks(harness.bob, PORTUGUESE)
    bobs = await harness.bob.slash(harness.channel, "lipsync-status")
    alices = await harness.alice.slash(harness.channel, "lipsync-status")
    await pauses()
    before = shown(alices).content
    spoken.clear()
    writes(spoken, monkeypatch, "cogs.lipsync._views", "panel_text")

    await harness.alice.click(shown(alices), custom_id="lipsync:panel")
    await harness.bob.click(shown(bobs), custom_id="lipsync:panel")
    await pauses()

    overlapped(spoken)
    assert before.startswith("**Tu estado de lip-sync**"), before
    assert shown(alices).content.startswith("**Tu estado de lip-sync**"), shown(alices).content
    assert shown(bobs).content.startswith("**Seu status de lip-sync**"), shown(bobs).content


async def test_menus_selects_and_forms_follow_each_member(
    harness: Harness, voice_ogg: bytes, pauses: Callable[[], Awaitable[None]]
) -> None:
    """A message menu, a select and a button on its private picker, and the form it opens, each used by
    two members at once: every picker, form and refusal is in its member's language."""
    harness.speaks(harness.alice, SPANISH)
    harness.speaks(harness.bob, PORTUGUESE)
    clip = await harness.post(harness.onlooker, files=["face.mp4"])
    await harness.voice_message(harness.onlooker, voice_ogg)

    alices = await harness.alice.context_menu(harness.channel, MENU_VIDEO, clip)
    bobs = await harness.bob.context_menu(harness.channel, MENU_VIDEO, clip)
    await pauses()
    assert "Fragmento: desde el principio" in shown(alices).content, shown(alices).content
    assert "Trecho: do começo" in shown(bobs).content, shown(bobs).content

    await harness.alice.select(shown(alices), ["pro"], custom_id=PICK_MODE)
    await harness.bob.select(shown(bobs), ["pro"], custom_id=PICK_MODE)
    await pauses()
    assert "Modo: `pro` · Fragmento:" in shown(alices).content, shown(alices).content
    assert "Modo: `pro` · Trecho:" in shown(bobs).content, shown(bobs).content

    alices_form = await harness.alice.click(shown(alices), custom_id=PICK_WINDOW)
    bobs_form = await harness.bob.click(shown(bobs), custom_id=PICK_WINDOW)
    await pauses()
    assert alices_form.modal is not None and bobs_form.modal is not None
    assert alices_form.modal["title"] == texts.describe("window_title", lang="es")
    assert bobs_form.modal["title"] == texts.describe("window_title", lang="pt-BR")

    alices_no = await harness.alice.submit_modal(alices_form, {"window:start": "uno"})
    bobs_no = await harness.bob.submit_modal(bobs_form, {"window:start": "um"})
    await pauses()
    assert shown(alices_no).content == texts.describe("bad_number", {"value": "uno"}, lang="es")
    assert shown(bobs_no).content == texts.describe("bad_number", {"value": "um"}, lang="pt-BR")


def _cogs_classes() -> Iterator[type]:
    for module in pkgutil.walk_packages(cogs.__path__, "cogs."):
        for value in vars(importlib.import_module(module.name)).values():
            if isinstance(value, type) and value.__module__.startswith("cogs."):
                yield value


def test_every_view_form_and_button_speaks_the_members_language() -> None:
    """Each view, form and restart-proof button here sets the member's language before its callbacks
    (the command tree does for commands): a new one that doesn't would answer in English."""
    kinds = {discord.ui.View: MemberView, discord.ui.Modal: MemberModal, discord.ui.DynamicItem: IdButton}
    found = {kind: [c for c in _cogs_classes() if issubclass(c, kind)] for kind in kinds}
    assert all(found.values()), found  # each kind is used here, so the check below checks something
    for kind, base in kinds.items():
        for cls in found[kind]:
            assert issubclass(cls, base), f"{cls.__qualname__} is a {kind.__name__} but not a {base.__name__}"


# ---------------------------------------------------------------------------- per job


class _Interaction:
    """What the presenter and a status message use of the command that started a job."""

    def __init__(self) -> None:
        self.expires_at = discord.utils.utcnow() + dt.timedelta(minutes=15)
        self.channel_id, self.guild_id, self.user = 2, 1, SimpleNamespace(id=42)
        self.edits: list[str] = []

    async def edit_original_response(self, *, content: str, **_: Any) -> None:
        self.edits.append(content)


async def test_a_jobs_status_is_in_its_owners_language_whoever_runs_it() -> None:
    """The status message of a Portuguese member's job, updated from a Spanish member's interaction
    (and its delayed edit run later, from the clock's task), is in Portuguese."""
    clock = FakeClock()
    presenter = JobPresenter(cast(discord.Client, None), cast(Services, SimpleNamespace(clock=clock)))
    interaction = _Interaction()
    hooks = presenter.for_interaction(cast(discord.Interaction, interaction))

    async def a_spanish_members_interaction() -> None:
        words.use("es")
        await hooks.sink.update(update(JobState.RECEIVED, locale=PORTUGUESE, queue_position=2))
        await hooks.sink.update(update(JobState.FETCHING, locale=PORTUGUESE))  # within the interval: later
        assert words.current() == "es"  # the member's own answer is still theirs

    await asyncio.create_task(a_spanish_members_interaction())
    await clock.advance(5)
    presenter.close()

    assert len(interaction.edits) == 2, interaction.edits
    # Before its card, the job's progress is the member's private reply: every line in Portuguese.
    for edit in interaction.edits:
        assert edit.endswith(texts.describe("private_only_you", lang="pt-BR")), edit
    assert interaction.edits[0].startswith("⏳ Na fila: posição 2.")
    assert words.current() == "en"  # nothing leaked out of the job's hooks


class _Deliverer:
    """Records the reader's language at delivery."""

    def __init__(self) -> None:
        self.languages: list[str] = []

    async def deliver(self, job: JobRecord, result: Path | None, *, sandbox: bool, link: LinkProvider) -> Delivery:
        self.languages.append(words.current())
        return Delivery(kind="file", message_id=1)


async def test_a_result_is_handed_over_in_its_owners_language() -> None:
    """The result poster writes in the job's member's language, even inside another reader's."""
    deliverer = _Deliverer()
    hooks = in_owners_language(JobHooks(sink=SimpleNamespace(), deliverer=deliverer))
    finished = update(JobState.DELIVERING, locale=PORTUGUESE).job

    async def no_link() -> str:
        return ""

    with words.using("es"):
        await hooks.deliverer.deliver(finished, None, sandbox=False, link=no_link)
        assert words.current() == "es"
    assert deliverer.languages == ["pt-BR"]


# ---------------------------------------------------------------------------- explicit readers


def test_an_explicit_language_wins_over_the_readers() -> None:
    """`lang=` names a reader other than whoever is acting; without it, the context's reader is used."""
    with words.using("pt-BR"):
        assert texts.describe("panel_heading", lang="es") == "Tu estado de lip-sync"
        assert texts.describe("panel_heading") == "Seu status de lip-sync"
        assert texts.style_for("es").command("cancel") == "`/cancelar`"
    assert texts.describe("panel_heading") == "Your lip-sync status"


class _Answer:
    """The private answer a refusal's fixes are on."""

    content = "No credits left."

    def __init__(self) -> None:
        self.edits: list[dict[str, Any]] = []

    async def edit(self, **changes: Any) -> _Answer:
        self.edits.append(changes)
        return self


async def test_fixes_expire_in_the_language_of_the_member_they_were_for() -> None:
    """Nobody acts when the fixes expire: the refused member, not whoever's task runs it, reads it."""
    request = JobRequest(user_id=42, audio=InputSource(filename="voice.mp3", url="https://cdn.discordapp.com/a/v"))
    offered = [Fix(kind=FixKind.MODE, value="lite", quote=Quote(estimate=10, hold=12))]
    with words.using("pt-BR"):  # the job's hooks, for its owner
        view = FixesView(request, offered, another_part=False)
    answer = _Answer()
    view.message = cast(discord.WebhookMessage, answer)

    with words.using("es"):
        await view.on_timeout()

    [edit] = answer.edits
    assert edit["content"].endswith(texts.describe("fixes_expired", lang="pt-BR")), edit
    view.stop()


# ---------------------------------------------------------------------------- the context itself


async def test_using_restores_the_language_and_tasks_keep_theirs() -> None:
    """`using` resets its token even when the block fails; a task started inside keeps that language."""
    seen: list[str] = []

    async def later() -> None:
        await asyncio.sleep(0)
        seen.append(words.current())

    with pytest.raises(RuntimeError), words.using("es"):
        task = asyncio.create_task(later())
        raise RuntimeError("the block fails")
    assert words.current() == "en"
    await task
    assert seen == ["es"]
