"""An in-memory ScoringContext for unit tests of the model-based scorers' logic.

Replies are scripted by a function of (deployment, messages); every call is recorded with its
call_key, so tests can check what was asked, in which order, and that keys are stable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compare.scorers import JudgeReply, ScoringCallError

Chat = Callable[[str, list[dict[str, Any]]], "JudgeReply | str | Exception"]
Embed = Callable[[str, list[str]], "list[list[float]] | Exception"]


@dataclass
class FakeContext:
    reply: Chat | None = None
    vectors: Embed | None = None
    chats: list[dict[str, Any]] = field(default_factory=list)
    embeds: list[dict[str, Any]] = field(default_factory=list)

    async def chat(self, deployment: str, messages: list[dict[str, Any]], *, call_key: str,
                   temperature: float = 0.0, seed: int | None = 0,
                   max_tokens: int | None = None, response_format: dict[str, Any] | None = None,
                   top_logprobs: int | None = None) -> JudgeReply:
        self.chats.append({"deployment": deployment, "messages": messages, "call_key": call_key,
                           "temperature": temperature, "seed": seed, "max_tokens": max_tokens,
                           "response_format": response_format, "top_logprobs": top_logprobs})
        assert self.reply is not None, "no chat reply scripted"
        out = self.reply(deployment, messages)
        if isinstance(out, Exception):
            raise out
        return out if isinstance(out, JudgeReply) else JudgeReply(out)

    async def embed(self, deployment: str, texts: list[str], *, call_key: str
                    ) -> list[list[float]]:
        self.embeds.append({"deployment": deployment, "texts": texts, "call_key": call_key})
        assert self.vectors is not None, "no embeddings scripted"
        out = self.vectors(deployment, texts)
        if isinstance(out, Exception):
            raise out
        return out


def failing(message: str = "judge deployment unreachable") -> ScoringCallError:
    return ScoringCallError(message)
