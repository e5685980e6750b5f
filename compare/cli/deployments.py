"""`compare deployments`: list the configured deployments, what their endpoint reports, and
check each one with a 1-token request (key accepted? deployment there? endpoint reachable?).

Exit codes: 0 every check passed, 1 a check failed (401/403, 404, unreachable, timeout, 5xx),
2 a key is missing or the arguments are wrong. Each failure gets one line on stderr naming the
deployment, what failed and the fix.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass
from typing import Any

from compare.cli.outcome import EXIT_OK, EXIT_ROWS_FAILED, EXIT_USAGE
from compare.cli.source import (
    FLAGS,
    LOCAL,
    Chosen,
    add_source_args,
    deployments_from_args,
    local_endpoint_for,
    missing_key,
)
from compare.deployments import Deployment

EPILOG = """exit codes:
  0    every deployment answered the check (or --no-info / --no-check)
  1    a check failed: key refused (401/403), no such deployment (404), request refused
       (400), unreachable, timeout, server error
  2    usage or configuration error (argument, file, missing key)
  130  interrupted"""
CHECK_PROMPT = "Reply with OK."


@dataclass(frozen=True)
class Verdict:
    """What checking one deployment found; `fix` says what to do when it failed."""

    ok: bool
    found: str
    fix: str = ""
    missing_key: bool = False


def add_parser(sub: Any) -> None:
    """Register `compare deployments`."""
    p = sub.add_parser("deployments", help="list deployments and check each answers",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="List the configured deployments, the model information "
                                   "their endpoint reports (GET /info where it has it), and "
                                   "check each with one 1-token request.")
    add_source_args(p)
    p.add_argument("--no-info", action="store_true",
                   help="do not contact the endpoints (list the configuration only)")
    p.add_argument("--no-check", action="store_true",
                   help="ask /info only; do not send the 1-token check request")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Print each deployment (and its info and check); exit 1 or 2 when a check failed."""
    with local_endpoint_for(args) as ep:
        chosen = deployments_from_args(args, ep)
        if args.no_info:
            checked: list[tuple[Any, Verdict | None]] = [(None, None)] * len(chosen.deployments)
        else:
            checked = asyncio.run(_check_all(chosen, probe=not args.no_check))
    for dep, (info, verdict) in zip(chosen.deployments, checked, strict=True):
        _print_deployment(dep, info, verdict, args.no_info)
    failed = [(d, v) for d, (_, v) in zip(chosen.deployments, checked, strict=True)
              if v is not None and not v.ok]
    for dep, verdict in failed:
        print(f"{dep.name}: {verdict.found}: {verdict.fix}", file=sys.stderr)
    if any(v.missing_key for _, v in failed):
        return EXIT_USAGE
    return EXIT_ROWS_FAILED if failed else EXIT_OK


def _print_deployment(dep: Deployment, info: Any, verdict: Verdict | None, offline: bool) -> None:
    print(f"{dep.name}")
    print(f"  kind: {dep.kind}  endpoint: {dep.endpoint}  deployment: {dep.deployment}")
    if dep.labels:
        print("  labels: " + ", ".join(f"{k}={v}" for k, v in dep.labels.items()))
    if offline:
        return
    if isinstance(info, dict):
        print("  info: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    else:
        print("  info: not available on this endpoint")
    if verdict is not None:
        print(f"  check: {'ok' if verdict.ok else 'FAILED'}: {verdict.found}")


async def _check_all(chosen: Chosen, *, probe: bool) -> list[tuple[Any, Verdict]]:
    from compare.endpoints import EndpointPool

    pool = EndpointPool()
    try:
        return [await _check(pool, dep, chosen.origin, probe) for dep in chosen.deployments]
    finally:
        await pool.aclose()


async def _check(pool: Any, dep: Deployment, origin: str, probe: bool) -> tuple[Any, Verdict]:
    from compare.endpoints import ChatRequest
    from compare.errors import CompareError

    missing = missing_key(dep, origin)
    if missing:
        return None, Verdict(False, "no API key", missing.split(": ", 1)[1], missing_key=True)
    if dep.is_batch:
        return None, await _check_batch(pool, dep, origin, probe)
    info = None
    try:
        endpoint = pool.get(dep)
        info = await endpoint.model_info()
        if not probe:
            return info, Verdict(True, "not sent (--no-check)")
        request = ChatRequest(deployment=dep.deployment or dep.name, stream=False, max_tokens=1,
                              messages=[{"role": "user", "content": CHECK_PROMPT}],
                              extra=dict(dep.extra))
        started = time.perf_counter()
        await endpoint.chat(request)
        return info, Verdict(True, f"answered a 1-token request in "
                                   f"{time.perf_counter() - started:.2f} s")
    except CompareError as e:
        return info, verdict_for(e, dep, origin)


async def _check_batch(pool: Any, dep: Deployment, origin: str, probe: bool) -> Verdict:
    """A batch deployment answers no online request: its batch API is asked for one batch."""
    from compare.errors import CompareError

    if not probe:
        return Verdict(True, "not sent (--no-check)")
    try:
        started = time.perf_counter()
        await pool.batch(dep).check()
    except CompareError as e:
        return verdict_for(e, dep, origin)
    return Verdict(True, f"its batch API answered in {time.perf_counter() - started:.2f} s (the "
                         "deployment name is checked when its first batch is validated)")


def _key_source(dep: Deployment, origin: str) -> str:
    if origin == LOCAL:
        return "the local endpoint's key (restart it)"
    if dep.api_key:
        return f"the api_key given in {origin}"
    flag = " (--api-key-env)" if origin == FLAGS and dep.api_key_env else ""
    return f"the key in the environment variable {dep.key_env}{flag}"


def verdict_for(error: Exception, dep: Deployment, origin: str) -> Verdict:
    """What an error from the check means and what to do about it."""
    from compare import errors

    status = getattr(error, "http_status", None)
    code = f" (HTTP {status})" if status else ""
    if isinstance(error, errors.CredentialError):
        return Verdict(False, "unusable API key", str(error), missing_key=True)
    if isinstance(error, errors.AuthenticationError):
        return Verdict(False, f"key refused{code}", f"check {_key_source(dep, origin)}")
    if isinstance(error, errors.DeploymentNotFoundError):
        return Verdict(False, f"no deployment {dep.deployment!r} at {dep.endpoint}{code}",
                       "check the deployment name, the endpoint URL and the kind "
                       f"({dep.kind})")
    if isinstance(error, errors.RateLimitError | errors.ContentFilterError):
        return Verdict(True, f"reachable, key accepted ({error.status}{code})")
    if isinstance(error, errors.BadRequestError):
        return Verdict(False, f"a 1-token chat request was refused{code}: {error}",
                       "check the kind and the endpoint URL (kind openai wants the base URL "
                       "ending in /v1); a model that refuses max_tokens cannot take this check "
                       "(--no-check)")
    if isinstance(error, errors.TransportError | errors.EndpointTimeout):
        return Verdict(False, f"unreachable: {error}",
                       "check the endpoint URL and that the service is up")
    if isinstance(error, errors.ServerError):
        return Verdict(False, f"server error{code}: {error}",
                       "try again later; if it persists, check the service's status")
    return Verdict(False, f"{type(error).__name__}{code}: {error}", "see the message")

