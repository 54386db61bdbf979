"""Progress that tells time: the expected finish, end to end.

The real bot in simcord, its engine and store, the sandbox over HTTP. Render history is put in the
running bot's store (`store.renders`, as the bot's own finished renders would have left it); the
engine's forecast (`bot.jobs.forecast`) fits its per-mode model from it when a job is submitted,
the job run emits `expected_at`, and the status message words it as a Discord timestamp. Nothing
here fakes `expected_at` (compare `test_what_members_see.py`, which does, to test the wording alone).

Timing: the engine runs on the real clock, so the expected finish is checked against the job's
recorded submission time plus what the model predicts (a Discord timestamp is whole seconds), never
against a clock read by the test. With a forecast the first status poll is planned minutes away,
so the finished render is announced the way Magic Hour would: a signed `video.completed` webhook
to the bot's receiver. Renders advance only on the sandbox's `FakeClock`; the tests wait on what
the bot shows (a spy on the status message's updates, `JobWatcher`, `engine.wait`), never sleep.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest
from pydantic import SecretStr

from bot.config import GenerationMode
from bot.jobs.forecast import frames_of, predict
from bot.jobs.models import JobUpdate
from bot.jobs.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from bot.store import JobState
from bot.store.renders import RenderSample
from cogs.lipsync._status import StatusMessage
from tests.cogs.conftest import Harness

LITE = GenerationMode.LITE
LONG_RENDER = 600.0  # sandbox seconds: the render is still going until the test moves the sandbox's clock
SECRET = "whsec_expected_finish"
WEBHOOKS = pytest.mark.settings(webhook_secret=SecretStr(SECRET), webhook_host="127.0.0.1", webhook_port=0)

# The seeded history: lite renders take 30 s plus 6 s a frame, each placed within ±1 s.
OVERHEAD, PER_FRAME = 30.0, 6.0
HISTORY_FRAMES = (30, 45, 60, 90, 120, 150, 200, 250)
JOB_FRAMES = 45  # face.mp4 (2 s at 30 fps) trimmed to voice.mp3 (1.5 s), in lite: 45 credits, 1 a frame
PREDICTED = OVERHEAD + PER_FRAME * JOB_FRAMES  # 300 s after submission

ETA = re.compile(r"should be done <t:(\d+):R>")


def history(frames: tuple[int, ...]) -> list[RenderSample]:
    """Finished lite renders on the line `OVERHEAD + PER_FRAME × frames`, each known within ±1 s."""
    return [
        RenderSample(LITE, count, OVERHEAD + PER_FRAME * count - 1.0, OVERHEAD + PER_FRAME * count + 1.0)
        for count in frames
    ]


@dataclass(frozen=True)
class Shown:
    """One update the engine gave a job's status message."""

    job_id: int
    state: JobState
    expected_at: dt.datetime | None


class StatusSpy:
    """Every update given to a status message (the real `update` still runs first), to wait on."""

    def __init__(self) -> None:
        self.shown: list[Shown] = []
        self._changed = asyncio.Condition()

    async def saw(self, update: JobUpdate) -> None:
        async with self._changed:
            self.shown.append(Shown(update.job.id, update.job.state, update.expected_at))
            self._changed.notify_all()

    def of(self, job_id: int) -> list[Shown]:
        return [s for s in self.shown if s.job_id == job_id]

    async def until(self, check: Callable[[], bool]) -> None:
        """Return once `check()` holds (fails after 30 s rather than hang)."""
        async with asyncio.timeout(30), self._changed:
            await self._changed.wait_for(check)


@pytest.fixture
def spy(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> StatusSpy:
    watching = StatusSpy()
    # The class the running bot uses: each bot imports its extensions afresh.
    live: type[StatusMessage] = sys.modules["cogs.lipsync._status"].StatusMessage
    shown = live.update

    async def update(self: StatusMessage, update: JobUpdate) -> None:
        await shown(self, update)  # the message is edited before the test hears of it
        await watching.saw(update)

    monkeypatch.setattr(live, "update", update)
    return watching


async def announce_completed(harness: Harness, project_id: str) -> None:
    """What Magic Hour does when a render ends and webhooks are on: a signed `video.completed`."""
    receiver = harness.bot.services.webhooks
    assert receiver is not None, "the bot should listen for webhooks in these tests"
    event = json.dumps({"type": "video.completed", "payload": {"id": project_id}}).encode()
    timestamp = str(int(harness.bot.services.clock.now().timestamp()))
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: sign(SECRET, timestamp, event)}
    async with httpx.AsyncClient() as http:
        answer = await http.post(receiver.url, content=event, headers=headers)
    assert answer.status_code == 200


