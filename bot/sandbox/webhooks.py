"""Magic Hour's webhooks, as the sandbox sends them: a signed event when a render ends.

With `config.webhook_url` set, each new project's herald sleeps on the sandbox clock until the
render is due, finalises it and POSTs `video.completed` or `video.errored` (the project as a status
read returns it), signed as Magic Hour signs, with its own code so a test checks the bot's receiver
against it. Failed sends are retried after 1, 2, 4 and 8 s of sandbox time; a canceled project
sends nothing (Magic Hour has no cancel event); `config.webhooks_lost` drops every event.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging

import aiohttp

from bot.sandbox import jobs
from bot.sandbox.downloads import download_urls
from bot.sandbox.projects import Project, Status
from bot.sandbox.state import SandboxState

log = logging.getLogger(__name__)

_EVENTS = {Status.COMPLETE: "video.completed", Status.ERROR: "video.errored"}
_RETRY_AFTER = (1.0, 2.0, 4.0, 8.0)
_TIMEOUT = aiohttp.ClientTimeout(total=10.0)  # Magic Hour asks for an answer within 10 s


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The `magic-hour-event-signature` header for `body` sent at `timestamp`."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def announce(state: SandboxState, project: Project) -> None:
    """Send the project's ending as a webhook when it renders out (nothing without `webhook_url`)."""
    if state.config.webhook_url is None:
        return
    task = asyncio.create_task(_herald(state, project))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _herald(state: SandboxState, project: Project) -> None:
    due = project.created_mono + project.queue_seconds + project.render_seconds
    await state.clock.sleep(max(0.0, due - state.clock.monotonic()))
    await jobs.finalise(state, project)
    kind = _EVENTS.get(project.status)
    url = state.config.webhook_url
    if kind is None or url is None:
        return
    if state.config.webhooks_lost:
        state.counters.webhooks[f"{kind}:lost"] += 1
        return
    payload = project.to_json(state.clock.monotonic(), download_urls(state, project))
    body = json.dumps({"type": kind, "payload": payload}).encode()
    for pause in (*_RETRY_AFTER, None):
        answer = await _post(state, url, body)
        state.counters.webhooks[f"{kind}:{answer}"] += 1
        if isinstance(answer, int) and 200 <= answer < 300:
            return
        if pause is None:
            log.warning("sandbox webhook %s for %s: gave up after %s", kind, project.id, answer)
            return
        await state.clock.sleep(pause)


async def _post(state: SandboxState, url: str, body: bytes) -> int | str:
    """The answer's status code, or "unreachable"."""
    timestamp = str(int(state.now_unix()))
    headers = {
        "content-type": "application/json",
        "magic-hour-event-timestamp": timestamp,
        "magic-hour-event-signature": signature(state.config.webhook_secret, timestamp, body),
    }
    try:
        async with (
            aiohttp.ClientSession(timeout=_TIMEOUT) as session,
            session.post(url, data=body, headers=headers) as response,
        ):
            return response.status
    except (aiohttp.ClientError, TimeoutError):
        return "unreachable"
