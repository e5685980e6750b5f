"""The batch API's fixed numbers and the checks a batch deployment's settings need.

Azure OpenAI batch (files + batches, api-version 2024-10-21 and `/openai/v1`): one input file
holds at most 100,000 requests and 200 MB, UTF-8 without BOM, every line for one deployment and
one url. Azure asks clients to poll a batch's status at most once a minute; the local endpoint
(loopback addresses) may be polled as fast as a test needs.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Final
from urllib.parse import urlsplit

from compare._checks import is_number, show
from compare.errors import ConfigError

# The online kind whose SDK client each batch kind uses (files and batches resources).
CLIENT_KIND: Final[dict[str, str]] = {"azure-openai-batch": "azure-openai",
                                      "openai-batch": "openai"}
MAX_LINES: Final = 100_000
MAX_BYTES: Final = 200 * 1024 * 1024
# The operation every line calls (the `url` of each line and the batch's `endpoint`).
BATCH_URL: Final = "/chat/completions"
COMPLETION_WINDOW: Final = "24h"
MIN_REMOTE_POLL_S: Final = 60.0
DEFAULT_LOCAL_POLL_S: Final = 1.0


def is_loopback(url: str) -> bool:
    """True when `url` points at this machine (localhost, 127.0.0.0/8, ::1)."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_batch_poll(value: Any, endpoint: str) -> float:
    """The poll interval of a batch deployment: `value`, else once a minute (every second for
    the local endpoint). Below a minute only for loopback endpoints; ConfigError otherwise."""
    local = is_loopback(endpoint)
    if value is None:
        return DEFAULT_LOCAL_POLL_S if local else MIN_REMOTE_POLL_S
    if not is_number(value) or value <= 0:
        raise ConfigError(f"batch_poll_s must be a positive number of seconds, got "
                          f"{show(value)}", field="batch_poll_s")
    if not local and value < MIN_REMOTE_POLL_S:
        raise ConfigError(
            f"batch_poll_s must be at least {MIN_REMOTE_POLL_S:g} seconds for {endpoint}: Azure "
            f"asks clients to poll a batch at most once a minute (got {value:g}; shorter "
            "intervals are for the local endpoint only)", field="batch_poll_s")
    return float(value)
