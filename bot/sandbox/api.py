"""The API listener: the Magic Hour endpoints a lip-sync client uses."""

from __future__ import annotations

import datetime as dt
import math
import uuid

from aiohttp import web

from bot.sandbox import jobs, webhooks
from bot.sandbox.billing import PAID_PLAN_MODES
from bot.sandbox.downloads import download_urls
from bot.sandbox.middleware import api_middleware, error_json, fault_middleware, mark_sandbox_responses
from bot.sandbox.projects import DeleteNote
from bot.sandbox.state import SandboxState
from bot.sandbox.timefmt import iso, iso_from_unix
from bot.sandbox.validation import MAX_FRAMES, ApiError, parse_body, parse_lip_sync, parse_upload_items

STATE_KEY = web.AppKey("sandbox_state", SandboxState)

_SUBSCRIPTION_PRICES = {"creator": 1900, "pro": 4900, "business": 24900}


def _state(request: web.Request) -> SandboxState:
    return request.app[STATE_KEY]


async def _json_body(request: web.Request) -> dict[str, object]:
    return parse_body(await request.text())


async def upload_urls(request: web.Request) -> web.Response:
    """`POST /v1/files/upload-urls`: one signed PUT URL on the storage host per item, in order."""
    state = _state(request)
    try:
        items = parse_upload_items(await _json_body(request))
    except ApiError as exc:
        return error_json(exc.status, exc.message)
    expires = math.ceil(state.now_unix() + state.config.upload_url_ttl)
    out = []
    for _kind, extension in items:
        file_path = f"api-assets/{state.account_id}/{uuid.uuid4().hex}.{extension}"
        url = state.signer.sign(state.storage_url, "PUT", f"/upload/{file_path}", expires)
        out.append({"upload_url": url, "expires_at": iso_from_unix(expires), "file_path": file_path})
    return web.json_response({"items": out})


async def create_lip_sync(request: web.Request) -> web.Response:
    """`POST /v1/lip-sync`: validate, check credits, debit the estimate and start the job."""
    state = _state(request)
    try:
        job = parse_lip_sync(await _json_body(request))
    except ApiError as exc:
        return error_json(exc.status, exc.message)
    if state.config.tier == "free" and job.mode.value in PAID_PLAN_MODES:
        return error_json(403, f"The {job.mode.value} generation mode is not available on the free tier")
    estimate = math.ceil(job.estimate * state.config.create_surcharge)
    if job.estimate_frames > MAX_FRAMES:
        return error_json(422, f"Video is too long: at most {MAX_FRAMES} frames can be rendered")
    if state.config.credits < estimate:
        return error_json(402, "Payment required")
    # No await between the credit check and creation, so concurrent creates cannot overdraw.
    project = jobs.create_project(state, job)
    webhooks.announce(state, project)
    return web.json_response(
        {"id": project.id, "credits_charged": project.credits_charged, "estimated_frame_cost": project.estimate}
    )


async def get_project(request: web.Request) -> web.Response:
    """`GET /v1/video-projects/{id}`: the status by the clock, finalising a due job first."""
    state = _state(request)
    project = state.projects.get(request.match_info["id"])
    if project is None:
        return error_json(404, "Not Found")
    if project.is_due(state.clock.monotonic()):
        await jobs.finalise(state, project)
    now = state.clock.monotonic()
    return web.json_response(project.to_json(now, download_urls(state, project)))


async def delete_project(request: web.Request) -> web.Response:
    """`DELETE /v1/video-projects/{id}`: cancel (and refund) if still running, disable, drop the result."""
    state = _state(request)
    project = state.projects.get(request.match_info["id"])
    if project is None:
        return error_json(404, "Not Found")
    if project.is_due(state.clock.monotonic()):
        # The clock says it already finished: settle it rather than cancel it.
        await jobs.finalise(state, project)
    found = project.status.value
    state.deletes.append(DeleteNote(project.id, state.clock.monotonic(), found, project.last_read))
    jobs.delete(state, project)
    return web.Response(status=204)


async def account(request: web.Request) -> web.Response:
    """`GET /v1/account`: the sandbox account."""
    state = _state(request)
    config = state.config
    subscription: dict[str, object] | None = None
    if config.tier != "free":
        period_end = state.clock.now() + dt.timedelta(days=30)
        subscription = {
            "billing_interval": "month",
            "cancel_at_period_end": False,
            "current_period_end": iso(period_end),
            "discount": None,
            "name": config.tier.capitalize(),
            "price": {"amount": _SUBSCRIPTION_PRICES[config.tier], "currency": "usd"},
            "status": "active",
        }
    return web.json_response(
        {
            "id": state.account_id,
            "email": config.email,
            "credits": config.credits,
            "tier": config.tier,
            "subscription": subscription,
        }
    )


def make_api_app(state: SandboxState) -> web.Application:
    """The API listener's application."""
    app = web.Application(middlewares=[fault_middleware(state), api_middleware(state)])
    app[STATE_KEY] = state
    mark_sandbox_responses(app, state)
    app.router.add_post("/v1/files/upload-urls", upload_urls, name="upload_urls")
    app.router.add_post("/v1/lip-sync", create_lip_sync, name="create")
    app.router.add_get("/v1/video-projects/{id}", get_project, name="get_project")
    app.router.add_delete("/v1/video-projects/{id}", delete_project, name="delete_project")
    app.router.add_get("/v1/account", account, name="account")
    return app
