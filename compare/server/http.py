"""The local endpoint's HTTP application: routes, the middleware (auth, Azure-format errors,
one log line per request) and the small routes (info, models, admin).

aiohttp rather than starlette/uvicorn: the simulated backend injects wire-level faults (a TCP
reset before or during a response, a body cut mid-way, raw SSE bytes with comments or CRLF) and
aiohttp gives the handler the transport to do that; ASGI hides it.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import sys
import traceback
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from compare.server.azure_errors import WireError
from compare.server.backends.base import Backend
from compare.server.batch.execute import stop_all
from compare.server.batch.routes import routes as batch_routes
from compare.server.chat import handle_chat
from compare.server.deployment_spec import ServerConfig
from compare.server.embeddings import handle_embeddings
from compare.server.faults import Aborted
from compare.server.served import (
    CONTEXT,
    SAFE_ID,
    STATE,
    DeploymentStats,
    EndpointState,
    RequestContext,
    state,
)
from compare.server.spec import AZURE_OPENAI, INFERENCE, OPENAI_V1, check_api_version

log = logging.getLogger("compare.server")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
API_KEY = web.AppKey("compare_api_key", bytes)
HEALTH_PATH = "/_compare/health"


def _versioned(handler: Callable[..., Awaitable[web.StreamResponse]], dialect: str) -> Handler:
    """`handler` for `dialect`, after the api-version check that dialect's routes make."""

    async def route(request: web.Request) -> web.StreamResponse:
        check_api_version(request, required=dialect != OPENAI_V1)
        return await handler(request, dialect)

    return route


def build_app(config: ServerConfig, backends: dict[str, Backend], api_key: str) -> web.Application:
    """The aiohttp application serving `config`'s deployments, guarded by `api_key`."""
    app = web.Application(client_max_size=config.max_body_bytes, middlewares=[_middleware])
    app[STATE] = EndpointState(config, backends)
    app[API_KEY] = api_key.encode()
    r = app.router
    # "" and /models: Azure AI model inference (a Foundry resource serves it under
    # https://RES.services.ai.azure.com/models), then Azure OpenAI and the v1 surface.
    for dialect, prefix in ((INFERENCE, ""), (INFERENCE, "/models"),
                            (AZURE_OPENAI, "/openai/deployments/{name}"),
                            (OPENAI_V1, "/openai/v1")):
        r.add_post(f"{prefix}/chat/completions", _versioned(handle_chat, dialect))
        r.add_post(f"{prefix}/embeddings", _versioned(handle_embeddings, dialect))
    for path in ("/info", "/models/info", "/openai/deployments/{name}/info"):
        r.add_get(path, _info)
    r.add_get("/openai/v1/models", _models)
    r.add_get("/_compare/stats", _stats)
    r.add_post("/_compare/reset", _reset_stats)
    r.add_get(HEALTH_PATH, _health)
    app.add_routes(batch_routes("/openai", versioned=True))
    app.add_routes(batch_routes("/openai/v1", versioned=False))
    app.on_cleanup.append(_stop_batches)
    return app


async def _stop_batches(app: web.Application) -> None:
    endpoint = app[STATE]
    await stop_all(endpoint.batches)
    endpoint.files.close()


def _authorized(request: web.Request) -> bool:
    given = request.headers.get("api-key")
    if given is None:
        auth = request.headers.get("Authorization", "")
        if auth[:7].lower() == "bearer ":
            given = auth[7:].strip()
    if given is None:
        return False
    try:
        return hmac.compare_digest(given.encode("utf-8"), request.app[API_KEY])
    except UnicodeEncodeError:  # undecodable bytes in the header: certainly not the key
        return False


def _route_error(request: web.Request, exc: web.HTTPException) -> WireError:
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        cap = state(request).config.max_body_bytes
        return WireError(413, "RequestEntityTooLarge",
                         f"The request body is larger than {cap} bytes.")
    if exc.status != 404:
        return WireError(exc.status, "MethodNotAllowed",
                         f"{request.path} does not take {request.method}.")
    return WireError(404, "NotFound", f"No route for {request.method} {request.path}: the path "
                     f"is wrong.{_deployment_in_path(request)} Routes here: "
                     f"{_route_list(request.app)}.")


def _route_list(app: web.Application) -> str:
    seen: dict[str, list[str]] = {}
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else "?"
        if route.method != "HEAD" and not path.startswith("/_compare"):
            seen.setdefault(path, []).append(route.method)
    return ", ".join(f"{'|'.join(methods)} {path}" for path, methods in seen.items())


