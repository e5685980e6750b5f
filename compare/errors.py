"""Our own exception hierarchy.

    CompareError
    ├── ConfigError (also a ValueError)      a file, prompt set or argument is wrong: source:line
    │   ├── PromptSetError                   a prompt row or file
    │   └── CredentialError                  no usable key or credential
    ├── DeploymentUnusableError              first requests showed deployments cannot be used
    └── EndpointError                        one request failed (status, retryable, retry_after_s)
        ├── AuthenticationError              401/403: the deployment is stopped
        ├── DeploymentNotFoundError          404
        ├── ContentFilterError               400 content_filter  → status content_filtered
        ├── BadRequestError                  other 400/422
        ├── RateLimitError         retryable 429                 → status rate_limited
        ├── ServerError            retryable 408, 5xx
        ├── TransportError         retryable no HTTP answer (refused, DNS, reset, TLS)
        ├── EndpointTimeout        retryable connect/read timeout → status timeout
        ├── IncompleteStreamError  retryable no finish_reason, error event → status incomplete
        └── BatchCancelledError              a batch was cancelled before the request ran

SDK exceptions (azure-core, openai, aiohttp, httpx2) never leave an endpoint adapter: one table
(`compare.endpoints.http_errors`) translates them into these, so the runner, the CLI and users
handle one family of errors. Messages say what to change (the argument, the environment variable,
the file and line) and never contain a key or token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


class CompareError(Exception):
    """Base class of every error raised by `compare`."""


class ConfigError(CompareError, ValueError):
    """A deployments file, prompt set or argument is wrong. The message names where."""

    def __init__(
        self,
        message: str,
        *,
        source: str | None = None,
        line: int | None = None,
        field: str | None = None,
    ) -> None:
        self.source = source
        self.line = line
        self.field = field
        where = ""
        if source is not None:
            where = f"{source}:{line}: " if line is not None else f"{source}: "
        super().__init__(f"{where}{message}")


class PromptSetError(ConfigError):
    """A prompt set row or file is invalid."""


class CredentialError(ConfigError):
    """No usable key or credential; the message names the argument and the environment variable."""


class EndpointError(CompareError):
    """A request to a deployment failed. Raised by endpoint adapters, handled by the runner.

    `retryable` tells the runner whether another attempt may succeed; `retry_after_s` is the wait
    the service asked for (from `retry-after-ms` or `Retry-After`), when it asked.
    """

    status: str = "error"
    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        code: str | None = None,
        retry_after_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        partial: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.code = code
        self.retry_after_s = retry_after_s
        self.headers: dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        # For stream failures: the Completion gathered before the failure (text, timings).
        self.partial = partial

    @property
    def error_type(self) -> str:
        return type(self).__name__


class AuthenticationError(EndpointError):
    """401/403: the key or token was refused. The runner stops the deployment at once."""


class DeploymentNotFoundError(EndpointError):
    """404: the endpoint has no deployment of that name."""


class ContentFilterError(EndpointError):
    """400 `content_filter`: the prompt was blocked; `content_filter` holds the results."""

    status = "content_filtered"

    def __init__(self, message: str, *, content_filter: Any = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.content_filter = content_filter


class BadRequestError(EndpointError):
    """400/422 other than content filtering: a parameter the deployment does not accept."""


class RateLimitError(EndpointError):
    """429: throttled by the service."""

    status = "rate_limited"
    retryable = True


class ServerError(EndpointError):
    """408 or 5xx from the service."""

    retryable = True


class TransportError(EndpointError):
    """No HTTP answer: connection refused or reset, TLS failure."""

    retryable = True


class EndpointTimeout(EndpointError):
    """The connect or read timeout fired (a hung server)."""

    status = "timeout"
    retryable = True


class IncompleteStreamError(EndpointError):
    """A stream ended without finish_reason, or an error event arrived mid-stream.

    The text received so far is in `partial`; such a result is never reported as `ok`.
    """

    status = "incomplete"
    retryable = True


class BatchCancelledError(EndpointError):
    """A batch was cancelled before this request ran (its finished requests are kept); a
    resumed run sends the request again, in a new batch."""


class DeploymentUnusableError(CompareError):
    """A deployment's first request showed it cannot be used at all (refused key, no such
    deployment, no HTTP answer). Raised before the rest is sent when the run was asked to fail
    fast (the CLI does); `problems` maps each such deployment to its message."""

    def __init__(self, problems: Mapping[str, str]) -> None:
        self.problems = dict(problems)
        lines = [f"  {name}: {message}" for name, message in self.problems.items()]
        super().__init__(
            "cannot use " + ("this deployment" if len(lines) == 1 else "these deployments")
            + " (nothing else was sent):\n" + "\n".join(lines))
