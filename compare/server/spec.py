"""The wire format of the local endpoint: request parsing, response bodies, errors, SSE chunks.

Two dialects share one shape: the Azure AI model inference API (`/chat/completions`; streamed
objects say `chat.completion` per its spec, usage rides on the last chunk) and Azure OpenAI / the v1
surface (`chat.completion.chunk`; usage in an extra chunk with empty `choices` when
`stream_options.include_usage` is set). tests/server validates every body against the official
specs kept in tests/specs/.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from compare.server.azure_errors import WireError, bad
from compare.server.content_filter import filter_results
from compare.server.deployment_spec import FilterRule
from compare.server.structured_output import (
    ResponseFormat,
    parse_logprobs,
    parse_response_format,
)

INFERENCE = "azure-inference"
AZURE_OPENAI = "azure-openai"
OPENAI_V1 = "openai-v1"

# Body parameters each dialect defines; anything else is an "extra parameter".
INFERENCE_PARAMS = frozenset({
    "messages", "frequency_penalty", "stream", "presence_penalty", "temperature", "top_p",
    "max_tokens", "response_format", "stop", "tools", "tool_choice", "seed", "model",
    "modalities",
    # Not in the 2024-05-01 spec, but the service accepts it and clients send it for usage.
    "stream_options",
})
OPENAI_PARAMS = INFERENCE_PARAMS | frozenset({
    "n", "logprobs", "top_logprobs", "user", "logit_bias", "max_completion_tokens",
    "parallel_tool_calls", "functions", "function_call", "data_sources", "store", "metadata",
    "service_tier", "prediction", "reasoning_effort",
})
ROLES = ("system", "user", "assistant", "tool", "developer", "function")
EXTRA_MODES = ("error", "drop", "pass-through")
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$|^(preview|latest|v1)$")


def check_api_version(request: Any, required: bool) -> None:
    """The `api-version` query parameter: present where the route needs it, well-formed."""
    version = request.query.get("api-version")
    if version is None:
        if required:
            base = f"{request.url.origin()}/openai/v1"
            raise WireError(400, "MissingApiVersionParameter",
                            "The api-version query parameter (?api-version=) is required "
                            f"for all requests to {request.path}. An OpenAI v1 client (one "
                            f"that sends no api-version) belongs under /openai/v1: use "
                            f"base_url={base} (compare: --kind openai --endpoint {base}).",
                            param="api-version")
        return
    if not API_VERSION_RE.match(version):
        raise WireError(400, "UnsupportedApiVersion",
                        f"Unsupported api-version {version!r}.", param="api-version")


@dataclass
class ChatCall:
    """A validated chat request."""

    messages: list[dict[str, Any]]
    stream: bool = False
    include_usage: bool = False
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # passed through to the backend
    dropped: list[str] = field(default_factory=list)
    response_format: ResponseFormat | None = None
    top_logprobs: int | None = None  # None: no log probabilities asked for


def _number(body: dict[str, Any], key: str, lo: float, hi: float) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise bad(f"'{key}' must be a number, got {json.dumps(value)[:40]}", key)
    if not lo <= value <= hi:
        raise bad(f"'{key}' must be between {lo:g} and {hi:g}, got {value}", key)
    return float(value)


def _integer(body: dict[str, Any], key: str, lo: int, hi: int = 2**31 - 1) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"'{key}' must be an integer, got {json.dumps(value)[:40]}", key)
    if not lo <= value <= hi:
        raise bad(f"'{key}' must be between {lo} and {hi}, got {value}", key)
    return value


def _messages(value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise bad("'messages' must be a non-empty array", "messages")
    for i, message in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad(f"'{where}' must be an object", where)
        role = message.get("role")
        if role not in ROLES:
            raise bad(f"'{where}.role' must be one of {', '.join(ROLES)}", f"{where}.role")
        content = message.get("content")
        if content is None:
            if role != "assistant":
                raise bad(f"'{where}.content' is required", f"{where}.content")
        elif isinstance(content, list):
            for j, part in enumerate(content):
                ptype = part.get("type") if isinstance(part, dict) else None
                if ptype != "text" or not isinstance(part.get("text"), str):
                    raise bad(
                        f"'{where}.content[{j}]': this deployment accepts text parts only "
                        f"({{'type': 'text', 'text': ...}})",
                        f"{where}.content",
                    )
        elif not isinstance(content, str):
            raise bad(f"'{where}.content' must be a string or an array of parts",
                      f"{where}.content")
        texts = [content] if isinstance(content, str) else \
            [p["text"] for p in content or ()]
        for text in texts:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise bad(f"'{where}.content' is not valid Unicode (lone surrogate)",
                          f"{where}.content") from None
    return value


def parse_chat(body: Any, dialect: str, extra_mode: str | None) -> ChatCall:
    """Validate a chat body; apply the `extra-parameters` mode to unknown keys."""
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object", code="BadRequest")
    known = INFERENCE_PARAMS if dialect == INFERENCE else OPENAI_PARAMS
    call = ChatCall(messages=_messages(body.get("messages")))
    call.extra, call.dropped = _extra(body, known, dialect, extra_mode)
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise bad("'stream' must be a boolean", "stream")
    call.stream = bool(stream)
    options = body.get("stream_options")
    if options is not None:
        if not isinstance(options, dict) or not isinstance(options.get("include_usage", False),
                                                           bool):
            raise bad("'stream_options' must be an object like {'include_usage': true}",
                      "stream_options")
        call.include_usage = bool(options.get("include_usage", False))
    call.temperature = _number(body, "temperature", 0, 2)
    call.top_p = _number(body, "top_p", 0, 1)
    call.presence_penalty = _number(body, "presence_penalty", -2, 2)
    call.frequency_penalty = _number(body, "frequency_penalty", -2, 2)
    call.max_tokens = _integer(body, "max_tokens", 1)
    mct = _integer(body, "max_completion_tokens", 1)
    if mct is not None:
        call.max_tokens = mct
    call.seed = _integer(body, "seed", -(2**63), 2**63 - 1)
    n = _integer(body, "n", 1, 128)
    if n not in (None, 1):
        raise bad("This deployment generates one choice per request ('n' must be 1)", "n")
    call.top_logprobs = parse_logprobs(body, call.extra)
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None:
        if not isinstance(stop, list) or len(stop) > 4 or \
                not all(isinstance(s, str) and s for s in stop):
            raise bad("'stop' must be a string or up to 4 non-empty strings", "stop")
        call.stop = stop
    model = body.get("model")
    if model is not None and not isinstance(model, str):
        raise bad("'model' must be a string", "model")
    call.response_format = parse_response_format(body)
    return call


EMBED_INFERENCE_PARAMS = frozenset({"input", "dimensions", "encoding_format", "input_type",
                                    "model"})
EMBED_OPENAI_PARAMS = EMBED_INFERENCE_PARAMS | {"user"}


@dataclass
class EmbedCall:
    inputs: list[str]
    dimensions: int | None = None
    encoding_format: str = "float"  # float | base64
    extra: dict[str, Any] = field(default_factory=dict)
    dropped: list[str] = field(default_factory=list)


def _extra(body: dict[str, Any], known: frozenset[str], dialect: str,
           extra_mode: str | None) -> tuple[dict[str, Any], list[str]]:
    """Apply the `extra-parameters` mode: (passed through, dropped), or raise for `error`."""
    mode = extra_mode or "error"
    if mode not in EXTRA_MODES:
        raise bad(f"The 'extra-parameters' header must be one of {', '.join(EXTRA_MODES)}",
                  "extra-parameters")
    unknown = [k for k in body if k not in known]
    if unknown and mode == "error":
        name = unknown[0]
        if dialect == INFERENCE:
            message = (f"Extra parameter '{name}' is not allowed when the 'extra-parameters' "
                       "header is 'error' (the default). Send 'extra-parameters: drop' to ignore "
                       "it or 'pass-through' to pass it to the model.")
        else:
            message = f"Unrecognized request argument supplied: {name}"
        raise WireError(400, "UnknownParameter", message, param=name)
    if mode == "pass-through":
        return {k: body[k] for k in unknown}, []
    return {}, unknown


def parse_embeddings(body: Any, dialect: str, extra_mode: str | None,
                     native_dimensions: int) -> EmbedCall:
    if not isinstance(body, dict):
        raise bad("The request body must be a JSON object", code="BadRequest")
    known = EMBED_INFERENCE_PARAMS if dialect == INFERENCE else EMBED_OPENAI_PARAMS
    extra, dropped = _extra(body, known, dialect, extra_mode)
    inputs = body.get("input")
    if isinstance(inputs, str) and dialect != INFERENCE:
        inputs = [inputs]
    if not isinstance(inputs, list) or not inputs or len(inputs) > 2048 or \
            not all(isinstance(t, str) and t for t in inputs):
        raise bad("'input' must be a non-empty array of non-empty strings (token arrays are "
                  "not supported)", "input")
    for text in inputs:
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            raise bad("'input' is not valid Unicode (lone surrogate)", "input") from None
    dimensions = _integer(body, "dimensions", 1, 1 << 20)
    if dimensions is not None and dimensions > native_dimensions:
        raise WireError(422, "UnsupportedParameter",
                        f"This model returns at most {native_dimensions} dimensions.",
                        param="dimensions")
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise WireError(422, "UnsupportedParameter",
                        "This model returns 'float' or 'base64' embeddings only.",
                        param="encoding_format")
    input_type = body.get("input_type")
    if input_type is not None and input_type not in ("text", "query", "document"):
        raise bad("'input_type' must be text, query or document", "input_type")
    return EmbedCall(inputs, dimensions, fmt, extra, dropped)


# ---------------------------------------------------------------- responses


@dataclass
class ResponseShape:
    """Builds the bodies of one response in the dialect of its route."""

    dialect: str
    id: str
    created: int
    model: str
    filtered_deployment: bool  # the deployment has a content filter: report its results

    @property
    def chunk_object(self) -> str:
        # The inference spec's StreamingChatCompletionsUpdate enumerates only "chat.completion".
        return "chat.completion" if self.dialect == INFERENCE else "chat.completion.chunk"

    def _head(self, obj: str) -> dict[str, Any]:
        return {"id": self.id, "object": obj, "created": self.created, "model": self.model,
                "system_fingerprint": "compare-local"}

    def completion(self, text: str, finish_reason: str | None, usage: dict[str, int],
                   hit: FilterRule | None, logprobs: list[dict[str, Any]] | None = None
                   ) -> dict[str, Any]:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text, "refusal": None},
            "finish_reason": finish_reason,
            "logprobs": {"content": logprobs, "refusal": None} if logprobs is not None else None,
        }
        if self.filtered_deployment:
            choice["content_filter_results"] = filter_results(hit, prompt=False)
        body = self._head("chat.completion")
        body["choices"] = [choice]
        body["usage"] = usage
        if self.filtered_deployment and self.dialect != INFERENCE:
            body["prompt_filter_results"] = self.prompt_filter_results()
        return body

    def prompt_filter_results(self) -> list[dict[str, Any]]:
        return [{"prompt_index": 0, "content_filter_results": filter_results(None, prompt=True)}]

    def chunk(self, content: str | None, *, first: bool = False,
              finish_reason: str | None = None, hit: FilterRule | None = None,
              usage: dict[str, int] | None = None, final: bool = False) -> dict[str, Any]:
        delta: dict[str, Any] = {}
        if first:
            delta["role"] = "assistant"
        if content is not None:
            delta["content"] = content
        choice: dict[str, Any] = {"index": 0, "delta": delta, "finish_reason": finish_reason,
                                  "logprobs": None}
        if final and self.filtered_deployment:
            choice["content_filter_results"] = filter_results(hit, prompt=False)
        body = self._head(self.chunk_object)
        body["choices"] = [choice]
        if usage is not None:
            body["usage"] = usage
        return body

    def middle_chunk(self, content: str, prompt_tokens: int, completion_tokens: int) -> str:
        """JSON of a content chunk that is neither first nor last, from a cached template.

        Same bytes as json.dumps(self.chunk(...)) but only the content is encoded per token:
        a stream of 256 concurrent requests spends its server CPU here.
        """
        parts = self.__dict__.get("_middle_parts")
        if parts is None:
            usage_ = {"prompt_tokens": -111, "completion_tokens": -222, "total_tokens": -333} \
                if self.dialect == INFERENCE else None
            text = json.dumps(self.chunk("\x00", usage=usage_), ensure_ascii=False)
            head, tail = text.split('"\\u0000"')
            parts = (head, tail)
            self.__dict__["_middle_parts"] = parts
        head, tail = parts
        if self.dialect == INFERENCE:
            tail = tail.replace("-111", str(prompt_tokens), 1).replace(
                "-222", str(completion_tokens), 1).replace(
                "-333", str(prompt_tokens + completion_tokens), 1)
        return head + json.dumps(content, ensure_ascii=False) + tail

    def usage_chunk(self, usage: dict[str, int]) -> dict[str, Any]:
        body = self._head(self.chunk_object)
        body["choices"] = []
        body["usage"] = usage
        return body

    def prompt_filter_chunk(self) -> dict[str, Any]:
        body = self._head(self.chunk_object)
        body["choices"] = []
        body["prompt_filter_results"] = self.prompt_filter_results()
        return body


def usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}
