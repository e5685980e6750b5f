"""Chat completions on the three routes (inference, Azure OpenAI, v1): checks in Azure's order,
then a JSON answer or an SSE stream, token by token, with stop sequences, the content filter and
injected faults applied on the way out.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from compare.server.azure_errors import WireError
from compare.server.backends.base import Generation, GenParams, message_text, prompt_key
from compare.server.content_filter import OutputGate, prompt_filter_error
from compare.server.deployment_spec import DeploymentSpec, FaultRule
from compare.server.faults import (
    MID_STREAM_FAULTS,
    OversizedGeneration,
    reset_connection,
    strike_early,
    strike_mid_stream,
)
from compare.server.limits import admit
from compare.server.request_body import read_object
from compare.server.served import RequestContext, ServedDeployment, context, state
from compare.server.spec import AZURE_OPENAI, INFERENCE, ChatCall, ResponseShape, parse_chat, usage

_SAFE_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")


@dataclass
class ChatJob:
    """A validated chat request for one deployment, before it reaches the backend."""

    dep: ServedDeployment
    call: ChatCall
    max_tokens: int
    prompt_text: str


def check_online(spec: DeploymentSpec) -> None:
    """A global-batch deployment answers batch jobs only: Azure's 400 for an online call."""
    if spec.is_batch:
        operation = "chatCompletion" if spec.model_type == "chat-completion" else "embeddings"
        raise WireError(400, "OperationNotSupported",
                        f"The {operation} operation does not work with the specified model, "
                        f"{spec.model}: deployment '{spec.name}' is a global-batch deployment. "
                        "Send its requests in a batch (POST /openai/files, then "
                        "/openai/batches), or call a standard deployment.")


def check_operation(spec: DeploymentSpec, wanted: str) -> None:
    """400 OperationNotSupported when the deployment serves another model type."""
    if spec.model_type != wanted:
        what = "embeddings" if wanted == "embeddings" else "chat completions"
        raise WireError(400, "OperationNotSupported",
                        f"Deployment '{spec.name}' serves {spec.model_type}, not {what}.")


def header_list(names: Any) -> str:
    """Parameter names for a response header; names come from the client, so one that could
    break (or inject into) a header is shown as (unprintable)."""
    return ",".join(sorted(n if _SAFE_NAME.fullmatch(n) else "(unprintable)" for n in names))


def prepare(dep: ServedDeployment, body: dict[str, Any], dialect: str,
            extra_mode: str | None) -> ChatJob:
    """Validate a chat body for `dep`: operation, parameters, prompt filter, extra parameters."""
    check_operation(dep.spec, "chat-completion")
    call = parse_chat(body, dialect, extra_mode)
    spec = dep.spec
    max_tokens = min(call.max_tokens or spec.defaults.get("max_tokens", 256),
                     spec.max_output_tokens)
    prompt_text = "\n".join(message_text(m) for m in call.messages)
    for rule in spec.content_filter:
        if "prompt" in rule.on and rule.search(prompt_text):
            raise prompt_filter_error(spec.name, rule)
    unsupported = dep.backend.unsupported_extra(call.extra)
    if unsupported:
        raise WireError(422, "UnsupportedParameter",
                        f"The model of deployment '{spec.name}' does not accept parameter(s)"
                        f" {', '.join(unsupported)}.", param=unsupported[0])
    return ChatJob(dep, call, max_tokens, prompt_text)


def start(job: ChatJob, t0: float) -> Generation:
    """Hand the job to the deployment's backend (request values, else the deployment's
    defaults)."""
    d = job.dep.spec.defaults
    call = job.call

    def pick(value: Any, key: str, fallback: Any = None) -> Any:
        return value if value is not None else d.get(key, fallback)

    params = GenParams(
        messages=call.messages,
        max_tokens=job.max_tokens,
        temperature=pick(call.temperature, "temperature"),
        top_p=pick(call.top_p, "top_p"),
        seed=pick(call.seed, "seed"),
        presence_penalty=pick(call.presence_penalty, "presence_penalty", 0.0),
        frequency_penalty=pick(call.frequency_penalty, "frequency_penalty", 0.0),
        extra=call.extra,
        t0=t0,
        response_format=call.response_format,
        top_logprobs=call.top_logprobs,
    )
    try:
        return job.dep.backend.start(params)
    except ValueError as exc:  # the prompt does not fit the context window
        raise WireError(400, "context_length_exceeded", str(exc), param="messages") from None


