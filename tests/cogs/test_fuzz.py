"""`/lipsync` driven with generated requests (hypothesis), through simcord, the engine and the sandbox.

Each example is one `/lipsync` by Alice with generated options (`tests/cogs/fuzzing.py` says what
is generated and what each case must do). For every example:

- the bot answers: an ephemeral refusal at once, or a deferred reply whose status message ends in
  a final state (and, for a job that rendered, a message with the result);
- no message the bot sent or edited may ping anyone but Alice: the `allowed_mentions` it sent
  allow no one else (no roles, no @everyone), and simcord, which resolves mentions the way Discord
  does, recorded no ping of anyone else, whatever the job's name or file names contain;
- nothing reaches Magic Hour (the sandbox counts every request) unless the request was valid, and
  a valid YouTube request reaches it as `https://www.youtube.com/watch?v=<id>` only;
- a refused request, or a job that fails before Magic Hour, moves no credits; a finished one moves
  exactly what it was charged; the store's invariants hold;
- nothing unexpected happens: no log record at ERROR or above from anywhere, no WARNING from the
  Discord layer (which is how it reports a message it could not send), no error captured by
  simcord.

One harness serves every example (hypothesis runs them inside one test), so each example measures
what it changed and ends its job before the next one starts.

Examples: `FUZZ_EXAMPLES` of them; by default 150 with `CI` set (derandomized: the same examples on
every run, about 45 s on two busy cores), else 300 from a random seed, with hypothesis's example
database replaying past failures first (about 1.5 min). `FUZZ_EXAMPLES=2000` makes a long local
run (about 10 min).
`--hypothesis-show-statistics` shows how the examples ended (refused, failed, done; with which code).
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import discord
import pytest
import simcord
from hypothesis import HealthCheck, event, given, note, settings
from hypothesis import strategies as st

import cogs.errors
from bot import words
from bot.errors import LipsyncError
from bot.jobs.models import JobUpdate
from bot.store import JobRecord, JobState
from cogs import texts
from cogs.lipsync._status import StatusMessage
from cogs.lipsync._texts import is_refusal, not_started_text
from tests.cogs.conftest import Harness
from tests.cogs.fuzzing import MADE_BYTES, MEDIA_FILES, Case, Targets, Upload, cases

IN_CI = bool(os.environ.get("CI"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150" if IN_CI else "300"))

_FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    # One harness for all examples, on purpose: each example resets what it changed.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
FUZZ = settings(_FUZZ, database=None) if IN_CI else _FUZZ


# --------------------------------------------------------------------------- forged uploads


class Uploads:
    """Makes the attachments of the next `/lipsync` claim what the case says, as Discord would send them.

    simcord guesses a content type from the file name and puts the raw name in the attachment's
    URL. Discord sends what the uploader's client claimed, and a URL that is always a valid one
    (it cleans the name up). So each attachment of a `lipsync` interaction gets the case's content
    type (or none), a URL on the CDN bridge with a cleaned-up name (or the case's forged URL),
    and keeps its raw `filename`. It also records every error the error handler turns into a reply.
    """

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.next: dict[str, Upload] = {}
        self.errors: list[BaseException] = []

    def rewrite(self, data: Any) -> Any:
        """The interaction payload with the planned attachments (unchanged for other interactions)."""
        command = data.get("data") or {}
        if not self.next or command.get("name") != "lipsync":
            return data
        data = copy.deepcopy(data)
        command = data["data"]
        attachments = command.get("resolved", {}).get("attachments", {})
        for option in command.get("options", []):
            upload = self.next.get(option["name"])
            if upload is not None:
                self._claim(attachments[str(option["value"])], upload, int(data["channel_id"]))
        return data

    def _claim(self, attachment: dict[str, Any], upload: Upload, channel_id: int) -> None:
        cdn = self.harness.env.backend.cdn
        blob = cdn.get(attachment["url"])
        assert blob is not None
        clean = re.sub(r"[^A-Za-z0-9_-]", "_", upload.filename)[:40] or "file"
        url = cdn.store_attachment(int(attachment["id"]), channel_id, clean, blob, None)["url"]
        if upload.url_lie is not None:
            real = urlsplit(url)
            url = upload.url_lie.format(host=real.netloc, port=real.port, path=real.path)
        attachment["url"] = attachment["proxy_url"] = url
        if upload.content_type is None:
            attachment.pop("content_type", None)
        else:
            attachment["content_type"] = upload.content_type


@pytest.fixture
def forged(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Uploads:
    """Interactions carry the planned attachments; the error handler's errors are recorded."""
    uploads = Uploads(harness)
    original_from_data = discord.Interaction._from_data
    original_reply_for = cogs.errors.reply_for

    def from_data(self: discord.Interaction, data: Any) -> None:
        original_from_data(self, uploads.rewrite(data))

    def reply_for(error: BaseException) -> str:
        uploads.errors.append(cogs.errors.unwrap(error))
        return original_reply_for(error)

    monkeypatch.setattr(discord.Interaction, "_from_data", from_data)
    monkeypatch.setattr(cogs.errors, "reply_for", reply_for)
    return uploads


# --------------------------------------------------------------------------- observing one example


class Progress:
    """Every state each job's status message was given, so an example can wait for one."""

    def __init__(self) -> None:
        self.states: dict[int, list[JobState]] = {}
        self._changed = asyncio.Condition()

    async def saw(self, update: JobUpdate) -> None:
        async with self._changed:
            self.states.setdefault(update.job.id, []).append(update.job.state)
            self._changed.notify_all()

    async def first_of(self, job_id: int, states: frozenset[JobState]) -> JobState:
        """The first of `states` the job reached (fails after 30 s rather than hang)."""

        def reached() -> list[JobState]:
            return [state for state in self.states.get(job_id, []) if state in states]

        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(reached)
        return reached()[0]


@pytest.fixture
def progress(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> Progress:
    """Spy on `StatusMessage.update` (on top of the harness's own spy; both still run).

    On the class the running bot uses: each bot imports its extensions afresh.
    """
    seen = Progress()
    live: type[StatusMessage] = sys.modules["cogs.lipsync._status"].StatusMessage
    shown = live.update

    async def update(self: StatusMessage, update: JobUpdate) -> None:
        await shown(self, update)
        await seen.saw(update)

    monkeypatch.setattr(live, "update", update)
    return seen


class Records(logging.Handler):
    """Every log record at WARNING or above while an example runs."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def unexpected(self, forbidden: bool = False) -> list[str]:
        """ERROR and above from anywhere; WARNING from the Discord layer (a message it couldn't send).

        `forbidden`: the scene itself refuses the bot's posts and edits in the channel, so the
        Discord layer saying it couldn't update the card there is expected.
        """
        return [
            f"{r.name} {r.levelname}: {r.getMessage()}"
            for r in self.records
            if (r.levelno >= logging.ERROR or r.name.startswith("cogs"))
            and not (forbidden and r.levelno < logging.ERROR and "Missing Permissions" in r.getMessage())
        ]


@contextlib.contextmanager
def recording() -> Iterator[Records]:
    handler = Records()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield handler
    finally:
        root.removeHandler(handler)


@dataclass(frozen=True)
class Snapshot:
    """What an example may change: the member's credits, the ledger, her jobs, the CDN's reads."""

    used: int
    reserved: int
    ledger_rows: int
    last_job: int | None
    cdn_reads: int
    projects: frozenset[str]

    @classmethod
    async def take(cls, harness: Harness) -> Snapshot:
        balance = await harness.store.quota.limits(harness.guild.id, harness.alice.id)
        jobs = await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id, 1)
        return cls(
            used=balance.used,
            reserved=balance.reserved,
            ledger_rows=await harness.ledger_rows(),
            last_job=jobs[0].id if jobs else None,
            cdn_reads=harness.cdn.requests,
            projects=frozenset(harness.sandbox.projects),
        )


def mentions_problems(harness: Harness) -> list[str]:
    """Every message the bot has sent (any channel, DMs and ephemeral replies too) that could ping anyone else."""
    owner = harness.alice.id
    bot_id = harness.bot.user.id if harness.bot.user is not None else None
    problems = []
    for messages in harness.env.backend.messages.values():
        for message in messages.values():
            if message.author_id != bot_id:
                continue
            policy = message.allowed_mentions
            allowed = policy.users is not None and policy.users <= {owner}
            if policy.everyone or policy.roles != frozenset() or not allowed:
                problems.append(f"message {message.id} allows {policy}: {message.content!r}")
            if set(message.ping_user_ids) - {owner} or message.ping_role_ids or message.mention_everyone:
                problems.append(
                    f"message {message.id} pings users {message.ping_user_ids}, roles {message.ping_role_ids}, "
                    f"everyone {message.mention_everyone}: {message.content!r}"
                )
    return problems


# --------------------------------------------------------------------------- one example


class Media:
    """The bytes behind each kind of generated content."""

    def __init__(self, harness: Harness) -> None:
        self.blobs = {kind: (harness.media / name).read_bytes() for kind, name in MEDIA_FILES.items()}
        self.blobs.update(MADE_BYTES)

    def attachment(self, upload: Upload) -> tuple[str, bytes]:
        return upload.filename, self.blobs[upload.content]


async def end_leftovers(harness: Harness) -> None:
    """Cancel any job an example left running, so the next one isn't refused for it."""
    for job in await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id, 5):
        if not job.state.terminal:
            with contextlib.suppress(LipsyncError):
                await harness.engine.cancel(job.id, by_user_id=harness.alice.id)
            with contextlib.suppress(Exception):
                await harness.finish(job.id)


# Sandbox seconds a render takes when its result must outlive the interaction's token.
LONG_RENDER = 120.0
# A job either reaches Magic Hour's rendering or ends before it.
RENDERING_OR_ENDED = frozenset({JobState.RENDERING, *(state for state in JobState if state.terminal)})


async def run_case(harness: Harness, forged: Uploads, progress: Progress, media: Media, case: Case) -> None:
    """Run one generated request and check everything it must and mustn't do."""
    expect = case.expect()
    note(f"expected: {expect}")
    if case.link is not None:
        event("link spoiled", ", ".join(sorted(case.link.spoiled)) or "none")
    harness.sandbox.counters.reset()
    harness.sandbox.config.render_seconds = 0.0 if case.delivery == "followup" else LONG_RENDER
    before = await Snapshot.take(harness)
    errors_before = harness.env.error_cursor
    forged.errors.clear()
    forged.next = {u.slot: u for u in (case.video, case.audio) if u is not None}
    options = case.options()
    video = media.attachment(case.video) if case.video is not None else None
    try:
        with recording() as logs:
            result = await harness.lipsync(video=video, audio=media.attachment(case.audio), **options)
            final: JobRecord | None = None
            jobs = await harness.store.jobs.recent_for_member(harness.guild.id, harness.alice.id, 1)
            if jobs and jobs[0].id != before.last_job:
                job_id = jobs[0].id
                outlives = case.delivery != "followup"
                if outlives and await progress.first_of(job_id, RENDERING_OR_ENDED) is JobState.RENDERING:
                    await outlive_the_token(harness, case)
                final = await harness.finish(job_id)
        check_answer(harness, forged, case, result, final)
        await check_effects(harness, case, before, final)
        assert logs.unexpected(forbidden=case.delivery == "dm") == [], "unexpected log records"
        assert harness.env.errors_since(errors_before) == (), "the bot raised errors"
        assert mentions_problems(harness) == [], "a message may ping someone other than the member"
        assert await harness.store.check_invariants() == []
    finally:
        forged.next = {}
        harness.env.backend.faults.clear()  # a refusal to post that no delivery used up
        await end_leftovers(harness)


async def outlive_the_token(harness: Harness, case: Case) -> None:
    """Let Discord's 15 minutes pass while Magic Hour renders, then finish the render."""
    await harness.env.advance_time(16 * 60)
    if case.delivery == "dm":  # the bot may neither post in the channel nor edit its card there any more
        for method, path in (("POST", ""), ("PATCH", "/*")):
            harness.env.inject_error(
                method,
                f"/channels/{harness.channel.id}/messages{path}",
                status=403,
                code=50013,
                message="Missing Permissions",
                times=None,
            )
    await harness.sandbox_clock.advance(LONG_RENDER)


def pinged_under(harness: Harness, card_id: int | None) -> list[int]:
    """Who the one reply under a job's card pinged (the card itself is edited, which notifies no one)."""
    [ping] = [m for m in harness.public() if m.reference is not None and m.reference.message_id == card_id]
    return list(bot_message(harness, ping.id).ping_user_ids)


def bot_message(harness: Harness, message_id: int | None) -> Any:
    """The message with this id, in whatever channel (DMs included) it is."""
    found = [m for messages in harness.env.backend.messages.values() for m in messages.values() if m.id == message_id]
    assert len(found) == 1, f"no message {message_id}"
    return found[0]


def check_answer(
    harness: Harness, forged: Uploads, case: Case, result: simcord.InteractionResult, final: JobRecord | None
) -> None:
    """The member got an answer, and it is one the case allows."""
    expect = case.expect()
    assert result.acknowledged, "the bot never answered"
    response = result.response
    if final is not None and is_refusal(final):
        # Refused after fetching, for the member's own reasons: told to them alone, never public.
        note(f"refused after fetching: {final.error_code}: {final.error_data}")
        event("refused privately", final.error_code or "")
        assert not expect.must_refuse, f"should have been refused at once: {expect.refuse_codes}"
        assert final.error_code in expect.fail_codes, f"failed with {final.error_code}, expected {expect}"
        assert words.has(final.error_code or ""), f"no words for {final.error_code}"
        # The refusal, then the fixes it offers (a part that fits, a lower cap…), if any.
        assert response is not None and result.ephemeral
        assert (response.content + "\n").startswith(not_started_text(final) + "\n")
        assert result.followups == [] and final.status_message_id is None
        return
    assert response is not None and response.content.strip(), "an empty answer"
    if final is None:
        assert result.ephemeral and not result.deferred, "a refusal must come at once, only to the member"
        [error] = forged.errors
        assert isinstance(error, LipsyncError), f"refused with {error!r}"
        note(f"refused: {error}")
        event("refused at once", error.code)
        assert error.code in expect.refuse_codes, f"refused with {error.code}, expected one of {expect}"
        assert words.has(error.code), f"no words for {error.code}: the member reads a generic message"
        return
    assert result.ephemeral and forged.errors == []  # private until admitted, then one public message
    note(f"job ended {final.state.value} ({final.error_code}): {final.error_data}")
    event(f"job {final.state.value}", final.error_code or ("youtube" if case.link is not None else "file"))
    assert not expect.must_refuse, f"should have been refused at once: {expect.refuse_codes}"
    assert response.content.startswith(f"▶️ Your job #{final.id} has started: "), response.content
    shown = bot_message(harness, final.status_message_id)
    status = shown.content
    if final.state is JobState.DONE:
        assert not expect.must_fail, f"should have failed before Magic Hour: {expect.fail_codes}"
        posted = bot_message(harness, final.delivery_message_id)
        event("delivered", f"{case.delivery}: {final.delivery_kind}")
        if case.delivery == "dm":
            assert final.delivery_kind == "dm" and posted.content.startswith(f"Your lip-sync job #{final.id}")
            # The scene forbids the bot's edits in the channel too: the card stays as it last was.
            assert status.startswith(f"**Lip-sync job #{final.id}**") and "Failed" not in status, status
        else:
            assert shown.id == posted.id, "the result is on the card"
            assert posted.content.startswith(f"<@{harness.alice.id}>, your lip-sync job #{final.id}")
            assert pinged_under(harness, shown.id) == [harness.alice.id], "the result must ping its owner"
        # Through the interaction: the card, posted while the token lived (the result edited onto it
        # through the token or, after it, the bot's own).
        assert [m.id for m in result.followups] == [shown.id]
    else:
        assert final.state is JobState.FAILED, final.state
        assert status.startswith(f"**Lip-sync job #{final.id}**"), status
        assert "❌ Failed: " in status
        assert pinged_under(harness, shown.id) == [harness.alice.id], "a failure must ping its owner"
        assert final.error_code in expect.fail_codes, f"failed with {final.error_code}, expected {expect}"
        assert words.has(final.error_code), f"no words for {final.error_code}: the member reads a generic message"
        assert [m.id for m in result.followups] in ([], [shown.id])


async def check_effects(harness: Harness, case: Case, before: Snapshot, final: JobRecord | None) -> None:
    """Magic Hour saw the request only if it was valid, and only in canonical form; credits moved only for it."""
    after = await Snapshot.take(harness)
    counters = harness.sandbox.counters
    assert after.reserved == before.reserved
    if final is None or final.state is not JobState.DONE:
        reached = (dict(counters.requests), counters.jobs_created)
        assert reached == ({}, 0), "a request that wasn't valid reached Magic Hour"
        assert after.used == before.used
    else:
        assert counters.requests["create"] == counters.jobs_created == 1
        [project_id] = after.projects - before.projects
        project = harness.sandbox.projects[project_id]
        if case.link is not None:
            assert project.video_source == "youtube" and project.youtube_url == case.link.canonical
        else:
            assert project.video_source == "file" and project.youtube_url is None
        assert after.used - before.used == final.charged_credits
    if final is None:
        assert after.cdn_reads == before.cdn_reads, "a refused request's files were downloaded"
        assert after.ledger_rows == before.ledger_rows and after.last_job == before.last_job


# --------------------------------------------------------------------------- the test


@pytest.fixture
def targets(harness: Harness) -> Targets:
    """Who a generated text may try to ping: Bob, the manager, every role (one anyone may mention)."""
    harness.guild.create_role("Pingable", mentionable=True)
    roles = [role for role in harness.env.backend.guilds[harness.guild.id].roles if role != harness.guild.id]
    return Targets(
        owner=harness.alice.id,
        others=(harness.bob.id, harness.manager.id),
        roles=tuple(roles),
        guild=harness.guild.id,
        channel=harness.channel.id,
    )


@pytest.fixture
def media(harness: Harness) -> Media:
    return Media(harness)


@pytest.mark.settings(default_member_credits=10**9)
@pytest.mark.timeout(180 + EXAMPLES)  # room to shrink a failure
@FUZZ
@given(data=st.data())
async def test_generated_requests_are_answered_safely(
    harness: Harness, forged: Uploads, progress: Progress, targets: Targets, media: Media, data: st.DataObject
) -> None:
    """Any request: an answer, no stray pings, nothing sent or spent unless valid, nothing unexpected."""
    await run_case(harness, forged, progress, media, data.draw(cases(targets), label="case"))


# --------------------------------------------------------------------------- what the fuzzer found


async def test_a_refusal_quoting_an_overlong_file_name_still_reaches_the_member(harness: Harness) -> None:
    """Found by the fuzzer (a 1905-character video name): every catalogue sentence is clipped to Discord's limit."""
    name = "a" * 1990 + ".txt"
    result = await harness.lipsync(video=(name, b"not a video"))
    assert result.acknowledged and result.ephemeral
    assert result.response is not None and len(result.response.content) <= 2000


async def test_a_file_name_stays_inside_its_code_span_in_the_status_message(harness: Harness) -> None:
    """Seen while building the fuzzer: a name with backticks and a mention stays one code span."""
    name = f"a`<@{harness.bob.id}>`b.mp4"
    await harness.lipsync(video=harness.file("face.mp4", as_name=name))
    job = await harness.finish((await harness.latest_job()).id)
    message = await harness.message_of(job.id)
    # (simcord doesn't model code spans, so its `mentions` can't tell the difference: compare the text.)
    assert texts.DISCORD.quote(name) in message.content
    stored = harness.env.backend.get_message(message.channel.id, message.id)
    assert stored.ping_user_ids == []  # the card became the result by an edit: it notified no one
    [ping] = [m for m in harness.public() if m.reference is not None and m.reference.message_id == message.id]
    pinged = harness.env.backend.get_message(ping.channel.id, ping.id).ping_user_ids
    assert pinged == [harness.alice.id]  # the reply pings the owner only, never the name's mention
