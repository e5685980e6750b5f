"""Where a command's deployments come from: `--deployments FILE`, `--deployment NAME` flags (with
`--endpoint`/`--kind`/`--api-version` before them), `--local` (a local endpoint started for the
command) or a `deployments.yaml` in the current folder. Files go through `load_deployments`, the
local endpoint through `local_deployments`, the result through `as_deployments`.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from compare.cli.args import UsageError, name_list
from compare.cli.outcome import read_file
from compare.deployments import KINDS

DEFAULT_FILE = "deployments.yaml"


class TargetAction(argparse.Action):
    """--endpoint/--kind/--api-version set the target for the --deployment flags after them."""

    def __call__(self, parser: Any, ns: Any, values: Any, option: str | None = None) -> None:
        groups = getattr(ns, "targets", None) or []
        current = dict(getattr(ns, "_current", None) or {})
        if self.dest == "deployment":
            groups.append({**current, "deployment": values})
        else:
            current[self.dest] = values
            # Flags given after the deployments still apply to those that had none.
            for g in groups:
                g.setdefault(self.dest, values)
        ns.targets = groups
        ns._current = current


def add_source_args(p: argparse.ArgumentParser) -> None:
    """The deployments arguments shared by `run` and `deployments`."""
    src = p.add_argument_group("deployments (one of)")
    src.add_argument("--deployments", "-d", metavar="FILE", help="deployments YAML file")
    src.add_argument("--endpoint", action=TargetAction, metavar="URL",
                     help="endpoint base URL for the --deployment flags after it "
                          "(default: the kind's endpoint variable)")
    src.add_argument("--kind", action=TargetAction, choices=KINDS,
                     help="endpoint style for the --deployment flags after it "
                          "(default azure-inference)")
    src.add_argument("--api-version", action=TargetAction, metavar="V", dest="api_version")
    src.add_argument("--deployment", action=TargetAction, metavar="NAME", dest="deployment",
                     help="deployment name (repeat for several); the key comes from the kind's "
                          "variable: AZURE_AI_CHAT_KEY, AZURE_OPENAI_API_KEY or OPENAI_API_KEY")
    src.add_argument("--local", action="store_true",
                     help="start the local endpoint and use its deployments")
    src.add_argument("--only", metavar="NAMES", type=name_list,
                     help="with --local or --deployments: comma-separated deployment names")


def deployments_from_args(args: argparse.Namespace, endpoint: Any = None) -> list[Any]:
    """The Deployments the arguments describe (`endpoint`: the one `local_endpoint_for` started)."""
    from compare.deployments_file import as_deployments, load_deployments, local_deployments

    targets = getattr(args, "targets", None) or []
    given = [bool(args.deployments), bool(targets), bool(args.local)]
    if sum(given) > 1:
        raise UsageError("give one of --deployments FILE, --deployment NAME or --local")
    if endpoint is not None:
        kind = (getattr(args, "_current", None) or {}).get("kind") or "azure-inference"
        return local_deployments(endpoint, kind=kind, names=args.only)
    if targets:
        return as_deployments(_from_flags(targets))
    path = args.deployments
    if not path:
        if not Path(DEFAULT_FILE).exists():
            raise UsageError(
                "no deployments: give --deployments FILE, --deployment NAME (with --endpoint/"
                f"--kind) or --local (there is no {DEFAULT_FILE} here)"
            )
        path = DEFAULT_FILE
    deps = read_file(path, load_deployments, "deployments file")
    return as_deployments(_only(deps, args.only, path))


def _from_flags(targets: Sequence[dict[str, Any]]) -> list[Any]:
    from compare.deployments import Deployment

    return [Deployment(name=t["deployment"], endpoint=t.get("endpoint"),
                       kind=t.get("kind") or "azure-inference", api_version=t.get("api_version"))
            for t in targets]


def _only(deps: list[Any], only: list[str] | None, path: str) -> list[Any]:
    if not only:
        return deps
    have = {d.name for d in deps}
    missing = [n for n in only if n not in have]
    if missing:
        raise UsageError(f"--only: {path} has no deployment {missing[0]!r} "
                         f"(it has: {', '.join(sorted(have))})")
    return [d for d in deps if d.name in only]


def check_keys(deps: Sequence[Any]) -> None:
    """Fail before sending anything when a key is missing (the message names the variable)."""
    for d in deps:
        if d.auth == "key":
            d.resolve_api_key()


@contextlib.contextmanager
def local_endpoint_for(args: argparse.Namespace) -> Iterator[Any]:
    """With --local: a local endpoint serving the --only deployments for the command's length."""
    if not args.local:
        yield None
        return
    from compare.server.local import local_endpoint

    print("starting the local endpoint ...", file=sys.stderr)
    with local_endpoint(only=args.only) as ep:
        yield ep
