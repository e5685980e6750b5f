"""Raw HTTP helpers for wire-level tests (aiohttp client, no SDK in between)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import aiohttp

INFERENCE_QS = "?api-version=2024-05-01-preview"
AOAI_QS = "?api-version=2024-10-21"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes
    events: list[str] = field(default_factory=list)  # SSE data payloads, in order

    @property
    def json(self) -> Any:
        return json.loads(self.raw)

    @property
    def chunks(self) -> list[dict[str, Any]]:
        return [json.loads(e) for e in self.events if e != "[DONE]"]


def route(kind: str, name: str) -> str:
    if kind == "inference":
        return f"/chat/completions{INFERENCE_QS}"
    if kind == "azure-openai":
        return f"/openai/deployments/{name}/chat/completions{AOAI_QS}"
    return "/openai/v1/chat/completions"


def body(name: str, text: str = "Hello there", **kw: Any) -> dict[str, Any]:
    return {"model": name, "messages": [{"role": "user", "content": text}], **kw}


def parse_sse(raw: bytes) -> list[str]:
    events = []
    for block in raw.decode("utf-8").replace("\r\n", "\n").split("\n\n"):
        for line in block.split("\n"):
            if line.startswith("data: "):
                events.append(line[6:])
    return events


async def call(ep: Any, method: str, path: str, payload: Any = None, *,
               headers: dict[str, str] | None = None, key: bool = True,
               data: bytes | None = None, timeout: float = 30) -> Reply:
    hdrs = {"api-key": ep.api_key} if key else {}
    hdrs.update(headers or {})
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as session, \
            session.request(method, ep.url + path, json=payload if data is None else None,
                            data=data, headers=hdrs) as resp:
        raw = await resp.read()
        reply = Reply(resp.status, {k.lower(): v for k, v in resp.headers.items()}, raw)
    if reply.headers.get("content-type", "").startswith("text/event-stream"):
        reply.events = parse_sse(raw)
    return reply


async def chat(ep: Any, name: str, kind: str = "inference", **kw: Any) -> Reply:
    headers = kw.pop("headers", None)
    text = kw.pop("text", "Hello there")
    return await call(ep, "POST", route(kind, name), body(name, text, **kw), headers=headers)
