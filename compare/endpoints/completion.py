"""Folding OpenAI-shaped answers (a whole body, or stream chunks) into a `Completion`.

A 2xx answer that is not shaped like a chat completion becomes an `unexpected_response`
EndpointError (not retryable: a server that answers so will answer so again); an answer without
`finish_reason` is an IncompleteStreamError carrying what arrived, never an `ok` row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, Final

from compare.endpoints.base import Completion
from compare.errors import EndpointError, IncompleteStreamError

MAX_MESSAGE: Final = 500


class ResponseShapeError(ValueError):
    """A 2xx answer that parsed but is not shaped like a chat completion (a JSON list, `choices`
    as a string, numeric content, ...). Raised while folding; adapters turn it into
    `unexpected_response`."""


def unexpected_response(
    error: Exception, model: str, headers: Mapping[str, str], *, partial: Completion | None = None
) -> EndpointError:
    """The EndpointError for a 2xx answer that is not a usable chat completion (not JSON, the
    wrong shape): not retryable, since a server that answers so will answer so again."""
    return EndpointError(
        f"unexpected response from {model!r}: {type(error).__name__}: {error}"[:MAX_MESSAGE],
        headers=dict(headers),
        partial=partial,
    )


def _shape(what: str, value: Any) -> ResponseShapeError:
    return ResponseShapeError(f"{what} is a {type(value).__name__}")


class Accumulator:
    """Folds OpenAI-shaped chunks (dicts) into a Completion, stamping perf_counter times.

    Anything not shaped as a chat completion raises ResponseShapeError, so a stray answer never
    puts a non-string into the text, model or finish_reason of a record.
    """

    def __init__(self, sent_at: float, *, streamed: bool) -> None:
        self.completion = Completion(sent_at=sent_at, streamed=streamed)
        self._parts: list[str] = []
        self._filters: dict[str, Any] = {}

    def add_chunk(self, chunk: Mapping[str, Any], now: float) -> None:
        if not isinstance(chunk, Mapping):
            raise _shape("the body", chunk)
        c = self.completion
        c.ended_at = now
        self.set_model(chunk.get("model"))
        self.add_usage(chunk.get("usage"))
        prompt_filters = chunk.get("prompt_filter_results")
        if prompt_filters:
            self._filters["prompt_filter_results"] = prompt_filters
        choices = chunk.get("choices") or ()
        if not isinstance(choices, list | tuple):
            raise _shape("choices", choices)
        for choice in choices:
            if not isinstance(choice, Mapping):
                raise _shape("a choice", choice)
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or choice.get("message") or {}
            if not isinstance(delta, Mapping):
                raise _shape("a choice's delta/message", delta)
            content = delta.get("content")
            if content:
                self.add_text(content, now)
            self.set_finish_reason(choice.get("finish_reason"))
            self.add_logprobs(choice.get("logprobs"))
            results = choice.get("content_filter_results")
            if results:
                self._filters["content_filter_results"] = results

    def set_model(self, model: Any) -> None:
        if model is None or model == "":
            return
        if not isinstance(model, str):
            raise _shape("model", model)
        self.completion.model = model

    def set_finish_reason(self, reason: Any) -> None:
        if reason is None or reason == "":
            return
        if not isinstance(reason, str):
            raise _shape("finish_reason", reason)
        self.completion.finish_reason = reason

    def add_text(self, content: str, now: float) -> None:
        if not isinstance(content, str):
            raise _shape("content", content)
        c = self.completion
        if c.first_token_at is None:
            c.first_token_at = now
        if c.streamed:
            c.chunk_times.append(now)
        self._parts.append(content)

    def add_logprobs(self, logprobs: Any) -> None:
        """Keep the token log probabilities a choice carries (streamed: chunk by chunk)."""
        content = logprobs.get("content") if isinstance(logprobs, Mapping) else None
        if not isinstance(content, list):
            return  # absent, null, or not the OpenAI shape: the answer stands without them
        c = self.completion
        c.logprobs = (c.logprobs or []) + [e for e in content if isinstance(e, Mapping)]

    def add_usage(self, usage: Any) -> None:
        if not usage:
            return
        get = usage.get if isinstance(usage, Mapping) else lambda k: getattr(usage, k, None)
        prompt, completion = get("prompt_tokens"), get("completion_tokens")
        # Counts only: a malformed usage block is dropped, it does not fail the answer.
        if isinstance(prompt, int) and not isinstance(prompt, bool) and prompt >= 0:
            self.completion.prompt_tokens = prompt
        if isinstance(completion, int) and not isinstance(completion, bool) and completion >= 0:
            self.completion.completion_tokens = completion

    def finish(self) -> Completion:
        """The Completion so far: final at the end of a body, partial when a stream broke."""
        c = self.completion
        c.text = "".join(self._parts)
        c.content_filter = dict(self._filters) if self._filters else None
        if not c.streamed:
            # A non-streamed answer has no chunks: its text arrives with the whole response.
            c.first_token_at = None
        return c


def require_finish(acc: Accumulator, deployment: str, headers: Mapping[str, str]) -> Completion:
    completion = acc.finish()
    if completion.finish_reason is None:
        raise IncompleteStreamError(
            f"the response from {deployment!r} ended without finish_reason "
            f"after {len(completion.text)} characters",
            headers=headers,
            partial=completion,
        )
    return completion


def embeddings_completion(
    body: Any, sent_at: float, headers: Mapping[str, str], *, n: int, model: str
) -> Completion:
    """An embeddings answer (`{data: [{index, embedding}], usage}`) as a Completion whose
    `embeddings` are in input order; anything else is an `unexpected_response`."""
    data = body.get("data") if isinstance(body, Mapping) else None
    try:
        if not isinstance(data, list) or len(data) != n:
            raise ResponseShapeError(f"expected {n} embeddings, got {_count(data)}")
        ordered = sorted(data, key=lambda item: int(item.get("index", 0)))
        vectors = [[float(x) for x in item["embedding"]] for item in ordered]
    except (ResponseShapeError, TypeError, ValueError, KeyError, AttributeError) as e:
        raise unexpected_response(e, model, headers) from None
    usage = body.get("usage") if isinstance(body, Mapping) else None
    prompt_tokens = usage.get("prompt_tokens") if isinstance(usage, Mapping) else None
    return Completion(
        sent_at=sent_at, ended_at=time.perf_counter(), finish_reason="stop",
        model=body.get("model") if isinstance(body.get("model"), str) else None,
        prompt_tokens=prompt_tokens if isinstance(prompt_tokens, int) else None,
        completion_tokens=0,  # embeddings generate no tokens: only input is priced
        headers=dict(headers), streamed=False, embeddings=vectors,
    )


def _count(data: Any) -> str:
    return str(len(data)) if isinstance(data, list) else type(data).__name__