def output_gate(job: ChatJob) -> OutputGate:
    """Stop sequences (the request's, else the deployment's) and the completion filter."""
    spec = job.dep.spec
    return OutputGate(job.call.stop or list(spec.defaults.get("stop", [])), spec.content_filter)


async def collect(gen: Any, gate: OutputGate) -> tuple[str, str]:
    """The whole text of a generation through `gate`, and its finish reason."""
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


def _count_received(dep: ServedDeployment, body: dict[str, Any]) -> None:
    dep.stats.received += 1
    dep.stats.in_flight += 1
    messages = body.get("messages")
    if isinstance(messages, list):
        last_user = next((message_text(m) for m in reversed(messages)
                          if isinstance(m, dict) and m.get("role") == "user"), "")
        dep.stats.prompts[last_user[:200]] += 1


async def handle_chat(request: web.Request, dialect: str) -> web.StreamResponse:
    """POST .../chat/completions in `dialect`."""
    ctx = context(request)
    endpoint = state(request)
    body = await read_object(request, endpoint.config.max_body_bytes)
    dep = endpoint.pick(request, body.get("model") if dialect != AZURE_OPENAI else None)
    ctx.deployment = dep
    _count_received(dep, body)
    check_online(dep.spec)
    job = prepare(dep, body, dialect, request.headers.get("extra-parameters"))
    ctx.stream = job.call.stream
    if job.call.extra:
        ctx.headers["x-compare-passed-parameters"] = header_list(job.call.extra)
    if job.call.dropped:
        ctx.headers["x-compare-dropped-parameters"] = header_list(job.call.dropped)
    # Like Azure: a request counts its prompt estimate plus max_tokens against TPM.
    admit(dep.limiter, dep.spec.name, asyncio.get_running_loop().time(),
          len(job.prompt_text) // 4 + job.max_tokens)
    fault = dep.faults.pick(prompt_key(job.call.messages), job.prompt_text) \
        if dep.faults else None
    if fault is not None:
        ctx.fault = fault.fault
        dep.stats.faults[fault.fault] += 1
        await strike_early(request, dep.spec.name, fault)
    async with dep.turn():
        return await _answer(request, ctx, job, dialect, fault)


async def _answer(request: web.Request, ctx: RequestContext, job: ChatJob, dialect: str,
                  fault: FaultRule | None) -> web.StreamResponse:
    dep = job.dep
    # A request that waited for its turn starts its simulated schedule when the turn came.
    t0 = ctx.t0 if dep.online_slots is None else asyncio.get_running_loop().time()
    gen: Any = start(job, t0)
    ctx.headers.update(gen.headers)
    ctx.prompt_tokens = gen.prompt_tokens
    shape = ResponseShape(dialect=dialect, id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
                          created=int(time.time()), model=dep.spec.model,
                          filtered_deployment=bool(dep.spec.content_filter))
    if fault is not None and fault.fault == "oversized_output":
        gen = OversizedGeneration(fault.size_chars, gen.prompt_tokens)
    if job.call.stream:
        return await _Stream(request, ctx, shape, gen, output_gate(job), job.call, fault).run()
    return await _complete(request, ctx, shape, gen, output_gate(job), fault,
                           job.call.top_logprobs is not None)


async def _complete(request: web.Request, ctx: RequestContext, shape: ResponseShape,
                    gen: Any, gate: OutputGate, fault: FaultRule | None,
                    want_logprobs: bool = False) -> web.StreamResponse:
    text, reason = await collect(gen, gate)
    ctx.completion_tokens = gen.completion_tokens
    if fault is not None and fault.fault == "no_finish_reason":
        reason = None
    # The tokens the client got (a stop sequence may end the text before the model stopped).
    logprobs = getattr(gen, "logprobs", None) if want_logprobs else None
    body = shape.completion(text, reason, usage(gen.prompt_tokens, gen.completion_tokens),
                            gate.hit, logprobs[:gen.completion_tokens] if logprobs else None)
    payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
    headers = state(request).headers(ctx)
    if fault is not None and fault.fault in ("reset_mid_stream", "hang_mid_stream"):
        # Headers and half the body, then the connection dies (or hangs, then dies).
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = "application/json"
        resp.content_length = len(payload)
        await resp.prepare(request)
        await resp.write(payload[: len(payload) // 2])
        if fault.fault == "hang_mid_stream":
            await asyncio.sleep(fault.hang_s)
        reset_connection(request, resp)
    return web.Response(body=payload, status=200, headers=headers,
                        content_type="application/json")


class _Stream:
    """One SSE answer: a chunk per token, finish_reason on the last content chunk, then usage
    (when asked) and [DONE]; stream-shaped faults (CRLF, comments, mid-stream breaks) applied."""

    def __init__(self, request: web.Request, ctx: RequestContext, shape: ResponseShape,
                 gen: Any, gate: OutputGate, call: ChatCall, fault: FaultRule | None) -> None:
        self.request, self.ctx, self.shape, self.gen, self.gate = request, ctx, shape, gen, gate
        self.call = call
        self.fault_name = fault.fault if fault is not None else None
        self.mid_fault = fault if self.fault_name in MID_STREAM_FAULTS else None
        self.eol = "\r\n" if self.fault_name == "crlf" else "\n"
        self.comment = f": keep-alive{self.eol}{self.eol}" \
            if self.fault_name == "sse_comments" else ""
        self.no_finish = self.fault_name == "no_finish_reason"
        self.first = True
        self.resp = web.StreamResponse(status=200, headers=state(request).headers(ctx))

    async def run(self) -> web.StreamResponse:
        """Send the whole stream; returns the prepared response."""
        self.resp.content_type = "text/event-stream"
        self.resp.headers["Cache-Control"] = "no-cache"
        await self.resp.prepare(self.request)
        if self.shape.filtered_deployment and self.shape.dialect != INFERENCE:
            await self.send(self.shape.prompt_filter_chunk())
        finished = await self._pump()
        gen = self.gen
        self.ctx.completion_tokens = gen.completion_tokens
        if not finished:
            # Ended on end-of-generation: one more chunk carries the finish_reason.
            tail, reason = self.gate.flush()
            if self.mid_fault is not None:
                await strike_mid_stream(self.request, self.resp, self.mid_fault, self.send)
            await self._content(tail, reason or gen.finish_reason, True)
        if self.call.include_usage and self.shape.dialect != INFERENCE and not self.no_finish:
            await self.send(self.shape.usage_chunk(usage(gen.prompt_tokens,
                                                         gen.completion_tokens)))
        await self.send("[DONE]")
        await self.resp.write_eof()
        return self.resp

    async def _pump(self) -> bool:
        """Relay pieces until the last one; True when the last content chunk was sent."""
        gen, sent, last = self.gen, 0, False
        try:
            async for piece in gen:
                out, reason = self.gate.feed(piece)
                # The simulated backend knows its last token ahead, llama knows it at
                # max_tokens: then finish_reason rides on the last content chunk itself.
                last = reason is not None or (gen.done and not self.gate.pending)
                if self.mid_fault is not None and (sent >= self.mid_fault.after_tokens or last):
                    await strike_mid_stream(self.request, self.resp, self.mid_fault, self.send)
                if out or last:
                    await self._content(out, (reason or gen.finish_reason) if last else None,
                                        last)
                    sent += 1
                if last:
                    break
        finally:
            await gen.aclose()
        return last

    async def send(self, obj: dict[str, Any] | str) -> None:
        """One SSE event (`data: ...`)."""
        data = obj if isinstance(obj, str) else json.dumps(obj, ensure_ascii=False)
        await self.resp.write(f"{self.comment}data: {data}{self.eol}{self.eol}".encode())

    async def _content(self, text: str | None, reason: str | None, last: bool) -> None:
        gen, shape = self.gen, self.shape
        if not self.first and not last and text:
            await self.send(shape.middle_chunk(text, gen.prompt_tokens, gen.completion_tokens))
            return
        # The 2024-05-01-preview inference spec requires `usage` on every streamed update (and
        # forbids empty `choices`): running counts, final on the last chunk.
        inline = usage(gen.prompt_tokens, gen.completion_tokens) \
            if shape.dialect == INFERENCE else None
        await self.send(shape.chunk(text, first=self.first,
                                    finish_reason=None if self.no_finish else reason,
                                    hit=self.gate.hit, final=last, usage=inline))
        if self.first and text:
            self.ctx.ttft_s = asyncio.get_running_loop().time() - self.ctx.t0
            self.first = False

