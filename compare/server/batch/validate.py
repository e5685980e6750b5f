"""Checks on a batch input file before its job runs, with the error codes Azure uses:
invalid_json_line, invalid_request, url_mismatch, duplicate_custom_id, model_mismatch,
too_many_tasks, empty_file, model_not_found. Streams the file; remembers only the custom ids."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from compare.server.backends.base import message_text
from compare.server.batch.jobs import BatchFailure

MAX_LINES = 100_000  # Azure's limit of requests per batch file
MAX_REPORTED = 20  # line errors listed in `errors.data` before validation stops


@dataclass
class ValidatedInput:
    """What validation learnt: the deployment every line names, the line count, the tokens."""

    model: str
    lines: int
    tokens: int


def same_url(a: str, b: str) -> bool:
    """Batch URLs compare without a leading /v1 (the v1 surface's spelling)."""
    def bare(url: str) -> str:
        return url[3:] if url.startswith("/v1/") else url

    return bare(a) == bare(b)


def estimate_tokens(body: dict[str, Any]) -> int:
    """Input tokens of one request, estimated as Azure's quota does before running it: about
    four characters per token."""
    messages = body.get("messages")
    if not isinstance(messages, list):
        return 1
    text = "".join(message_text(m) for m in messages if isinstance(m, dict))
    return len(text) // 4 + 1


class _Checker:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.ids: set[str] = set()
        self.model: str | None = None
        self.errors: list[BatchFailure] = []
        self.lines = 0
        self.tokens = 0

    def line(self, number: int, raw: str) -> None:
        try:
            item = json.loads(raw)
        except (ValueError, RecursionError):
            item = None
        if not isinstance(item, dict):
            raise BatchFailure("invalid_json_line", "This line is not a JSON object.", number)
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not custom_id:
            raise BatchFailure("invalid_request", "custom_id must be a non-empty string.",
                               number, "custom_id")
        if item.get("method") != "POST":
            raise BatchFailure("invalid_request", "method must be POST.", number, "method")
        url = item.get("url")
        if not isinstance(url, str) or not same_url(url, self.endpoint):
            raise BatchFailure("url_mismatch", f"The url {url!r} does not match the batch's "
                               f"endpoint {self.endpoint!r}.", number, "url")
        body = item.get("body")
        if not isinstance(body, dict) or not isinstance(body.get("model"), str):
            raise BatchFailure("invalid_request", "body must be an object whose model names "
                               "the global-batch deployment.", number, "body.model")
        if custom_id in self.ids:
            raise BatchFailure("duplicate_custom_id", f"The custom_id {custom_id!r} is used by "
                               "another request of this file.", number, "custom_id")
        self.ids.add(custom_id)
        if self.model is None:
            self.model = body["model"]
        elif body["model"].lower() != self.model.lower():
            raise BatchFailure("model_mismatch", f"This request names deployment "
                               f"{body['model']!r}; the file's first request names "
                               f"{self.model!r}. One batch goes to one deployment.", number,
                               "body.model")
        self.tokens += estimate_tokens(body)


def validate_lines(lines: Iterable[str], endpoint: str,
                   check_model: Callable[[str], None]) -> ValidatedInput:
    """Validate every line; `check_model(name)` raises a BatchFailure when the named deployment
    cannot run batches. Raises a BatchFailure listing what is wrong (the first few lines)."""
    checker = _Checker(endpoint)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue  # a trailing newline, or a blank line: no request
        checker.lines += 1
        if checker.lines > MAX_LINES:
            raise _failures([*checker.errors, BatchFailure(
                "too_many_tasks", f"The file has more than {MAX_LINES} requests, the most one "
                "batch takes. Split it into several batches.", number)])
        try:
            checker.line(number, raw)
        except BatchFailure as failure:
            checker.errors.append(failure)
            if len(checker.errors) >= MAX_REPORTED:
                break
    if checker.errors:
        raise _failures(checker.errors)
    if checker.lines == 0 or checker.model is None:
        raise BatchFailure("empty_file", "The input file is empty. Please ensure that the batch "
                           "contains at least one request.")
    check_model(checker.model)
    return ValidatedInput(checker.model, checker.lines, checker.tokens)


class BatchFailures(BatchFailure):
    """Several validation failures; `all` holds each."""

    all: list[BatchFailure]


def _failures(errors: list[BatchFailure]) -> BatchFailure:
    first = errors[0]
    out = BatchFailures(first.code, first.message, first.line, first.param)
    out.all = list(errors)
    return out
