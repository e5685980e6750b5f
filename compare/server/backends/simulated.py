"""The `simulated` backend: seeded text on a configured schedule (TTFT, inter-token delays), and
hashed bag-of-words embeddings. No model at all: for fault tests and harness benchmarks.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
from collections.abc import AsyncIterator
from typing import Any

from compare.server.backends.base import GenParams, message_text, prompt_key
from compare.server.deployment_spec import DeploymentSpec, SimulatedSpec
from compare.server.structured_output import sample_json

_LOREM = (  # noqa: SIM905 (a sentence reads better than 62 quoted words)
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut "
    "labore et dolore magna aliqua enim ad minim veniam quis nostrud exercitation ullamco laboris "
    "nisi aliquip ex ea commodo consequat duis aute irure in reprehenderit voluptate velit esse "
    "cillum fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt culpa qui "
    "officia deserunt mollit anim id est laborum"
).split()
# A rare word (about 1 in 300 tokens) so an output content filter has something to catch.
RARE_WORD = "verboten"
_RARE_P = 1 / 300


class SimulatedGeneration:
    """Seeded words released on an absolute schedule: t0 + ttft, then + itl per word.

    Deadlines are absolute, so sleep overshoot never accumulates across a long stream.
    """

    def __init__(self, words: list[str], delays: list[float], t0: float, prompt_tokens: int,
                 finish_reason: str, headers: dict[str, str]) -> None:
        self._words = words
        self._deadlines: list[float] = []
        at = t0
        for d in delays:
            at += d
            self._deadlines.append(at)
        self.prompt_tokens = prompt_tokens
        self.completion_tokens = 0
        self._final_reason = finish_reason
        self.finish_reason = "stop"
        self.headers = headers
        self.done = False
        self._closed = False
        self.logprobs: list[dict[str, Any]] | None = None  # no model, no probabilities

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        for i, (word, deadline) in enumerate(zip(self._words, self._deadlines, strict=True)):
            if self._closed:
                return
            wait = deadline - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            self.completion_tokens += 1
            if i == len(self._words) - 1:
                self.finish_reason = self._final_reason
                self.done = True
            yield word if i == 0 else " " + word

    async def aclose(self) -> None:
        self._closed = True


class SimulatedBackend:
    """Seeded text with configured TTFT / inter-token delays; no model at all."""

    def __init__(self, spec: DeploymentSpec) -> None:
        assert spec.simulated is not None
        self.spec = spec
        self.sim: SimulatedSpec = spec.simulated
        self._counter = 0

    def unsupported_extra(self, extra: dict[str, Any]) -> list[str]:
        return []  # a simulated model accepts anything passed through

    def start(self, params: GenParams) -> SimulatedGeneration:
        key = prompt_key(params.messages)
        # Text depends only on the prompt and the request seed: the same prompt reads the same.
        text_seed = f"{self.sim.seed}:{key}:{params.seed}"
        text_rng = random.Random(hashlib.sha256(text_seed.encode()).digest())
        wanted = max(1, round(self.sim.output_tokens.sample(text_rng)))
        reply = self._reply(params.messages)
        if params.response_format is not None and reply is None:
            # Schema-valid JSON, split at its spaces (the generation joins words with one); a
            # scripted reply stays as scripted (a test's model that ignores the format).
            value = sample_json(params.response_format.schema, text_rng, _LOREM)
            reply = json.dumps(value).split(" ")
        if reply is not None:
            wanted = len(reply)
        n = min(wanted, params.max_tokens)
        words = reply[:n] if reply is not None else self._words(params.messages, text_rng, n)
        # Timing varies per request but is reproducible for the same sequence of requests.
        timing_rng = random.Random(self.sim.seed * 1_000_003 + self._next())
        ttft = self.sim.ttft_ms.sample(timing_rng) / 1000.0
        itls = [self.sim.itl_ms.sample(timing_rng) / 1000.0 for _ in range(n - 1)]
        headers = {
            # Planned delays, so timing tests can compare measured against configured.
            "x-compare-sim-ttft-ms": f"{ttft * 1000:.3f}",
            "x-compare-sim-decode-ms": f"{sum(itls) * 1000:.3f}",
            "x-compare-sim-tokens": str(n),
        }
        return SimulatedGeneration(
            words, [ttft, *itls], params.t0, self.count_prompt_tokens(params.messages),
            "length" if wanted > n else "stop", headers,
        )

    def _reply(self, messages: list[dict[str, Any]]) -> list[str] | None:
        """The words of the first `replies` rule matching the last user message, if any."""
        last_user = next((message_text(m) for m in reversed(messages)
                          if m.get("role") == "user"), "")
        for pattern, text in self.sim.replies:
            if pattern.search(last_user):
                return text.split() or ["."]
        return None

    def _words(self, messages: list[dict[str, Any]], rng: random.Random, n: int) -> list[str]:
        if self.sim.text == "echo":
            last_user = next((message_text(m) for m in reversed(messages)
                              if m.get("role") == "user"), "")
            source = last_user.split() or ["echo"]
            return [source[i % len(source)] for i in range(n)]
        return [RARE_WORD if rng.random() < _RARE_P else rng.choice(_LOREM) for _ in range(n)]

    def embedding_dimensions(self) -> int:
        """Size of the vectors `embed` returns."""
        return self.sim.dimensions

    def count_input_tokens(self, texts: list[str]) -> int:
        """Whitespace words: the simulated tokenizer."""
        return sum(len(t.split()) for t in texts)

    async def embed(self, texts: list[str], t0: float) -> list[list[float]]:
        """Hashed bag of words and character trigrams, L2-normalised, after a TTFT-like delay.

        Not a language model, but texts sharing words get close vectors, so similarity code
        can be exercised honestly.
        """
        rng = random.Random(self.sim.seed * 1_000_003 + self._next())
        delay = self.sim.ttft_ms.sample(rng) / 1000.0
        wait = t0 + delay - asyncio.get_running_loop().time()
        if wait > 0:
            await asyncio.sleep(wait)
        return [_hash_vector(text, self.sim.dimensions) for text in texts]

    def _next(self) -> int:
        self._counter += 1
        return self._counter

    @staticmethod
    def count_prompt_tokens(messages: list[dict[str, Any]]) -> int:
        # A simple, deterministic "tokenizer": words plus a few tokens of chat framing per message.
        return sum(len(message_text(m).split()) + 4 for m in messages) + 2


def _hash_vector(text: str, size: int) -> list[float]:
    vector = [0.0] * size
    for word in text.lower().split():
        grams = [word] + [word[i:i + 3] for i in range(max(1, len(word) - 2))]
        for j, gram in enumerate(grams):
            digest = hashlib.blake2b(gram.encode("utf-8", "replace"), digest_size=8).digest()
            index = int.from_bytes(digest[:4], "little") % size
            sign = 1.0 if digest[4] & 1 else -1.0
            vector[index] += sign * (1.0 if j == 0 else 0.5)
    norm = sum(v * v for v in vector) ** 0.5
    return [v / norm for v in vector] if norm else vector
