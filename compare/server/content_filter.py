"""The content filter: Azure-shaped filter results, the prompt-filter error, and the output gate
(stop sequences and the completion filter applied to streamed text).
"""

from __future__ import annotations

from typing import Any

from compare.server.azure_errors import WireError
from compare.server.deployment_spec import FilterRule

_SEVERITY_CATEGORIES = ("hate", "self_harm", "sexual", "violence")


def filter_results(hit: FilterRule | None, *, prompt: bool) -> dict[str, Any]:
    """Azure-shaped `content_filter_result(s)`: every category, the hit one filtered."""
    out: dict[str, Any] = {c: {"filtered": False, "severity": "safe"}
                           for c in _SEVERITY_CATEGORIES}
    out["profanity"] = {"filtered": False, "detected": False}
    if prompt:
        out["jailbreak"] = {"filtered": False, "detected": False}
    if hit is not None:
        if hit.category in ("profanity", "jailbreak"):
            out[hit.category] = {"filtered": True, "detected": True}
        else:
            out[hit.category] = {"filtered": True, "severity": hit.severity}
    return out


def prompt_filter_error(deployment: str, hit: FilterRule) -> WireError:
    return WireError(
        400,
        "content_filter",
        "The response was filtered due to the prompt triggering the content management policy "
        f"of deployment '{deployment}' ({hit.category}, severity {hit.severity}). Please modify "
        "your prompt and retry.",
        param="prompt",
        inner={"code": "ResponsibleAIPolicyViolation",
               "content_filter_result": filter_results(hit, prompt=True)},
    )


class OutputGate:
    """Applies stop sequences and the completion content filter to streamed text.

    Text that could be the start of a stop sequence is held back until it is decided, so a stop
    sequence never leaks to the client; filtered text is never sent.
    """

    def __init__(self, stops: list[str], rules: tuple[FilterRule, ...]) -> None:
        self.stops = stops
        self.rules = tuple(r for r in rules if "completion" in r.on)
        self.sent = ""
        self.pending = ""
        self.hit: FilterRule | None = None

    def _filtered(self, extra: str) -> tuple[str, str] | None:
        candidate = self.sent + extra
        for rule in self.rules:
            found = rule.search(candidate)
            if found:
                self.hit = rule
                return candidate[len(self.sent):max(found.start(), len(self.sent))], \
                    "content_filter"
        return None

    def feed(self, piece: str) -> tuple[str, str | None]:
        """Add a piece; return (text to send now, finish reason if generation must stop)."""
        if not self.stops and not self.rules:
            return piece, None  # nothing to hold back or check
        self.pending += piece
        cut = min((i for i in (self.pending.find(s) for s in self.stops) if i >= 0),
                  default=-1)
        if cut >= 0:
            out = self.pending[:cut]
            self.pending = ""
            filtered = self._filtered(out)
            if filtered:
                return filtered
            self.sent += out
            return out, "stop"
        filtered = self._filtered(self.pending)
        if filtered:
            self.pending = ""
            return filtered
        hold = 0
        for stop in self.stops:
            for k in range(min(len(stop) - 1, len(self.pending)), hold, -1):
                if self.pending.endswith(stop[:k]):
                    hold = k
                    break
        out = self.pending[:len(self.pending) - hold]
        self.pending = self.pending[len(self.pending) - hold:]
        self.sent += out
        return out, None

    def flush(self) -> tuple[str, str | None]:
        out, self.pending = self.pending, ""
        filtered = self._filtered(out)
        if filtered:
            return filtered
        self.sent += out
        return out, None
