"""The local endpoint: Azure AI model inference + Azure OpenAI routes over real small models.

`local_endpoint(...)` runs it in a subprocess; `python -m compare.server` / `compare serve` runs it
in a terminal. See `compare.server.config` for the deployments file.
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
