"""The local endpoint's HTTP application (aiohttp.web).

aiohttp rather than starlette/uvicorn: the simulated backend must inject wire-level faults — a TCP
reset before or during a response, a body cut mid-way, raw SSE bytes with comments or CRLF — and
aiohttp gives the handler the transport to do that; ASGI hides it. aiohttp is already a core
dependency of `compare`.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import hmac
import json
import logging
import math
import random
import re
import socket
import struct
import sys
import time
import traceback
import uuid
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from compare.server import wire
from compare.server.backends import (
    Backend,
    GenParams,
    SimulatedBackend,
    message_text,
    prompt_key,
)
from compare.server.config import STATUS_FAULTS, DeploymentSpec, FaultRule, ServerConfig
from compare.server.wire import WireError

log = logging.getLogger("compare.server")

_STATUS_CODES = {400: "BadRequest", 401: "401", 403: "AuthorizationFailed", 408: "Timeout",
                 422: "UnprocessableEntity", 429: "429", 500: "InternalServerError",
                 502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


# ---------------------------------------------------------------- per-deployment state


class RateLimiter:
    """Requests and tokens per sliding window (rpm/tpm scaled to `window_s`)."""

    def __init__(self, rpm: int | None, tpm: int | None, window_s: float) -> None:
        self.window = window_s
        self.max_requests = max(1, math.ceil(rpm * window_s / 60)) if rpm else None
        self.max_tokens = max(1, math.ceil(tpm * window_s / 60)) if tpm else None
        self.events: collections.deque[tuple[float, int]] = collections.deque()
        self.tokens = 0

    def _expire(self, now: float) -> None:
        while self.events and self.events[0][0] <= now - self.window:
            self.tokens -= self.events.popleft()[1]

    def admit(self, now: float, tokens: int) -> tuple[bool, float]:
        """Take a request of `tokens` estimated tokens; (admitted, retry-after seconds)."""
        self._expire(now)
        over_requests = self.max_requests is not None and len(self.events) >= self.max_requests
        over_tokens = self.max_tokens is not None and self.events and \
            self.tokens + tokens > self.max_tokens
        if over_requests or over_tokens:
            return False, max(0.001, self.events[0][0] + self.window - now)
        self.events.append((now, tokens))
        self.tokens += tokens
        return True, 0.0

    def headers(self, now: float) -> dict[str, str]:
        self._expire(now)
        out = {}
        if self.max_requests is not None:
            out["x-ratelimit-remaining-requests"] = str(max(0, self.max_requests -
                                                            len(self.events)))
        if self.max_tokens is not None:
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.max_tokens - self.tokens))
        return out


class FaultInjector:
    """Decides which configured fault (if any) a request of a simulated deployment gets."""

    def __init__(self, rules: tuple[FaultRule, ...], seed: int) -> None:
        self.rules = rules
        self.rng = random.Random(seed * 7919 + 17)
        self.attempts: dict[tuple[int, str], int] = collections.defaultdict(int)

    def pick(self, key: str, text: str) -> FaultRule | None:
        for i, rule in enumerate(self.rules):
            if rule.match is not None and rule.match not in text:
                continue
            if rule.first_attempts is not None:
                self.attempts[(i, key)] += 1
                if self.attempts[(i, key)] <= rule.first_attempts:
                    return rule
            elif rule.rate is not None and (rule.rate >= 1.0 or self.rng.random() < rule.rate):
                return rule
        return None

    def reset(self) -> None:
        self.attempts.clear()


@dataclass
class DeploymentStats:
    received: int = 0
    completed: int = 0
    in_flight: int = 0
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    prompts: collections.Counter[str] = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        # "requests" is "received" under the name other tools look for.
        return {"received": self.received, "requests": self.received,
                "completed": self.completed,
                "in_flight": self.in_flight, "by_status": dict(self.by_status),
                "faults": dict(self.faults), "prompts": dict(self.prompts)}


@dataclass
class Deployment:
    spec: DeploymentSpec
    backend: Backend
    limiter: RateLimiter | None
    faults: FaultInjector | None
    stats: DeploymentStats = field(default_factory=DeploymentStats)


@dataclass
class Ctx:
    """Per-request facts the middleware logs and every response carries."""

    request_id: str
    t0: float
    client_request_id: str | None = None  # azure-core's x-ms-client-request-id, echoed back
    deployment: Deployment | None = None
    status: int = 0
    stream: bool = False
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fault: str | None = None
    aborted: bool = False
    headers: dict[str, str] = field(default_factory=dict)


CTX = web.AppKey("ctx_key", dict)


# ---------------------------------------------------------------- the server


class Aborted(Exception):
    """The connection was reset or abandoned on purpose (an injected fault)."""

    def __init__(self, response: web.StreamResponse | None = None) -> None:
        super().__init__("aborted")
        self.response = response


class EndpointServer:
    def __init__(self, config: ServerConfig, backends: dict[str, Backend], api_key: str) -> None:
        self.config = config
        self._key = api_key.encode()
        self.started = int(time.time())
        self.deployments: dict[str, Deployment] = {}
        for spec in config.deployments:
            cap = spec.capacity
            self.deployments[spec.name.lower()] = Deployment(
                spec=spec,
                backend=backends[spec.name],
                limiter=RateLimiter(cap.rpm, cap.tpm, cap.window_s) if cap else None,
                faults=FaultInjector(spec.faults, spec.simulated.seed if spec.simulated else 0)
                if spec.faults else None,
            )

    # ------------------------------------------------------------ app

    def make_app(self) -> web.Application:
        app = web.Application(client_max_size=self.config.max_body_bytes,
                              middlewares=[self._middleware])
        r = app.router
        r.add_post("/chat/completions", self._chat_inference)
        r.add_post("/openai/deployments/{name}/chat/completions", self._chat_azure_openai)
        r.add_post("/openai/v1/chat/completions", self._chat_v1)
        r.add_post("/embeddings", self._embed_inference)
        r.add_post("/openai/deployments/{name}/embeddings", self._embed_azure_openai)
        r.add_post("/openai/v1/embeddings", self._embed_v1)
        r.add_get("/info", self._info)
        r.add_get("/openai/deployments/{name}/info", self._info)
        r.add_get("/openai/v1/models", self._models)
        r.add_get("/_compare/stats", self._stats)
        r.add_post("/_compare/reset", self._reset_stats)
        r.add_get("/_compare/health", self._health)
        return app

    def _authorized(self, request: web.Request) -> bool:
        given = request.headers.get("api-key")
        if given is None:
            auth = request.headers.get("Authorization", "")
            if auth[:7].lower() == "bearer ":
                given = auth[7:].strip()
        if given is None:
            return False
        try:
            return hmac.compare_digest(given.encode("utf-8"), self._key)
        except UnicodeEncodeError:  # undecodable bytes in the header: certainly not the key
            return False

    @web.middleware
    async def _middleware(self, request: web.Request,
                          handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                          ) -> web.StreamResponse:
        ctx = Ctx(request_id=str(uuid.uuid4()), t0=asyncio.get_running_loop().time())
        client_id = request.headers.get("x-ms-client-request-id", "")
        if _SAFE_ID.fullmatch(client_id):
            ctx.client_request_id = client_id
        request[CTX] = ctx  # type: ignore[index]
        response: web.StreamResponse | None = None
        try:
            if request.path != "/_compare/health" and not self._authorized(request):
                raise WireError(401, "401", "Access denied due to invalid subscription key or "
                                "wrong API endpoint. Send the key in the 'api-key' header or as "
                                "'Authorization: Bearer <key>'.")
            response = await handler(request)
        except WireError as exc:
            response = self._error(ctx, exc)
        except web.HTTPRequestEntityTooLarge:
            response = self._error(ctx, WireError(
                413, "RequestEntityTooLarge",
                f"The request body is larger than {self.config.max_body_bytes} bytes."))
        except web.HTTPException as exc:  # router: unknown path or method
            code = "NotFound" if exc.status == 404 else "MethodNotAllowed"
            response = self._error(ctx, WireError(exc.status, code,
                                                  f"No route for {request.method} {request.path}"))
        except Aborted as exc:
            ctx.aborted = True
            ctx.status = exc.response.status if exc.response is not None else 499
            # The transport is gone: hand aiohttp the response it already started (if any).
            response = exc.response if exc.response is not None else web.Response(status=499)
        except asyncio.CancelledError:
            ctx.aborted = True
            ctx.status = ctx.status or 499
            self._finish(request, ctx)
            raise
        except Exception:
            # A bug, not a user error: log the traceback here, answer in Azure format.
            traceback.print_exc(file=sys.stderr)
            response = self._error(ctx, WireError(500, "InternalServerError",
                                                  "The local endpoint hit an internal error."))
        if not ctx.status:
            ctx.status = response.status
        self._finish(request, ctx)
        return response

    def _finish(self, request: web.Request, ctx: Ctx) -> None:
        dep = ctx.deployment
        if dep is not None:
            dep.stats.in_flight -= 1
            dep.stats.by_status[str(ctx.status) if not ctx.aborted else
                                f"{ctx.status}-aborted"] += 1
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
            f"tokens={ctx.prompt_tokens if ctx.prompt_tokens is not None else '-'}/"
            f"{ctx.completion_tokens if ctx.completion_tokens is not None else '-'}",
            f"fault={ctx.fault or '-'}",
            f"request_id={ctx.request_id}",
        ]
        log.info(" ".join(parts))

    # ------------------------------------------------------------ headers and errors

    def _headers(self, ctx: Ctx) -> dict[str, str]:
        headers = {"apim-request-id": ctx.request_id, "x-request-id": ctx.request_id,
                   "x-ms-region": self.config.region}
        if ctx.client_request_id:
            headers["x-ms-client-request-id"] = ctx.client_request_id
        dep = ctx.deployment
        if dep is not None:
            headers["x-ms-deployment-name"] = dep.spec.name
            if dep.limiter is not None:
                headers.update(dep.limiter.headers(asyncio.get_running_loop().time()))
        headers.update(ctx.headers)
        return headers

    def _error(self, ctx: Ctx, exc: WireError) -> web.Response:
        headers = self._headers(ctx)
        headers.update(exc.headers)
        headers["x-ms-error-code"] = exc.code
        ctx.status = exc.status
        return web.json_response(exc.body(), status=exc.status, headers=headers)

    # ------------------------------------------------------------ admin

    async def _stats(self, request: web.Request) -> web.Response:
        body = {"started": self.started,
                "deployments": {d.spec.name: d.stats.as_dict()
                                for d in self.deployments.values()}}
        return web.json_response(body, headers=self._headers(request[CTX]))  # type: ignore[index]

    async def _reset_stats(self, request: web.Request) -> web.Response:
        for dep in self.deployments.values():
            in_flight = dep.stats.in_flight
            dep.stats = DeploymentStats(in_flight=in_flight)
            if dep.faults:
                dep.faults.reset()
        return web.json_response({"reset": True},
                                 headers=self._headers(request[CTX]))  # type: ignore[index]

    async def _health(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    # ------------------------------------------------------------ routing

    def _find(self, name: Any) -> Deployment:
        dep = self.deployments.get(name.lower()) if isinstance(name, str) else None
        if dep is None:
            raise WireError(404, "DeploymentNotFound",
                            f"The API deployment for this resource does not exist: {name!r}. "
                            f"Deployments here: {', '.join(self.config.names())}.")
        return dep

    def _model_from(self, request: web.Request, body_model: Any = None) -> Deployment:
        name = request.match_info.get("name") or body_model or \
            request.query.get("model") or request.headers.get("x-ms-model-mesh-model-name")
        if name is None:
            if len(self.deployments) == 1:
                return next(iter(self.deployments.values()))
            raise WireError(400, "ModelRequired",
                            "This endpoint serves several deployments "
                            f"({', '.join(self.config.names())}): name one in the body's "
                            "'model' (or '?model=' for /info).", param="model")
        return self._find(name)

    @staticmethod
    def _api_version(request: web.Request, required: bool) -> None:
        version = request.query.get("api-version")
        if version is None:
            if required:
                raise WireError(400, "MissingApiVersionParameter",
                                "The api-version query parameter (?api-version=) is required "
                                "for all requests.", param="api-version")
            return
        if not wire.API_VERSION_RE.match(version):
            raise WireError(400, "UnsupportedApiVersion",
                            f"Unsupported api-version {version!r}.", param="api-version")

    async def _info(self, request: web.Request) -> web.Response:
        self._api_version(request, required="name" not in request.match_info)
        ctx: Ctx = request[CTX]  # type: ignore[index]
        dep = self._model_from(request)
        spec = dep.spec
        body = {"model_name": spec.model, "model_type": spec.model_type,
                "model_provider_name": spec.provider}
        return web.json_response(body, headers=self._headers(ctx))

    async def _models(self, request: web.Request) -> web.Response:
        data = [{"id": d.spec.name, "object": "model", "created": self.started,
                 "owned_by": d.spec.provider} for d in self.deployments.values()]
        return web.json_response({"object": "list", "data": data},
                                 headers=self._headers(request[CTX]))  # type: ignore[index]

    # ------------------------------------------------------------ chat

    async def _chat_inference(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=True)
        return await self._chat(request, wire.INFERENCE)

    async def _chat_azure_openai(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=True)
        return await self._chat(request, wire.AZURE_OPENAI)

    async def _chat_v1(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=False)
        return await self._chat(request, wire.OPENAI_V1)

    async def _read_json(self, request: web.Request) -> Any:
        length = request.content_length
        if length is not None and length > self.config.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(max_size=self.config.max_body_bytes,
                                                actual_size=length)
        raw = _decode_body(await request.read(), request.headers.get("Content-Encoding", ""),
                           self.config.max_body_bytes)
        try:
            return json.loads(raw)
        except (UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise WireError(400, "BadRequest", f"The request body is not valid JSON: {exc}") \
                from None

    async def _chat(self, request: web.Request, dialect: str) -> web.StreamResponse:
        ctx: Ctx = request[CTX]  # type: ignore[index]
        body = await self._read_json(request)
        if not isinstance(body, dict):
            raise WireError(400, "BadRequest", "The request body must be a JSON object")
        dep = self._model_from(request, body.get("model") if dialect != wire.AZURE_OPENAI
                               else None)
        ctx.deployment = dep
        _count_received(dep, body)
        _check_operation(dep.spec, "chat-completion")
        call = wire.parse_chat(body, dialect, request.headers.get("extra-parameters"))
        ctx.stream = call.stream
        if call.extra:
            ctx.headers["x-compare-passed-parameters"] = _header_list(call.extra)
        if call.dropped:
            ctx.headers["x-compare-dropped-parameters"] = _header_list(call.dropped)
        spec = dep.spec
        max_tokens = min(call.max_tokens or spec.defaults.get("max_tokens", 256),
                         spec.max_output_tokens)
        prompt_text = "\n".join(message_text(m) for m in call.messages)
        self._admit(dep, call, prompt_text, max_tokens)
        fault = dep.faults.pick(prompt_key(call.messages), prompt_text) if dep.faults else None
        if fault is not None:
            ctx.fault = fault.fault
            dep.stats.faults[fault.fault] += 1
            await self._early_fault(request, spec, fault)
        try:
            gen = dep.backend.start(_gen_params(spec, call, max_tokens, ctx.t0))
        except ValueError as exc:  # PromptTooLong
            raise WireError(400, "context_length_exceeded", str(exc), param="messages") from None
        ctx.headers.update(gen.headers)
        ctx.prompt_tokens = gen.prompt_tokens
        shape = wire.ResponseShape(
            dialect=dialect,
            id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
            created=int(time.time()),
            model=spec.model,
            filtered_deployment=bool(spec.content_filter),
        )
        if fault is not None and fault.fault == "oversized_output":
            gen = _Oversized(fault.size_chars, gen.prompt_tokens)
        gate = wire.OutputGate(call.stop or list(spec.defaults.get("stop", [])),
                               spec.content_filter)
        if call.stream:
            return await self._stream(request, ctx, shape, gen, gate, call, fault)
        return await self._complete(request, ctx, shape, gen, gate, fault)

    async def _embed_inference(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=True)
        return await self._embed(request, wire.INFERENCE)

    async def _embed_azure_openai(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=True)
        return await self._embed(request, wire.AZURE_OPENAI)

    async def _embed_v1(self, request: web.Request) -> web.StreamResponse:
        self._api_version(request, required=False)
        return await self._embed(request, wire.OPENAI_V1)

    async def _embed(self, request: web.Request, dialect: str) -> web.StreamResponse:
        ctx: Ctx = request[CTX]  # type: ignore[index]
        body = await self._read_json(request)
        if not isinstance(body, dict):
            raise WireError(400, "BadRequest", "The request body must be a JSON object")
        dep = self._model_from(request, body.get("model") if dialect != wire.AZURE_OPENAI
                               else None)
        ctx.deployment = dep
        dep.stats.received += 1
        dep.stats.in_flight += 1
        spec = dep.spec
        _check_operation(spec, "embeddings")
        assert isinstance(dep.backend, SimulatedBackend) and spec.simulated is not None
        call = wire.parse_embeddings(body, dialect, request.headers.get("extra-parameters"),
                                     spec.simulated.dimensions)
        if call.dropped:
            ctx.headers["x-compare-dropped-parameters"] = _header_list(call.dropped)
        if call.extra:
            ctx.headers["x-compare-passed-parameters"] = _header_list(call.extra)
        tokens = sum(len(t.split()) for t in call.inputs)
        if dep.limiter is not None:
            admitted, wait = dep.limiter.admit(asyncio.get_running_loop().time(), tokens)
            if not admitted:
                raise self._throttled(spec, wait, "both")
        fault = dep.faults.pick(prompt_key([{"content": t} for t in call.inputs]),
                                "\n".join(call.inputs)) if dep.faults else None
        if fault is not None:
            ctx.fault = fault.fault
            dep.stats.faults[fault.fault] += 1
            await self._early_fault(request, spec, fault)
        vectors = await dep.backend.embed(call.inputs, spec.simulated.dimensions,
                                          ctx.t0)
        ctx.prompt_tokens = tokens
        data = []
        for i, vector in enumerate(vectors):
            if call.dimensions is not None:
                vector = _renormalised(vector[: call.dimensions])
            value: Any = vector
            if call.encoding_format == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        result = {"id": f"embd-{uuid.uuid4().hex[:24]}", "object": "list", "data": data,
                  "model": spec.model, "usage": {"prompt_tokens": tokens,
                                                 "total_tokens": tokens}}
        return web.json_response(result, headers=self._headers(ctx))

    def _admit(self, dep: Deployment, call: wire.ChatCall, prompt_text: str,
               max_tokens: int) -> None:
        """The service's own checks, in Azure's order: prompt filter, parameters, capacity."""
        spec = dep.spec
        for rule in spec.content_filter:
            if "prompt" in rule.on and rule.search(prompt_text):
                raise wire.prompt_filter_error(spec.name, rule)
        unsupported = dep.backend.unsupported_extra(call.extra)
        if unsupported:
            raise WireError(422, "UnsupportedParameter",
                            f"The model of deployment '{spec.name}' does not accept parameter(s)"
                            f" {', '.join(unsupported)}.", param=unsupported[0])
        if dep.limiter is not None:
            # Like Azure: a request counts its prompt estimate plus max_tokens against TPM.
            estimate = len(prompt_text) // 4 + max_tokens
            admitted, wait = dep.limiter.admit(asyncio.get_running_loop().time(), estimate)
            if not admitted:
                raise self._throttled(spec, wait, "both")

    def _throttled(self, spec: DeploymentSpec, wait: float, hints: str | None) -> WireError:
        headers = {}
        if hints in ("both",):
            headers["Retry-After"] = str(max(1, math.ceil(wait)))
        if hints in ("both", "ms"):
            headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
        return WireError(
            429, "429",
            f"Requests to the ChatCompletions_Create Operation of deployment '{spec.name}' have "
            "exceeded the rate limit of its capacity. Please retry after "
            f"{max(1, math.ceil(wait))} second(s).",
            headers=headers,
        )

    async def _early_fault(self, request: web.Request, spec: DeploymentSpec,
                           fault: FaultRule) -> None:
        """Faults that strike before any response byte: statuses, resets, hangs."""
        name = fault.fault
        if name in STATUS_FAULTS:
            status, hints = STATUS_FAULTS[name]
            if status == 429:
                raise self._throttled(spec, fault.retry_after_s, hints)
            raise WireError(status, _STATUS_CODES[status],
                            f"Injected fault {name} on simulated deployment '{spec.name}'.")
        if name == "reset_before_response":
            _reset(request)
        if name == "hang_before_headers":
            await asyncio.sleep(fault.hang_s)
            _reset(request)

    # ------------------------------------------------------------ bodies

    async def _complete(self, request: web.Request, ctx: Ctx, shape: wire.ResponseShape,
                        gen: Any, gate: wire.OutputGate,
                        fault: FaultRule | None) -> web.StreamResponse:
        text, reason = await _collect(gen, gate)
        ctx.completion_tokens = gen.completion_tokens
        if fault is not None and fault.fault == "no_finish_reason":
            reason = None
        body = shape.completion(text, reason, wire.usage(gen.prompt_tokens,
                                                         gen.completion_tokens), gate.hit)
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        headers = self._headers(ctx)
        if fault is not None and fault.fault in ("reset_mid_stream", "hang_mid_stream"):
            # Headers and half the body, then the connection dies (or hangs, then dies).
            resp = web.StreamResponse(status=200, headers=headers)
            resp.content_type = "application/json"
            resp.content_length = len(payload)
            await resp.prepare(request)
            await resp.write(payload[: len(payload) // 2])
            if fault.fault == "hang_mid_stream":
                await asyncio.sleep(fault.hang_s)
            _reset(request, resp)
        return web.Response(body=payload, status=200, headers=headers,
                            content_type="application/json")

    async def _stream(self, request: web.Request, ctx: Ctx, shape: wire.ResponseShape,
                      gen: Any, gate: wire.OutputGate, call: wire.ChatCall,
                      fault: FaultRule | None) -> web.StreamResponse:
        name = fault.fault if fault is not None else None
        mid_fault = fault if name in _MID_STREAM else None
        resp = web.StreamResponse(status=200, headers=self._headers(ctx))
        resp.content_type = "text/event-stream"
        resp.headers["Cache-Control"] = "no-cache"
        await resp.prepare(request)
        eol = "\r\n" if name == "crlf" else "\n"
        comment = f": keep-alive{eol}{eol}" if name == "sse_comments" else ""
        loop = asyncio.get_running_loop()
        no_finish = name == "no_finish_reason"

        async def send(obj: dict[str, Any] | str) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
            await resp.write(f"{comment}data: {data}{eol}{eol}".encode())

        async def send_content(text: str | None, reason: str | None, last: bool) -> None:
            nonlocal first
            if not first and not last and text:
                await send(shape.middle_chunk(text, gen.prompt_tokens, gen.completion_tokens))
                return
            await send(shape.chunk(text, first=first,
                                   finish_reason=None if no_finish else reason,
                                   hit=gate.hit, final=last,
                                   usage=self._inline_usage(shape, gen, last, name)))
            if first and text:
                ctx.ttft_s = loop.time() - ctx.t0
                first = False

        if shape.filtered_deployment and shape.dialect != wire.INFERENCE:
            await send(shape.prompt_filter_chunk())
        sent = 0
        first = True
        last = False
        try:
            async for piece in gen:
                out, reason = gate.feed(piece)
                # The simulated backend knows its last token ahead, llama knows it at
                # max_tokens: then finish_reason rides on the last content chunk itself.
                last = reason is not None or (gen.done and not gate.pending)
                if mid_fault is not None and (sent >= mid_fault.after_tokens or last):
                    await self._mid_stream_fault(request, resp, mid_fault, send)
                if out or last:
                    await send_content(out, (reason or gen.finish_reason) if last else None,
                                       last)
                    sent += 1
                if last:
                    break
        finally:
            await gen.aclose()
        ctx.completion_tokens = gen.completion_tokens
        if not last:
            # Ended on end-of-generation: one more chunk carries the finish_reason.
            tail, reason = gate.flush()
            if mid_fault is not None:
                await self._mid_stream_fault(request, resp, mid_fault, send)
            await send_content(tail, reason or gen.finish_reason, True)
        if call.include_usage and shape.dialect != wire.INFERENCE and not no_finish:
            await send(shape.usage_chunk(wire.usage(gen.prompt_tokens, gen.completion_tokens)))
        await send("[DONE]")
        await resp.write_eof()
        return resp

    @staticmethod
    def _inline_usage(shape: wire.ResponseShape, gen: Any, done: bool,
                      fault: str | None) -> dict[str, int] | None:
        # The 2024-05-01-preview inference spec requires `usage` on every streamed update (and
        # forbids empty `choices`): running counts, final on the last chunk.
        if shape.dialect == wire.INFERENCE:
            return wire.usage(gen.prompt_tokens, gen.completion_tokens)
        return None

    async def _mid_stream_fault(self, request: web.Request, resp: web.StreamResponse,
                                fault: FaultRule, send: Callable[[Any], Awaitable[None]]) -> None:
        if fault.fault == "error_event_mid_stream":
            await send({"error": {"code": "InternalServerError", "status": 500,
                                  "message": "Injected fault: error event mid-stream."}})
            await resp.write_eof()
            raise Aborted(resp)
        if fault.fault == "hang_mid_stream":
            await asyncio.sleep(fault.hang_s)
        _reset(request, resp)


_MID_STREAM = ("reset_mid_stream", "hang_mid_stream", "error_event_mid_stream")


def _check_operation(spec: DeploymentSpec, wanted: str) -> None:
    if spec.model_type != wanted:
        what = "embeddings" if wanted == "embeddings" else "chat completions"
        raise WireError(400, "OperationNotSupported",
                        f"Deployment '{spec.name}' serves {spec.model_type}, not {what}.")


def _renormalised(vector: list[float]) -> list[float]:
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm else vector


def _too_large(cap: int) -> WireError:
    return WireError(413, "RequestEntityTooLarge",
                     f"The request body is larger than {cap} bytes (after decompression).")


def _inflate(data: bytes, wbits: int, cap: int) -> bytes:
    """Inflate at most cap bytes: a small bomb never allocates more than the cap allows."""
    inflater = zlib.decompressobj(wbits)
    out = inflater.decompress(data, cap + 1)
    if len(out) > cap or inflater.unconsumed_tail:
        raise _too_large(cap)
    if not inflater.eof:
        raise zlib.error("incomplete or truncated stream")
    return out


def _decode_body(raw: bytes, content_encoding: str, cap: int) -> bytes:
    """Undo Content-Encoding (gzip, deflate, identity) with the body cap on inflated bytes.

    aiohttp's own decompression runs in its protocol parser, where a bad or unsupported
    encoding becomes a logged traceback instead of an answer; the server turns it off
    (auto_decompress=False) and decodes here, so every failure is an Azure-format 4xx.
    """
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):  # listed in the order they were applied
        try:
            if coding == "identity":
                continue
            if coding in ("gzip", "x-gzip"):
                raw = _inflate(raw, 16 + zlib.MAX_WBITS, cap)
            elif coding == "deflate":
                # RFC 9110 deflate is zlib-wrapped; some clients send raw deflate.
                try:
                    raw = _inflate(raw, zlib.MAX_WBITS, cap)
                except zlib.error:
                    raw = _inflate(raw, -zlib.MAX_WBITS, cap)
            else:
                raise WireError(415, "UnsupportedMediaType",
                                f"Content-Encoding {coding!r} is not supported here; send the "
                                "body uncompressed, gzip or deflate.")
        except zlib.error as exc:
            raise WireError(400, "BadRequest",
                            f"The request body is not valid {coding} data: {exc}") from None
    return raw


def _count_received(dep: Deployment, body: dict[str, Any]) -> None:
    dep.stats.received += 1
    dep.stats.in_flight += 1
    messages = body.get("messages")
    if isinstance(messages, list):
        last_user = next((message_text(m) for m in reversed(messages)
                          if isinstance(m, dict) and m.get("role") == "user"), "")
        dep.stats.prompts[last_user[:200]] += 1


def _gen_params(spec: DeploymentSpec, call: wire.ChatCall, max_tokens: int,
                t0: float) -> GenParams:
    """Request values, else the deployment's defaults."""
    d = spec.defaults

    def pick(value: Any, key: str, fallback: Any = None) -> Any:
        return value if value is not None else d.get(key, fallback)

    return GenParams(
        messages=call.messages,
        max_tokens=max_tokens,
        temperature=pick(call.temperature, "temperature"),
        top_p=pick(call.top_p, "top_p"),
        seed=pick(call.seed, "seed"),
        presence_penalty=pick(call.presence_penalty, "presence_penalty", 0.0),
        frequency_penalty=pick(call.frequency_penalty, "frequency_penalty", 0.0),
        extra=call.extra,
        t0=t0,
    )


