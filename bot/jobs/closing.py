"""Ending one job: gather the facts `endings.decide` needs, and carry out what it says.

The decision is pure (`bot.jobs.endings`); this is its hands. It reads the project, sends a DELETE
only right after a read that asked for one (and never through a retrying client: a DELETE retried
after a 5xx could destroy a render that completed meanwhile), follows the project while the
decision says so, and ends the job through `JobStore.transition` with the charge decided.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from bot.errors import Datum, json_data
from bot.jobs.endings import Action, Ending, Facts, Seen, Stage, Why, decide
from bot.jobs.readback import read_project, request_stop
from bot.magichour import VideoProject
from bot.store import JobState

if TYPE_CHECKING:
    from bot.jobs.run import JobRun

log = logging.getLogger(__name__)

# The first pause between reads of a project whose ending isn't known yet; it doubles up to the
# engine's `deadline_grace_interval`.
_FIRST_PAUSE = 5.0


class Left(Exception):
    """The job is not this process's to end (a shutdown, a lost lease): it stays as it is."""


class Closer:
    """Ends one job's run, for its `JobRun`."""

    def __init__(self, run: JobRun) -> None:
        self._run = run

    async def close(
        self,
        why: Why,
        *,
        project: VideoProject | None = None,
        code: str | None = None,
        data: Mapping[str, Datum] | None = None,
    ) -> None:
        """End the job for `why`, following its project for as long as the decision says.

        `project`: a read the caller already has. `code`/`data`: a failure's refusal. Raises
        `Left` when the job is not this process's to end.
        """
        run = self._run
        current = await run.ctx.store.jobs.get(run.job_id)
        if current is None or current.state.terminal:
            return
        run.record = current
        project_id = current.project_id or run.created_id
        if project_id is not None and current.project_id is None:
            await run.record_project(project_id)  # known in memory only: never lose it
        stage = Stage.of(run.record.state, project_known=project_id is not None)
        if stage is Stage.CREATING and run.create_refused:
            stage = Stage.UNSENT  # the create was answered with a refusal: nothing was made
        held = await run.held()
        facts = Facts(
            stage,
            why,
            held=held,
            created_charge=run.created_charge,
            code=code,
            data=dict(data or {}),
            deadline_minutes=run.ctx.config.job_deadline_seconds / 60,
        )
        if stage is not Stage.SUBMITTED or project_id is None:
            await self._carry_out(decide(facts), why, project)
            return
        await self._see_through(facts, project_id, project)

    async def _see_through(self, facts: Facts, project_id: str, project: VideoProject | None) -> None:
        """Decide on each read of the project until the decision ends the job."""
        run = self._run
        clock = run.ctx.clock
        last_moment = await run.last_moment()
        run.ctx.poller.forget(project_id)  # nobody else waits on it now: this loop reads it
        if project is None:
            project = await read_project(run.ctx.client, project_id, job_id=run.job_id)
        pause = _FIRST_PAUSE
        just_stopped = False
        while True:
            facts = dataclasses.replace(facts, seen=Seen.of(project), out_of_time=clock.now() >= last_moment)
            ending = decide(facts)
            if ending.action is Action.STOP and not just_stopped:
                await request_stop(run.ctx.client, project_id, job_id=run.job_id)
                just_stopped = True
            elif ending.follows:
                # Not known yet, or a stop that didn't take: ask again later, never end on it.
                if ending.action is Action.STOP:
                    log.warning("job %s: project %s is still going after a stop; asking again", run.job_id, project_id)
                just_stopped = False
                await clock.sleep(pause)
                pause = min(pause * 2, max(run.ctx.config.deadline_grace_interval, _FIRST_PAUSE))
            else:
                await self._carry_out(ending, facts.why, project)
                return
            project = await read_project(run.ctx.client, project_id, job_id=run.job_id)

    async def _carry_out(self, ending: Ending, why: Why, project: VideoProject | None) -> None:
        run = self._run
        if ending.action is Action.LEAVE:
            raise Left(run.job_id)
        if ending.action is Action.DELIVER:
            if why is Why.CANCEL:
                log.info("job %s: the cancel came after the render finished; delivering it", run.job_id)
                await run.show("activity_already_rendered")
            await run.courier.complete(project, ending.charge)
            return
        if ending.state is None:  # FOLLOW or STOP for a job with no project: `decide` never says so
            raise AssertionError(f"job {run.job_id}: no ending for {why.value}")
        await self.end(ending.state, ending.code, ending.data, charge=ending.charge)

    async def end(self, state: JobState, code: str | None, data: Mapping[str, Datum], *, charge: int | None) -> None:
        """Move the job to its final state (once): the store closes its credits in the same step."""
        run = self._run
        current = await run.ctx.store.jobs.get(run.job_id)
        if current is None or current.state.terminal:
            return
        run.record = current
        if code is None:
            await run.transition(state, charged=charge)
        else:
            await run.transition(state, charged=charge, error_code=code, error_data=json_data(data))
        log.info("job %s: %s%s", run.job_id, state.value, f" ({code})" if code else "")
