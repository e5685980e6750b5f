"""Where a command's deployments come from: `--deployments FILE`, `--deployment NAME[=DISPLAY]`
flags (with `--endpoint`/`--kind`/`--api-version`/`--api-key-env` before them), `--local` (a
local endpoint started for the command) or a `deployments.yaml` in the current folder (said on
stderr). Files go through `load_deployments`, the local endpoint through `local_deployments`, the
result through `as_deployments`. Keys are checked before anything is sent, with messages that
name the flag or file and the variable.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from compare.cli.args import UsageError, env_name, name_list
from compare.cli.outcome import read_file
from compare.deployments import KINDS, Deployment

DEFAULT_FILE: Final = "deployments.yaml"
FLAGS: Final = "flags"
LOCAL: Final = "local"
RUN_MANIFEST: Final = "the run's manifest"


@dataclass(frozen=True)
class Chosen:
    """The deployments a command works on and where they came from: FLAGS, LOCAL or a file."""

    deployments: list[Deployment]
    origin: str


class TargetAction(argparse.Action):
    """--endpoint/--kind/--api-version/--api-key-env set the target for the --deployment flags
    after them."""

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


def add_source_args(p: argparse.ArgumentParser, what: str = "deployments",
                    default_file: bool = True) -> None:
    """The deployments arguments shared by `run`, `deployments` and `score` (`what` they name,
    and whether ./deployments.yaml is the default)."""
    src = p.add_argument_group(f"{what} (one of)")
    default = f" (default: ./{DEFAULT_FILE} when there is one)" if default_file else ""
    src.add_argument("--deployments", "-d", metavar="FILE",
                     help=f"deployments YAML file{default}")
    src.add_argument("--endpoint", action=TargetAction, metavar="URL",
                     help="endpoint base URL for the --deployment flags after it "
                          "(default: the kind's endpoint variable)")
    src.add_argument("--kind", action=TargetAction, choices=KINDS,
                     help="endpoint style for the --deployment flags after it "
                          "(default azure-inference)")
    src.add_argument("--api-version", action=TargetAction, metavar="V", dest="api_version",
                     help="API version for the --deployment flags after it (default: "
                          "OPENAI_API_VERSION for azure-openai, else the SDK's default)")
    src.add_argument("--api-key-env", action=TargetAction, metavar="NAME", dest="api_key_env",
                     type=env_name,
                     help="environment variable holding the key for the --deployment flags "
                          "after it (default: AZURE_AI_CHAT_KEY, AZURE_OPENAI_API_KEY or "
                          "OPENAI_API_KEY by kind); keys never go on the command line")
    src.add_argument("--deployment", action=TargetAction, metavar="NAME[=DISPLAY]",
                     dest="deployment",
                     help="deployment name (repeat for several); NAME=DISPLAY shows it as "
                          "DISPLAY (the same deployment through two kinds needs two names)")
    src.add_argument("--local", action="store_true",
                     help="start the local endpoint and use its deployments")
    src.add_argument("--only", metavar="NAMES", type=name_list,
                     help="with --local or --deployments: comma-separated deployment names")


def deployments_from_args(args: argparse.Namespace, endpoint: Any = None) -> Chosen:
    """The Deployments the arguments describe (`endpoint`: the one `local_endpoint_for` started)."""
    from compare.deployments_file import as_deployments, local_deployments

    targets = getattr(args, "targets", None) or []
    given = [bool(args.deployments), bool(targets), bool(args.local)]
    if sum(given) > 1:
        raise UsageError("give one of --deployments FILE, --deployment NAME or --local")
    if endpoint is not None:
        kind = (getattr(args, "_current", None) or {}).get("kind") or "azure-inference"
        return Chosen(local_deployments(endpoint, kind=kind, names=args.only), LOCAL)
    if targets:
        if args.only:
            raise UsageError("--only picks from --local or --deployments FILE; with --deployment "
                             "flags, name just the deployments you want")
        return Chosen(as_deployments(_from_flags(targets)), FLAGS)
    return _from_file(args.deployments, args.only)


def _from_file(path: str | None, only: list[str] | None) -> Chosen:
    from compare.deployments_file import as_deployments, load_deployments

    if not path:
        if not Path(DEFAULT_FILE).exists():
            raise UsageError(
                "no deployments: give --deployments FILE, --deployment NAME (with --endpoint/"
                f"--kind) or --local (there is no {DEFAULT_FILE} here)"
            )
        path = DEFAULT_FILE
        print(f"using ./{DEFAULT_FILE} (found in the current folder; --deployments FILE, "
              "--deployment NAME or --local choose others)", file=sys.stderr)
    deps = read_file(path, load_deployments, "deployments file")
    return Chosen(as_deployments(_only(deps, only, path)), path)


def _from_flags(targets: Sequence[dict[str, Any]]) -> list[Deployment]:
    out = []
    for t in targets:
        service, _, display = str(t["deployment"]).partition("=")
        out.append(Deployment(name=display or service, deployment=service,
                              endpoint=t.get("endpoint"), kind=t.get("kind") or "azure-inference",
                              api_version=t.get("api_version"), api_key_env=t.get("api_key_env")))
    names = [d.name for d in out]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        same = [d for d in out if d.name == twice]
        suffixes = ([d.kind for d in same] if len({d.kind for d in same}) == len(same)
                    else [str(i) for i in range(1, len(same) + 1)])
        example = " and ".join(f"--deployment {d.deployment}={twice}-{suffix}"
                               for d, suffix in zip(same, suffixes, strict=True))
        raise UsageError(f"deployment name {twice!r} is given {len(same)} times; give each a "
                         f"display name with NAME=DISPLAY, e.g. {example}")
    return out


def _only(deps: list[Deployment], only: list[str] | None, path: str) -> list[Deployment]:
    if not only:
        return deps
    have = {d.name for d in deps}
    missing = [n for n in only if n not in have]
    if missing:
        raise UsageError(f"--only: {path} has no deployment {missing[0]!r} "
                         f"(it has: {', '.join(sorted(have))})")
    return [d for d in deps if d.name in only]


def missing_key(dep: Deployment, origin: str) -> str | None:
    """Why `dep` has no key, naming the variable and the flag or file that sets it; None when
    the key is there (or Entra ID is used)."""
    if dep.auth != "key" or dep.api_key or os.environ.get(dep.key_env):
        return None
    head = f"no API key for deployment {dep.name!r}"
    if origin == RUN_MANIFEST:
        return (f"{head}: set the environment variable {dep.key_env} (the endpoint comes from "
                "the run's manifest, which never holds keys)")
    if origin == FLAGS:
        if dep.api_key_env:
            return f"{head}: the environment variable {dep.key_env} (--api-key-env) is not set"
        return (f"{head}: set the environment variable {dep.key_env}, or name another one "
                "with --api-key-env NAME before --deployment (keys never go on the command line)")
    if dep.api_key_env:
        return (f"{head}: the environment variable {dep.key_env} (api_key_env in {origin}) "
                "is not set")
    return (f"{head}: set the environment variable {dep.key_env} (or name another one with "
            f"api_key_env: in {origin})")


def check_keys(chosen: Chosen) -> None:
    """Fail before sending anything when a key is missing, naming the flag or file that sets
    its variable. (The key itself is read once, when its client is built; one an HTTP header
    cannot carry stops the run there, before anything else is sent.)"""
    for dep in chosen.deployments:
        message = missing_key(dep, chosen.origin)
        if message:
            raise UsageError(message)


@contextlib.contextmanager
def local_endpoint_for(args: argparse.Namespace, names: Sequence[str] | None = None
                       ) -> Iterator[Any]:
    """With --local: a local endpoint for the command's length, serving `names` (default: the
    --only deployments; None: all of them)."""
    if not args.local:
        yield None
        return
    from compare.server.local import local_endpoint

    print("starting the local endpoint ...", file=sys.stderr)
    with local_endpoint(only=list(names) if names is not None else args.only) as ep:
        yield ep
