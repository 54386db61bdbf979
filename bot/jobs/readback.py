"""Asking Magic Hour what became of a project, and asking it to stop one.

A submitted job ends only on what Magic Hour says about it, read back (`bot.jobs.endings`). These
are the only places the engine reads a project outside the poller, and the only place it deletes
one. `request_stop` sends exactly one DELETE: its caller sends it only right after a read that
showed the project queued or rendering, and reads again before any other attempt, because a
DELETE retried blindly (after a 5xx, say) could destroy a render that completed in between.
"""

from __future__ import annotations

import logging

from bot.magichour import MagicHourClient, MagicHourError, VideoProject

log = logging.getLogger(__name__)


async def read_project(client: MagicHourClient, project_id: str, *, job_id: int) -> VideoProject | None:
    """The project as Magic Hour reports it now (the client retries); None if it can't be read."""
    try:
        return await client.get_video_project(project_id)
    except MagicHourError as exc:
        log.warning("job %s: couldn't read project %s: %s", job_id, project_id, exc)
        return None


async def request_stop(client: MagicHourClient, project_id: str, *, job_id: int) -> bool:
    """Send one DELETE for the project, never retried (after a 5xx, a second one could destroy a render that
    completed in between); True if it was accepted."""
    try:
        await client.without_retries().delete_video_project(project_id)
    except MagicHourError as exc:
        log.warning("job %s: couldn't stop project %s: %s", job_id, project_id, exc)
        return False
    log.warning("job %s: asked Magic Hour to stop project %s", job_id, project_id)
    return True
