"""The local endpoint: Azure AI model inference + Azure OpenAI routes over real small models.

`local_endpoint(...)` runs it in a subprocess; `python -m compare.server` / `compare serve` runs it
in a terminal. Where things are:

- `config` reads the deployments file (schema in its docstring) into `deployment_spec` classes;
  `config_fields` validates each section.
- `http` builds the aiohttp app: routes, middleware (auth, errors, logs), info/models/admin.
- `chat`, `embeddings`: the model routes; `spec` is the wire format (request parsing, response
  bodies); `content_filter`, `limits`, `faults`, `request_body`, `azure_errors` their parts.
- `served`: runtime state (`ServedDeployment`, `RequestContext`, `EndpointState`).
- `backends/`: `base` (the interface), `simulated`, `llama` (llama-cpp-python, GGUF weights).
- `local`: `LocalEndpoint` / `local_endpoint`; `__main__`: the command line.
"""

from compare.server.config import (
    DEFAULT_DEPLOYMENTS_FILE,
    FAULTS,
    DeploymentSpec,
    ServerConfig,
    load_config,
    parse_config,
)
from compare.server.local import LocalEndpoint, local_endpoint

__all__ = [
    "DEFAULT_DEPLOYMENTS_FILE",
    "FAULTS",
    "DeploymentSpec",
    "LocalEndpoint",
    "ServerConfig",
    "load_config",
    "local_endpoint",
    "parse_config",
]