@WEBHOOKS
async def test_the_expected_finish_is_the_forecast_of_the_bots_render_history(harness: Harness, spy: StatusSpy) -> None:
    """With enough lite render history in the store, a long lite job's public status message shows
    "should be done <t:…:R>" at the job's submission plus what the fitted model predicts for its
    frames (to the whole second Discord timestamps carry); once the render ends the line is gone,
    the message says Done and links the delivered video, and the render joins the history."""
    seeded = history(HISTORY_FRAMES)
    assert len(seeded) >= harness.settings.forecast_min_renders
    for sample in seeded:
        await harness.store.renders.record(sample)
    harness.sandbox.config.render_seconds = LONG_RENDER

    result = await harness.lipsync()
    job = await harness.latest_job()
    assert result.response is not None and job.mode is LITE
    # Two updates while submitted: the state change, then the one that carries the forecast.
    await spy.until(lambda: [s.state for s in spy.of(job.id)].count(JobState.SUBMITTED) >= 2)

    # What the bot's model says: the seeded line, fitted back, for this job's frames.
    submitted_job = await harness.store.jobs.get(job.id)
    assert submitted_job is not None and submitted_job.project_id is not None
    project_id = submitted_job.project_id
    assert frames_of(submitted_job) == JOB_FRAMES
    model = harness.engine.forecast.model(LITE)
    assert model is not None and model.samples == len(seeded)
    assert model.overhead == pytest.approx(OVERHEAD) and model.per_frame == pytest.approx(PER_FRAME)
    prediction = predict(model, JOB_FRAMES, harness.engine.forecast.policy)
    assert prediction.expected == pytest.approx(PREDICTED)
    submitted = [e.at for e in await harness.store.jobs.events(job.id) if e.state is JobState.SUBMITTED][-1]
    finish = (submitted + dt.timedelta(seconds=prediction.expected)).timestamp()

    status = await harness.message_of(job.id)
    state = status.content.splitlines()[1]
    assert re.fullmatch(r"🕒 Rendering · [▰▱]{10} \d+% · .+ so far · should be done <t:\d+:R>", state), state
    [shown] = [int(m.group(1)) for m in ETA.finditer(status.content)]
    assert finish - 1 < shown <= finish + 1, (shown, finish)  # whole seconds, as Discord's markup has them

    await harness.sandbox_clock.advance(LONG_RENDER)  # Magic Hour's clock: the render is done
    await announce_completed(harness, project_id)
    final = await harness.finish(job.id)

    assert final.state is JobState.DONE, final.error_code
    [posted] = result.followups
    assert [a.filename for a in posted.message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert final.delivery_message_id == posted.message.id
    status = await harness.message_of(job.id)
    assert status.id == posted.message.id  # the result replaced the card
    assert "should be done" not in status.content and "so far" not in status.content
    learnt = await harness.store.renders.recent(LITE, 50)
    assert len(learnt) == len(seeded) + 1 and learnt[-1].job_id == job.id and learnt[-1].frames == JOB_FRAMES


async def test_without_enough_history_the_status_says_the_time_so_far(harness: Harness, spy: StatusSpy) -> None:
    """With fewer lite renders in the store than the forecast needs, no update of a long job carries
    an expected finish and its public status message says only how long it has been rendering; the
    job still ends Done with its video delivered (polled on the usual schedule)."""
    short = history(HISTORY_FRAMES[: harness.settings.forecast_min_renders - 1])
    for sample in short:
        await harness.store.renders.record(sample)
    harness.sandbox.config.render_seconds = LONG_RENDER

    result = await harness.lipsync()
    job = await harness.latest_job()
    assert result.response is not None
    # Rendering (polled on the usual schedule), or, were there a forecast, the update carrying it.
    await spy.until(lambda: any(s.state is JobState.RENDERING or s.expected_at for s in spy.of(job.id)))

    assert harness.engine.forecast.model(LITE) is None  # too little history to fit
    assert spy.of(job.id) and all(s.expected_at is None for s in spy.of(job.id))
    status = await harness.message_of(job.id)
    state = status.content.splitlines()[1]
    assert re.fullmatch(r"🎬 Rendering · [^·]+ so far", state), state
    assert "should be done" not in status.content and "<t:" not in state

    await harness.sandbox_clock.advance(LONG_RENDER)
    final = await harness.finish(job.id)

    assert final.state is JobState.DONE, final.error_code
    [posted] = result.followups
    assert [a.filename for a in posted.message.attachments] == [f"sandbox-lipsync-{job.id}.mp4"]
    assert all(s.expected_at is None for s in spy.of(job.id))
    status = await harness.message_of(job.id)
    assert status.id == posted.message.id and "so far" not in status.content
