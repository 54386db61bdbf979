"""aiohttp middlewares: request counting and fault injection (both listeners), bearer auth and
JSON error bodies (API listener), and the header by which every response says it is the sandbox."""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from bot.sandbox.faults import STREAMING_ROUTES, FaultKind, RequestFault
from bot.sandbox.projects import ReadNote
from bot.sandbox.state import SandboxState

TRUNCATE_KEY = web.RequestKey("sandbox_truncate_download", bool)
# On every response of both listeners, so a client can know for certain it talks to the sandbox.
SANDBOX_HEADER = "X-Magic-Hour-Sandbox"


def mark_sandbox_responses(app: web.Application, state: SandboxState) -> None:
    """Add `X-Magic-Hour-Sandbox: 1` to every response `app` sends, errors and streams included.

    Unless `config.identify` is off: then the sandbox stands in for an endpoint that doesn't say
    it is one (a proxy of the real API), so tests can prove such results are labelled as real.
    """

    async def mark(request: web.Request, response: web.StreamResponse) -> None:
        if state.config.identify:
            response.headers[SANDBOX_HEADER] = "1"

    app.on_response_prepare.append(mark)


def drop_connection(request: web.Request) -> web.Response:
    """Close the connection so the client sees a transport error and no response."""
    transport = request.transport
    if transport is not None:
        transport.close()
    # aiohttp cannot write to the closed transport; this response is never seen.
    return web.Response(status=204)


def error_json(status: int, message: str) -> web.Response:
    """The API's error shape."""
    return web.json_response({"message": message}, status=status)


def _body(response: web.StreamResponse) -> bytes | None:
    if isinstance(response, web.Response) and isinstance(response.body, bytes):
        return response.body
    return None


def malformed(response: web.StreamResponse) -> web.StreamResponse:
    """The same status with the first half of the JSON body: complete as HTTP, unparsable as JSON."""
    body = _body(response)
    if body is None:
        return response
    cut = body[: min(len(body) // 2, len(body) - 1)]
    return web.Response(status=response.status, body=cut, content_type="application/json")


def _rewritten(response: web.StreamResponse, change: Callable[[Any], Any]) -> web.StreamResponse:
    """A 200 JSON answer with its body passed through `change`; any other answer unchanged."""
    body = _body(response)
    if response.status != 200 or body is None:
        return response
    return web.json_response(change(json.loads(body)))


def with_status(response: web.StreamResponse, value: str) -> web.StreamResponse:
    """A 200 project body reporting `status: value`; any other answer unchanged."""
    return _rewritten(response, lambda project: {**project, "status": value})


def without_charge(response: web.StreamResponse) -> web.StreamResponse:
    """A 200 project body without its `credits_charged`; any other answer unchanged."""
    return _rewritten(response, lambda project: {k: v for k, v in project.items() if k != "credits_charged"})


def odd_json(response: web.StreamResponse) -> web.StreamResponse:
    """A 200 body as valid JSON of another shape (`{"data": <body>}`); any other answer unchanged."""
    return _rewritten(response, lambda body: {"data": body})


def note_read(state: SandboxState, request: web.Request, response: web.StreamResponse) -> None:
    """Remember what a client was told about a project: the status of a 200 body that parses.

    Called for answers that reach the client (a dropped connection is never noted), so a test can
    hold a client to "never delete a project whose last read said complete".
    """
    project = state.projects.get(request.match_info.get("id", ""))
    body = _body(response)
    if project is None or response.status != 200 or body is None:
        return
    try:
        answer = json.loads(body)
    except ValueError:
        return  # cut short: the client learnt nothing
    status = answer.get("status") if isinstance(answer, dict) else None
    if isinstance(status, str):
        project.last_read = ReadNote(status=status, at=state.clock.monotonic())


async def _apply(
    state: SandboxState, request: web.Request, handler: Handler, fault: RequestFault
) -> web.StreamResponse:
    route = request.match_info.route.name
    if fault.kind is FaultKind.FAIL:
        if fault.after_effect:
            await handler(request)
        answer = error_json(fault.status, fault.message)
        if fault.retry_after is not None:
            answer.headers["Retry-After"] = fault.retry_after
        return answer
    if fault.kind is FaultKind.DISCONNECT:
        if fault.after_effect:
            if route == "download":
                # The body has to start flowing for the effect to happen: cut it half-way.
                request[TRUNCATE_KEY] = True
                return await handler(request)
            await handler(request)
        return drop_connection(request)
    if fault.kind is FaultKind.MALFORMED:
        return malformed(await handler(request))
    if fault.kind is FaultKind.UNKNOWN_STATUS:
        return with_status(await handler(request), fault.value)
    if fault.kind is FaultKind.NO_CHARGE:
        return without_charge(await handler(request))
    if fault.kind is FaultKind.ODD_JSON:
        return odd_json(await handler(request))
    # HANG: ends on release, or by cancellation when the client disconnects.
    state.counters.held += 1
    try:
        if route in STREAMING_ROUTES:
            await state.faults.wait_released()
            return await handler(request)
        response = await handler(request)
        await state.faults.wait_released()
        return response
    finally:
        state.counters.held -= 1


def fault_middleware(state: SandboxState) -> Middleware:
    """Count each request to a named route, then apply the fault that applies to it, if any."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        route = request.match_info.route.name
        if route is None:
            return await handler(request)
        state.counters.requests[route] += 1
        state.counters.in_flight += 1
        try:
            fault = state.faults.take(route)
            if fault is None:
                response = await handler(request)
            else:
                state.counters.faults_injected[f"{route}:{fault.label}"] += 1
                response = await _apply(state, request, handler, fault)
            if route == "get_project" and (fault is None or fault.kind is not FaultKind.DISCONNECT):
                note_read(state, request, response)
            return response
        finally:
            state.counters.in_flight -= 1

    return middleware


def api_middleware(state: SandboxState) -> Middleware:
    """Bearer auth on every API route, and `{"message": ...}` bodies for aiohttp's own errors."""

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.match_info.route.name is not None:
            expected = f"Bearer {state.config.api_key}".encode()
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                return error_json(401, "Unauthorized")
        try:
            return await handler(request)
        except web.HTTPException as exc:
            if exc.status == 404:
                return error_json(404, "Not Found")
            return error_json(exc.status, exc.reason)

    return middleware
