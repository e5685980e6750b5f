"""`compare deployments`: list the configured deployments and what their endpoint reports."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from typing import Any

from compare.cli.outcome import EXIT_CODES_HELP, EXIT_OK
from compare.cli.source import add_source_args, deployments_from_args, local_endpoint_for


def add_parser(sub: Any) -> None:
    """Register `compare deployments`."""
    p = sub.add_parser("deployments", help="list deployments and what /info reports",
                       epilog=EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="List the configured deployments and the model information "
                                   "their endpoint reports (GET /info where it has it).")
    add_source_args(p)
    p.add_argument("--no-info", action="store_true", help="do not contact the endpoints")
    p.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    """Print each deployment, its labels and (unless --no-info) the endpoint's model info."""
    with local_endpoint_for(args) as ep:
        deps = deployments_from_args(args, ep)
        infos = [None] * len(deps) if args.no_info else asyncio.run(_model_infos(deps))
    for dep, info in zip(deps, infos, strict=True):
        print(f"{dep.name}")
        print(f"  kind: {dep.kind}  endpoint: {dep.endpoint}  deployment: {dep.deployment}")
        if dep.labels:
            labels = ", ".join(f"{k}={v}" for k, v in dep.labels.items())
            print(f"  labels: {labels}")
        if args.no_info:
            continue
        if isinstance(info, dict):
            print("  info: " + ", ".join(f"{k}={v}" for k, v in info.items()))
        else:
            print(f"  info: {info}")
    return EXIT_OK


async def _model_infos(deps: Sequence[Any]) -> list[Any]:
    from compare.endpoints import EndpointPool
    from compare.errors import CompareError

    pool = EndpointPool()
    out: list[Any] = []
    try:
        for dep in deps:
            try:
                info = await pool.get(dep).model_info(dep.deployment)
                out.append(info if info is not None else "not available on this endpoint")
            except CompareError as e:
                out.append(f"unavailable ({e})")
    finally:
        await pool.aclose()
    return out
