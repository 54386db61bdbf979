"""Asking Magic Hour what became of a project, and stopping one only when that is known.

A submitted job ends only on what Magic Hour says about it, read back. These two functions are
the only places the engine reads a project outside the poller, and the only place it deletes one.
"""

from __future__ import annotations

import logging

from bot.jobs.poller import Poller
from bot.magichour import MagicHourClient, MagicHourError, VideoProject

log = logging.getLogger(__name__)

# Statuses in which a project may still be rendering, so that stopping it saves credits.
_STOPPABLE = frozenset({"queued", "rendering"})


async def read_project(client: MagicHourClient, project_id: str, *, job_id: int) -> VideoProject | None:
    """The project as Magic Hour reports it now (the client retries); None if it can't be read."""
    try:
        return await client.get_video_project(project_id)
    except MagicHourError as exc:
        log.warning("job %s: couldn't read project %s: %s", job_id, project_id, exc)
        return None


async def stop_render(client: MagicHourClient, poller: Poller, project_id: str, *, job_id: int) -> VideoProject | None:
    """Stop a render nobody will wait for, so it stops costing; return the project as read back.

    DELETE is sent only after a successful read shows the project queued or rendering: a project
    that can't be read is left alone (it may be complete, and deleting it would throw away a paid
    result), and a complete one is returned for delivery. None when it can't be read.
    """
    poller.forget(project_id)
    project = await read_project(client, project_id, job_id=job_id)
    if project is None or project.status not in _STOPPABLE:
        return project
    try:
        await client.delete_video_project(project_id)
        log.warning("job %s: stopped Magic Hour project %s", job_id, project_id)
    except MagicHourError as exc:
        log.warning("job %s: couldn't stop project %s: %s", job_id, project_id, exc)
    return await read_project(client, project_id, job_id=job_id)
