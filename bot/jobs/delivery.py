"""Getting a completed render to its owner: settle, download, deliver; retry; then a link.

A completed render is paid for, so it is settled to Magic Hour's charge before anything else
(the job moves to `downloading` with the charge) and is never refunded after that. Download and
delivery are retried with backoff (network errors, 5xx and 429 from either side, an expired
download link) for `DeliveryPolicy.patience` seconds; then the member gets a link to the result
with a button for a fresh one, retried the same way; only if that fails too is the delivery given up, the job ended as
`delivery_failed` with its charge kept, and the project logged for the operator. A restart in
`downloading` or `delivering` comes back here and starts again.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from bot.errors import JobFailed
from bot.jobs.endings import Why
from bot.jobs.models import Delivery
from bot.magichour import DownloadExpired, MagicHourClient, VideoProject
from bot.store import JobRecord, JobState, LeaseLost

if TYPE_CHECKING:
    from bot.jobs.run import JobRun

log = logging.getLogger(__name__)


async def fresh_link(client: MagicHourClient, record: JobRecord) -> str:
    """A newly signed download link to a finished job's result (they expire)."""
    if not record.project_id:
        raise JobFailed("no_result", job=record.id)
    project = await client.get_video_project(record.project_id)
    if not project.downloads:
        raise JobFailed("result_gone", job=record.id)
    return project.downloads[0].url


class Courier:
    """Delivers one job's completed render, for its `JobRun`."""

    def __init__(self, run: JobRun) -> None:
        self._run = run
        self._delivered: Delivery | None = None  # what the member got, once they got it

    async def complete(self, project: VideoProject | None, charge: int | None) -> None:
        """The render is complete: settle the job to `charge` (Magic Hour's, as `endings.decide`
        read it; None when it was settled before), then deliver it."""
        run = self._run
        if run.record.state in (JobState.CREATING, JobState.SUBMITTED, JobState.RENDERING):
            if charge is None:
                raise ValueError(f"job {run.job_id}: a render is settled to what Magic Hour charged for it")
            await run.transition(JobState.DOWNLOADING, charged=charge)
            log.info("job %s: rendered, %s credits charged", run.job_id, charge)
        await self.deliver(project)

    async def deliver(self, project: VideoProject | None) -> None:
        """Download and deliver, retrying with backoff; then a link, retried the same way; then
        give up (charge kept)."""
        failure = await self._retrying(project, with_file=True)
        if failure is None:
            return
        # A link is retried too: one failed read of the project (a 5xx, a refused key) or a moment
        # of Discord being down must not give up a render that was paid for.
        failure = await self._retrying(None, with_file=False)
        if failure is None:
            return
        log.error(
            "job %s: gave up delivering Magic Hour project %s (%s); it stays charged",
            self._run.job_id,
            self._run.record.project_id,
            failure,
        )
        await self._run.close(Why.UNDELIVERABLE)

    async def _retrying(self, project: VideoProject | None, *, with_file: bool) -> str | None:
        """Attempts with backoff for `DeliveryPolicy.patience` seconds; why the last one failed, or None."""
        run = self._run
        policy = run.ctx.config.delivery
        clock = run.ctx.clock
        give_up_at = clock.monotonic() + policy.patience
        delay = policy.first_delay
        attempt = 0
        while True:
            attempt += 1
            failure = await self._attempt(project, with_file=with_file)
            if failure is None:
                return None
            what = "delivery" if with_file else "link"
            log.warning("job %s: %s attempt %d failed: %s", run.job_id, what, attempt, failure)
            project = None  # read the project afresh: its download link may have expired
            if clock.monotonic() + delay > give_up_at:
                return failure
            await run.show("activity_retrying_delivery")
            await clock.sleep(delay)
            delay = min(delay * 2, policy.max_delay)

    async def _attempt(self, project: VideoProject | None, *, with_file: bool) -> str | None:
        """One try at getting the result (or, without the file, a link) to its owner; why it failed."""
        run = self._run
        try:
            if self._delivered is None:
                result = await self._download(project) if with_file else None
                await self._delivering()
                # Fenced right before posting: a process that stalled past its lease (another one
                # has taken the job over, and may have posted it) must not post it again.
                run.record = await run.ctx.store.jobs.fence(run.job_id)
                self._delivered = await run.hooks.deliverer.deliver(
                    run.record, result, sandbox=run.sandbox, link=self._link
                )
            # Once posted, only the record is retried: posting again would deliver twice.
            await self._done(self._delivered)
        except (asyncio.CancelledError, LeaseLost):
            raise  # LeaseLost: another process has taken the job over; trying again would deliver twice
        except Exception as exc:
            return _describe(exc)
        return None

    async def _download(self, project: VideoProject | None) -> Path:
        run = self._run
        prefix = "sandbox-lipsync" if run.sandbox else "lipsync"
        result = run.workdir / f"{prefix}-{run.job_id}.mp4"
        if result.exists():
            return result  # downloaded by an earlier attempt; only the delivery failed
        run.workdir.mkdir(parents=True, exist_ok=True)
        url = project.downloads[0].url if project is not None and project.downloads else await self._link()
        async with run.ctx.transfers:
            try:
                await run.ctx.client.download(url, result)
            except DownloadExpired:
                await run.ctx.client.download(await self._link(), result)
        return result

    async def _link(self) -> str:
        return await fresh_link(self._run.ctx.client, self._run.record)

    async def _delivering(self) -> None:
        if self._run.record.state is JobState.DOWNLOADING:
            await self._run.transition(JobState.DELIVERING)

    async def _done(self, delivery: Delivery) -> None:
        run = self._run
        await run.transition(JobState.DONE, delivery_kind=delivery.kind, delivery_message_id=delivery.message_id)
        log.info("job %s: delivered as %s", run.job_id, delivery.kind)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
