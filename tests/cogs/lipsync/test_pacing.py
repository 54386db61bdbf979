"""One pace for every status message: edits a second stay bounded whatever the number of jobs."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import cast

import discord

from bot.clock import FakeClock
from bot.jobs.queue import EXACT_POSITIONS
from bot.services import Services
from bot.store import JobState
from cogs.lipsync._pacing import BURST, EDITS_PER_SECOND, EditPacer
from cogs.lipsync._presenter import JobPresenter, OwnersSink
from cogs.lipsync._status import StatusMessage
from cogs.lipsync._texts import status_text
from tests.cogs.lipsync.test_status import FakeInteraction, job, sink_for, update


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


async def test_turns_follow_the_pace_and_an_ending_goes_first() -> None:
    """A burst at once, then `per_second`; an urgent turn is served before every waiting one."""
    clock = FakeClock()
    pacer = EditPacer(clock, per_second=2.0, burst=3)
    order: list[str] = []

    async def take(name: str, urgent: bool = False) -> None:
        await pacer.turn(urgent=urgent)
        order.append(name)

    tasks = [asyncio.create_task(take(f"p{i}")) for i in range(10)]
    await _settle()
    assert order == ["p0", "p1", "p2"]
    tasks.append(asyncio.create_task(take("end", urgent=True)))
    await _settle()
    await clock.advance(0.5)
    assert order[3] == "end"
    for second in range(1, 5):
        await clock.advance(0.5)
        assert pacer.granted <= 3 + 2.0 * (second * 0.5 + 0.5)
    await clock.advance(10)
    await asyncio.gather(*tasks)
    assert sorted(order) == sorted([*(f"p{i}" for i in range(10)), "end"])


async def test_a_cancelled_turn_gives_nothing_up() -> None:
    clock = FakeClock()
    pacer = EditPacer(clock, per_second=1.0, burst=1)
    await pacer.turn()
    waiting = asyncio.create_task(pacer.turn())
    behind = asyncio.create_task(pacer.turn())
    await _settle()
    waiting.cancel()
    await clock.advance(1.0)
    await _settle()
    assert behind.done() and pacer.granted == 2


async def test_two_hundred_status_messages_share_one_pace() -> None:
    """200 jobs' status messages updating at once: edits by any moment stay within the burst plus
    the pace, and every message is still shown."""
    clock = FakeClock()
    pacer = EditPacer(clock)
    interactions = [FakeInteraction() for _ in range(200)]
    sinks = [sink_for(clock, interaction, pacer=pacer) for interaction in interactions]
    updates = [asyncio.create_task(sink.update(update(JobState.RENDERING, id=n))) for n, sink in enumerate(sinks)]
    await _settle()
    assert sum(len(i.edits) for i in interactions) == BURST
    for second in range(1, 41):
        await clock.advance(1.0)
        edits = sum(len(i.edits) for i in interactions)
        assert edits <= BURST + EDITS_PER_SECOND * second
    await asyncio.gather(*updates)
    # Each was shown (the refreshes of the elapsed time since then share the same pace).
    assert all(i.edits and "Rendering" in i.edits[0][0] for i in interactions)
    for sink in sinks:
        sink.close()


def test_one_presenter_gives_every_status_message_the_same_pace() -> None:
    """Jobs started and jobs resumed share the bot's one pacer; an unthrottled presenter (the Discord
    tests', which read every update as it comes) has none, so nothing waits on a turn there."""
    services = cast(Services, SimpleNamespace(clock=FakeClock()))
    records = [job(state=JobState.RENDERING, id=n, status_channel_id=2, status_message_id=3) for n in (1, 2)]

    def pacers(presenter: JobPresenter) -> list[EditPacer | None]:
        sinks = [cast(OwnersSink, presenter.for_record(record).sink).inner for record in records]
        return [cast(StatusMessage, sink).pacer for sink in sinks]

    paced = pacers(JobPresenter(cast(discord.Client, None), services))
    assert paced[0] is not None and paced[0] is paced[1]
    assert pacers(JobPresenter(cast(discord.Client, None), services, min_interval=0.0)) == [None, None]


def test_a_place_behind_the_front_is_not_shown_as_a_number() -> None:
    """Only the first `EXACT_POSITIONS` are told each move, so only they see their number."""
    near = status_text(update(JobState.RECEIVED, queue_position=EXACT_POSITIONS))
    far = status_text(update(JobState.RECEIVED, queue_position=EXACT_POSITIONS + 1))
    assert f"position {EXACT_POSITIONS}" in near
    assert f"not yet among the first {EXACT_POSITIONS}" in far and f"position {EXACT_POSITIONS + 1}" not in far
