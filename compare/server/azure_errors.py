"""Errors answered in Azure format: `WireError` (status, code, message, param, inner error) and the
`{"error": {...}}` body both Azure APIs share.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The `code` of errors with no more specific one, by HTTP status (as Azure sends them).
STATUS_CODES = {400: "BadRequest", 401: "401", 403: "AuthorizationFailed", 408: "Timeout",
                422: "UnprocessableEntity", 429: "429", 500: "InternalServerError",
                502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout"}


class WireError(Exception):
    """A client error to answer in Azure format: status, code, message, optional param."""

    def __init__(self, status: int, code: str, message: str, *, param: str | None = None,
                 headers: Mapping[str, str] | None = None, inner: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.param = param
        self.headers = dict(headers or {})
        self.inner = inner

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message, "status": self.status}
        if self.param is not None:
            error["param"] = self.param
        if self.inner is not None:
            error["innererror"] = self.inner
        return {"error": error}


def bad(message: str, param: str | None = None, code: str = "InvalidParameter") -> WireError:
    return WireError(400, code, message, param=param)
