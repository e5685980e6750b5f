"""Runtime state of a running endpoint: each `ServedDeployment` (its spec, backend, limiter,
fault injector and counters), the per-request `RequestContext`, and `EndpointState`, which finds a
deployment for a request and builds the headers every answer carries."""

from __future__ import annotations

import asyncio
import collections
import contextlib
import re
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from compare.server.azure_errors import WireError
from compare.server.backends.base import Backend
from compare.server.batch.files import FileStore
from compare.server.batch.jobs import BatchBook
from compare.server.deployment_spec import DeploymentSpec, ServerConfig
from compare.server.faults import FaultInjector
from compare.server.limits import RateLimiter


@dataclass
class DeploymentStats:
    """Counters shown by GET /_compare/stats."""

    received: int = 0
    completed: int = 0
    in_flight: int = 0
    by_status: collections.Counter[str] = field(default_factory=collections.Counter)
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    prompts: collections.Counter[str] = field(default_factory=collections.Counter)

    def as_dict(self) -> dict[str, Any]:
        """JSON form; "requests" is "received" under the name other tools look for."""
        return {"received": self.received, "requests": self.received,
                "completed": self.completed,
                "in_flight": self.in_flight, "by_status": dict(self.by_status),
                "faults": dict(self.faults), "prompts": dict(self.prompts)}


@dataclass
class ServedDeployment:
    """One deployment as the running server holds it (the file's `DeploymentSpec` is `spec`)."""

    spec: DeploymentSpec
    backend: Backend
    limiter: RateLimiter | None
    faults: FaultInjector | None
    stats: DeploymentStats = field(default_factory=DeploymentStats)
    batch_slots: asyncio.Semaphore | None = None  # global-batch: requests of its jobs in flight
    # Simulated with max_concurrent_requests: online generations at once (llama's one worker
    # thread per model already runs them one by one).
    online_slots: asyncio.Semaphore | None = None

    def turn(self) -> contextlib.AbstractAsyncContextManager[Any]:
        """Wait for a generation slot (held until the answer is sent), if the deployment has a
        limit of its own."""
        return self.online_slots if self.online_slots is not None else contextlib.nullcontext()

    @classmethod
    def build(cls, spec: DeploymentSpec, backend: Backend) -> ServedDeployment:
        """State for `spec`: a limiter when it has a capacity, an injector when it has faults."""
        cap = spec.capacity
        return cls(
            spec=spec,
            backend=backend,
            limiter=RateLimiter(cap.rpm, cap.tpm, cap.window_s) if cap else None,
            faults=FaultInjector(spec.faults, spec.simulated.seed if spec.simulated else 0)
            if spec.faults else None,
            batch_slots=asyncio.Semaphore(spec.batch.concurrency) if spec.batch else None,
            online_slots=asyncio.Semaphore(spec.max_concurrent_requests)
            if spec.max_concurrent_requests and spec.backend == "simulated" else None,
        )


@dataclass
class RequestContext:
    """Per-request facts the middleware logs and every response carries."""

    request_id: str
    t0: float
    client_request_id: str | None = None  # azure-core's x-ms-client-request-id, echoed back
    deployment: ServedDeployment | None = None
    status: int = 0
    stream: bool = False
    ttft_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    fault: str | None = None
    aborted: bool = False
    headers: dict[str, str] = field(default_factory=dict)


CONTEXT = web.RequestKey("compare_request_context", RequestContext)
SAFE_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")


def context(request: web.Request) -> RequestContext:
    """The RequestContext the middleware attached to `request`."""
    return request[CONTEXT]


class EndpointState:
    """The deployments a running endpoint serves, looked up case-insensitively."""

    def __init__(self, config: ServerConfig, backends: dict[str, Backend]) -> None:
        self.config = config
        self.started = int(time.time())
        # Batch input and output files live here until the server stops.
        self.files = FileStore(Path(tempfile.mkdtemp(prefix="compare-files-")),
                               config.max_file_bytes)
        self.batches = BatchBook()
        self.deployments: dict[str, ServedDeployment] = {
            spec.name.lower(): ServedDeployment.build(spec, backends[spec.name])
            for spec in config.deployments
        }

    def find(self, name: Any) -> ServedDeployment:
        """The deployment called `name`, or Azure's 404 listing the ones that exist."""
        dep = self.deployments.get(name.lower()) if isinstance(name, str) else None
        if dep is None:
            raise WireError(404, "DeploymentNotFound",
                            f"The API deployment for this resource does not exist: {name!r}. "
                            f"Deployments here: {', '.join(self.config.names())}.")
        return dep

    def pick(self, request: web.Request, body_model: Any = None) -> ServedDeployment:
        """The deployment a request names: in the path, the body's `model`, `?model=` or the
        model-mesh header; the only one when there is one."""
        name = request.match_info.get("name") or body_model or \
            request.query.get("model") or request.headers.get("x-ms-model-mesh-model-name")
        if name is None:
            if len(self.deployments) == 1:
                return next(iter(self.deployments.values()))
            raise WireError(400, "ModelRequired",
                            "This endpoint serves several deployments "
                            f"({', '.join(self.config.names())}): name one in the body's "
                            "'model' (or '?model=' for /info).", param="model")
        return self.find(name)

    def headers(self, ctx: RequestContext) -> dict[str, str]:
        """Headers of every answer: request ids, region, deployment and rate-limit state."""
        headers = {"apim-request-id": ctx.request_id, "x-request-id": ctx.request_id,
                   "x-ms-region": self.config.region}
        if ctx.client_request_id:
            headers["x-ms-client-request-id"] = ctx.client_request_id
        dep = ctx.deployment
        if dep is not None:
            headers["x-ms-deployment-name"] = dep.spec.name
            if dep.limiter is not None:
                headers.update(dep.limiter.headers(asyncio.get_running_loop().time()))
        headers.update(ctx.headers)
        return headers

    def json(self, request: web.Request, body: Any, status: int = 200) -> web.Response:
        """A JSON answer with the standard headers."""
        return web.json_response(body, status=status, headers=self.headers(context(request)))

    def error(self, ctx: RequestContext, exc: WireError) -> web.Response:
        """The Azure-format error answer for `exc`."""
        headers = self.headers(ctx)
        headers.update(exc.headers)
        headers["x-ms-error-code"] = exc.code
        ctx.status = exc.status
        return web.json_response(exc.body(), status=exc.status, headers=headers)


STATE = web.AppKey("compare_endpoint_state", EndpointState)


def state(request: web.Request) -> EndpointState:
    """The EndpointState of the app serving `request`."""
    return request.app[STATE]
