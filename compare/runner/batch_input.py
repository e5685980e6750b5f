"""Batch input files: a deployment's requests as JSONL, written line by line, split at the limits.

Each line is `{"custom_id", "method": "POST", "url": "/chat/completions", "body": {"model":
<deployment>, "messages": [...], parameters...}}`, the body built from the same `ChatRequest`
the online path would send (`plan.build_request`: deployment defaults, run overrides, prompt).
A part closes before a line would take it past 100,000 lines or 200 MB (Azure's limits for one
file); the text is UTF-8 without BOM. The custom_id is the record key, `"<prompt_id>#<repeat>"`
(the deployment is the file's), read back with `parse_custom_id`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

from compare.batch_settings import BATCH_URL, MAX_BYTES, MAX_LINES
from compare.deployments import RESERVED_BODY_KEYS
from compare.endpoints.base import ChatRequest
from compare.endpoints.deployment_endpoint import check_sendable
from compare.errors import BadRequestError, EndpointError
from compare.runner.plan import Requests, build_request, request_hash

_RESERVED_KEYS: Final = frozenset(RESERVED_BODY_KEYS)


def custom_id(prompt_id: str, repeat: int) -> str:
    """The line's custom_id for one key: unique per (prompt, repeat) within a deployment."""
    return f"{prompt_id}#{repeat}"


def parse_custom_id(value: Any) -> tuple[str, int] | None:
    """(prompt_id, repeat) of a custom_id made by `custom_id`, or None."""
    if not isinstance(value, str):
        return None
    prompt_id, sep, repeat = value.rpartition("#")
    if not sep or not repeat.isdigit():
        return None
    return prompt_id, int(repeat)


def request_line(cid: str, request: ChatRequest) -> bytes:
    """One input line (with its newline). `extra` goes last, as the online adapters send it
    (`check_sendable` refused keys that would replace the prompt or the model)."""
    # The same body the online adapters send (the request is built with stream=False).
    body = {**request.body(request.deployment), **request.extra}
    line = {"custom_id": cid, "method": "POST", "url": BATCH_URL, "body": body}
    return json.dumps(line, ensure_ascii=False, allow_nan=False,
                      separators=(",", ":")).encode("utf-8") + b"\n"


@dataclass
class InputPart:
    """One input file on disk: its lines' custom_ids and request fingerprints, its size."""

    path: Path
    lines: list[tuple[str, str | None]] = field(default_factory=list)
    size: int = 0


@dataclass
class Unsendable:
    """A job whose request cannot go into a file (not JSON, larger than a file may be)."""

    pidx: int
    repeat: int
    digest: str | None
    error: EndpointError


class _Writer:
    def __init__(self, directory: Path, stem: str, max_lines: int, max_bytes: int) -> None:
        self.directory, self.stem = directory, stem
        self.max_lines, self.max_bytes = max_lines, max_bytes
        self.parts: list[InputPart] = []
        self._file: IO[bytes] | None = None

    def add(self, cid: str, digest: str | None, data: bytes) -> None:
        part = self.parts[-1] if self.parts else None
        if (part is None or len(part.lines) >= self.max_lines
                or part.size + len(data) > self.max_bytes):
            part = self._next()
        assert self._file is not None
        self._file.write(data)
        part.lines.append((cid, digest))
        part.size += len(data)

    def _next(self) -> InputPart:
        self.close()
        part = InputPart(self.directory / f"{self.stem}-{len(self.parts) + 1}.jsonl")
        self._file = open(part.path, "wb")  # noqa: SIM115 - closed by the next part or close()
        self.parts.append(part)
        return part

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _sendable_line(cid: str, request: ChatRequest) -> bytes:
    """The line, or the BadRequestError the online path gives a request it cannot send
    (`check_sendable`, called only when needed: it serialises the request once more)."""
    if request.extra and not _RESERVED_KEYS.isdisjoint(request.extra):
        check_sendable(request)
    try:
        return request_line(cid, request)
    except (TypeError, ValueError, RecursionError) as e:
        check_sendable(request)
        raise BadRequestError(f"request cannot be written as JSON: {e}",
                              code="not_json") from None


def built(requests: Requests, pidx: int) -> tuple[ChatRequest, str | None]:
    """(request, fingerprint) like `Requests.get`, without keeping it: a 100,000-line batch
    holds its lines on disk, not 100,000 requests in memory."""
    request = build_request(requests.prompts[pidx], requests.deployment, requests.overrides,
                            stream=False)
    try:
        digest: str | None = request_hash(request)
    except Exception:  # unhashable oddity: never re-sent on resume, as online
        digest = None
    return request, digest


def write_parts(jobs: Iterable[tuple[int, int]], requests: Requests, prompt_ids: Sequence[str],
                directory: Path, stem: str, *, max_lines: int = MAX_LINES,
                max_bytes: int = MAX_BYTES) -> tuple[list[InputPart], list[Unsendable]]:
    """Write the jobs' requests into input files under `directory`, one line each, splitting
    at `max_lines` / `max_bytes`. Requests that cannot be sent come back as `Unsendable`."""
    writer = _Writer(directory, stem, max_lines, max_bytes)
    refused: list[Unsendable] = []
    try:
        for pidx, repeat in jobs:
            request, digest = built(requests, pidx)
            try:
                data = _sendable_line(custom_id(prompt_ids[pidx], repeat), request)
            except EndpointError as e:
                refused.append(Unsendable(pidx, repeat, digest, e))
                continue
            if len(data) > max_bytes:
                refused.append(Unsendable(pidx, repeat, digest, BadRequestError(
                    f"the request is {len(data):,} bytes as a batch line; a batch input file "
                    f"holds at most {max_bytes:,} bytes", code="line_too_large")))
                continue
            writer.add(custom_id(prompt_ids[pidx], repeat), digest, data)
    finally:
        writer.close()
    return writer.parts, refused