def _deployment_in_path(request: web.Request) -> str:
    """A hint when a segment of the wrong path is a deployment name."""
    endpoint = state(request)
    for segment in request.path.split("/"):
        dep = endpoint.deployments.get(segment.lower())
        if dep is not None:
            name = dep.spec.name
            return (f" {name!r} is a deployment: name it in the body's \"model\" (POST "
                    f"/chat/completions or /models/chat/completions) or in the path of "
                    f"/openai/deployments/{name}/chat/completions.")
    return ""


@web.middleware
async def _middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ctx = RequestContext(request_id=str(uuid.uuid4()), t0=asyncio.get_running_loop().time())
    client_id = request.headers.get("x-ms-client-request-id", "")
    if SAFE_ID.fullmatch(client_id):
        ctx.client_request_id = client_id
    request[CONTEXT] = ctx
    endpoint = state(request)
    try:
        if request.path != HEALTH_PATH and not _authorized(request):
            raise WireError(401, "401", "Access denied due to invalid subscription key or "
                            "wrong API endpoint. Send the key in the 'api-key' header or as "
                            "'Authorization: Bearer <key>'.")
        response = await handler(request)
    except WireError as exc:
        response = endpoint.error(ctx, exc)
    except web.HTTPException as exc:  # router: unknown path or method, or a body too large
        response = endpoint.error(ctx, _route_error(request, exc))
    except Aborted as exc:
        ctx.aborted = True
        ctx.status = exc.response.status if exc.response is not None else 499
        # The transport is gone: hand aiohttp the response it already started (if any).
        response = exc.response if exc.response is not None else web.Response(status=499)
    except asyncio.CancelledError:
        ctx.aborted = True
        ctx.status = ctx.status or 499
        _finish(request, ctx)
        raise
    except Exception:
        # A bug, not a user error: log the traceback here, answer in Azure format.
        traceback.print_exc(file=sys.stderr)
        response = endpoint.error(ctx, WireError(500, "InternalServerError",
                                                 "The local endpoint hit an internal error."))
    if not ctx.status:
        ctx.status = response.status
    _finish(request, ctx)
    return response


def _finish(request: web.Request, ctx: RequestContext) -> None:
    """Settle the deployment's counters and log one line for the request."""
    dep = ctx.deployment
    if dep is not None:
        dep.stats.in_flight -= 1
        dep.stats.by_status[f"{ctx.status}-aborted" if ctx.aborted else str(ctx.status)] += 1
        if not ctx.aborted:
            dep.stats.completed += 1
    elapsed = asyncio.get_running_loop().time() - ctx.t0
    parts = [
        request.method, request.path,
        f"deployment={dep.spec.name if dep else '-'}",
        f"status={ctx.status}{'(aborted)' if ctx.aborted else ''}",
        f"stream={int(ctx.stream)}",
        f"ttft_ms={ctx.ttft_s * 1000:.1f}" if ctx.ttft_s is not None else "ttft_ms=-",
        f"total_ms={elapsed * 1000:.1f}",
        f"tokens={_shown(ctx.prompt_tokens)}/{_shown(ctx.completion_tokens)}",
        f"fault={ctx.fault or '-'}",
        f"request_id={ctx.request_id}",
    ]
    log.info(" ".join(parts))


def _shown(value: Any) -> str:
    return "-" if value is None else str(value)


async def _info(request: web.Request) -> web.Response:
    check_api_version(request, required="name" not in request.match_info)
    endpoint = state(request)
    dep = endpoint.pick(request)
    spec = dep.spec
    body = {"model_name": spec.model, "model_type": spec.model_type,
            "model_provider_name": spec.provider, "deployment_type": spec.deployment_type,
            "max_concurrent_requests": spec.max_concurrent_requests,
            "shares_capacity_with": endpoint.config.sharing(spec.name)}
    return endpoint.json(request, body)


async def _models(request: web.Request) -> web.Response:
    endpoint = state(request)
    data = [{"id": d.spec.name, "object": "model", "created": endpoint.started,
             "owned_by": d.spec.provider, "deployment_type": d.spec.deployment_type,
             "max_concurrent_requests": d.spec.max_concurrent_requests,
             "shares_capacity_with": endpoint.config.sharing(d.spec.name)}
            for d in endpoint.deployments.values()]
    return endpoint.json(request, {"object": "list", "data": data})


async def _stats(request: web.Request) -> web.Response:
    endpoint = state(request)
    body = {"started": endpoint.started,
            "deployments": {d.spec.name: d.stats.as_dict()
                            for d in endpoint.deployments.values()}}
    return endpoint.json(request, body)


async def _reset_stats(request: web.Request) -> web.Response:
    for dep in state(request).deployments.values():
        dep.stats = DeploymentStats(in_flight=dep.stats.in_flight)
        if dep.faults:
            dep.faults.reset()
    return state(request).json(request, {"reset": True})


async def _health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})