_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def _header_list(names: Any) -> str:
    # Parameter names come from the client: never let one break (or inject into) a header.
    return ",".join(sorted(n if _SAFE_NAME.fullmatch(n) else "(unprintable)" for n in names))


def _reset(request: web.Request, response: web.StreamResponse | None = None) -> None:
    """Abort the TCP connection with an RST (SO_LINGER 0), then unwind the handler."""
    transport = request.transport
    if transport is not None:
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    raise Aborted(response)


async def _collect(gen: Any, gate: wire.OutputGate) -> tuple[str, str]:
    parts: list[str] = []
    reason: str | None = None
    try:
        async for piece in gen:
            out, reason = gate.feed(piece)
            parts.append(out)
            if reason is not None:
                break
    finally:
        await gen.aclose()
    if reason is None:
        tail, reason = gate.flush()
        parts.append(tail)
        reason = reason or gen.finish_reason
    return "".join(parts), reason


class _Oversized:
    """The `oversized_output` fault: far more text than max_tokens allows, as fast as possible."""

    def __init__(self, size_chars: int, prompt_tokens: int) -> None:
        self.size = size_chars
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self.finish_reason = "length"
        self.done = False
        self.headers: dict[str, str] = {}

    async def _run(self) -> Any:
        block = ("overflow " * 128)[:1000]
        left = self.size
        while left > 0:
            piece = block[: min(left, len(block))]
            left -= len(piece)
            self.completion_tokens += len(piece) // 4
            self.done = left <= 0
            yield piece
            await asyncio.sleep(0)

    def __aiter__(self) -> Any:
        return self._run()

    async def aclose(self) -> None:
        return None
