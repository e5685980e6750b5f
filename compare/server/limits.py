"""Capacity of a deployment: requests and tokens per sliding window, the 429 beyond it, and the
`x-ratelimit-remaining-*` headers every answer carries."""

from __future__ import annotations

import collections
import math

from compare.server.azure_errors import WireError


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
        """The remaining-requests / remaining-tokens headers, for the limits configured."""
        self._expire(now)
        out = {}
        if self.max_requests is not None:
            out["x-ratelimit-remaining-requests"] = str(max(0, self.max_requests -
                                                            len(self.events)))
        if self.max_tokens is not None:
            out["x-ratelimit-remaining-tokens"] = str(max(0, self.max_tokens - self.tokens))
        return out


def throttled(deployment: str, wait: float, hints: str | None) -> WireError:
    """Azure's 429; `hints` says which retry headers it carries: "both", "ms" or None."""
    headers = {}
    if hints == "both":
        headers["Retry-After"] = str(max(1, math.ceil(wait)))
    if hints in ("both", "ms"):
        headers["retry-after-ms"] = str(max(1, math.ceil(wait * 1000)))
    return WireError(
        429, "429",
        f"Requests to the ChatCompletions_Create Operation of deployment '{deployment}' have "
        "exceeded the rate limit of its capacity. Please retry after "
        f"{max(1, math.ceil(wait))} second(s).",
        headers=headers,
    )


def admit(limiter: RateLimiter | None, deployment: str, now: float, tokens: int) -> None:
    """Count a request against the deployment's capacity, or raise its 429."""
    if limiter is None:
        return
    admitted, wait = limiter.admit(now, tokens)
    if not admitted:
        raise throttled(deployment, wait, "both")
