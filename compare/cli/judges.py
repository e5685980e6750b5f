"""`--score SPEC` (`compare run`, `compare score`) and where the deployments that judges and
embedding scorers call are found.

A judge or embedding deployment need not be one of the compared ones. For `compare run` it is
found among the compared ones, else in the `--deployments FILE` (the whole file: `--only` picks
only what is compared), else on the local endpoint (`--local`), else at the target of the run's
last `--deployment` flag (same `--endpoint`, `--kind`, `--api-version`, `--api-key-env`). For
`compare score` the deployments flags name it; else it is one of the run's deployments (the
manifest says where they were; keys come from the environment), else on their endpoint when
they share one.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from compare._checks import hint
from compare.cli.args import UsageError
from compare.cli.outcome import read_file
from compare.cli.source import FLAGS, LOCAL, RUN_MANIFEST, Chosen
from compare.deployments import FIELD_NAMES, Deployment
from compare.errors import CompareError

if TYPE_CHECKING:
    from compare.scorers import Scorer

# Scorers whose spec has the form NAME:DEPLOYMENT[:options].
MODEL_SPECS: Final = ("judge", "pairwise", "similarity")
SCORE_HELP: Final = ("score the answers (repeat for several): exact, includes, f1, rouge, chrf, "
                     "bleu, edit_similarity, json_valid, choice, numeric[:rel=0.01], "
                     "regex:PATTERN, json_schema:FILE, judge:DEPLOYMENT[:scale=pass_fail,"
                     "rubric=...], pairwise:DEPLOYMENT, similarity:DEPLOYMENT")


@dataclass(frozen=True)
class ScoreFlag:
    """One `--score` as given and the scorer it makes."""

    spec: str
    scorer: Scorer


def score_flag(text: str) -> ScoreFlag:
    """argparse type of `--score`: the spec parsed once, where it is read (did-you-mean on a
    misspelt scorer or option)."""
    from compare.scorers import parse_scorer_spec

    try:
        return ScoreFlag(text, parse_scorer_spec(text))
    except CompareError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    except OSError as e:  # json_schema:FILE that cannot be read
        raise argparse.ArgumentTypeError(f"{e.filename}: {e.strerror}") from None


def add_score_arg(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    """--score SPEC, repeatable."""
    p.add_argument("--score", action="append", type=score_flag, metavar="SPEC", dest="score",
                   required=required, help=SCORE_HELP)


def _renamed(spec: str, name: str) -> str:
    """`spec` with name=NAME added, as the spec grammar takes it."""
    head, _, rest = spec.partition(":")
    if head.lower() in MODEL_SPECS:
        deployment, _, options = rest.partition(":")
        return f"{head}:{deployment}:name={name}" + (f",{options}" if options else "")
    return f"{head}:name={name}" + (f",{rest}" if rest else "")


def checked_scorers(flags: Sequence[ScoreFlag] | None) -> list[Scorer]:
    """The scorers of the --score flags; two with one name (one column) are a usage error."""
    seen: dict[str, ScoreFlag] = {}
    for flag in flags or ():
        first = seen.setdefault(flag.scorer.name, flag)
        if first is flag:
            continue
        name = flag.scorer.name
        if flag.spec.partition(":")[0].lower() in ("regex", "json_schema"):
            fix = "score one at a time, or name them in Python (compare.score)"
        else:
            fix = f"name one, e.g. --score {_renamed(flag.spec, name + '_2')}"
        raise UsageError(f"--score {first.spec} and --score {flag.spec} both make a scorer named "
                         f"{name!r} (column score_{name}); {fix}")
    return [f.scorer for f in flags or ()]


def called(flags: Sequence[ScoreFlag] | None) -> dict[str, str]:
    """Deployment name → the --score spec that calls it (judges, embeddings), in flag order."""
    out: dict[str, str] = {}
    for flag in flags or ():
        for name in (flag.scorer.judge, flag.scorer.embed):
            if name:
                out.setdefault(name, flag.spec)
    return out


def _target_of_last_flag(args: argparse.Namespace, name: str) -> Deployment:
    target = dict(getattr(args, "_current", None) or {})
    return Deployment(name=name, endpoint=target.get("endpoint"),
                      kind=target.get("kind") or "azure-inference",
                      api_version=target.get("api_version"),
                      api_key_env=target.get("api_key_env"))


def _from_file(path: str, wanted: dict[str, str]) -> list[Deployment]:
    from compare.deployments_file import load_deployments

    deps = {d.name: d for d in read_file(path, load_deployments, "deployments file")}
    for name, spec in wanted.items():
        if name not in deps:
            raise UsageError(
                f"--score {spec}: {path} has no deployment {name!r}{hint(name, deps)}; add it "
                f"there (a judge need not be compared: --only picks the compared ones)")
    return [deps[n] for n in wanted]


def _from_local(endpoint: Any, args: argparse.Namespace, wanted: dict[str, str]
                ) -> list[Deployment]:
    from compare.deployments_file import local_deployments

    kind = (getattr(args, "_current", None) or {}).get("kind") or "azure-inference"
    try:
        return local_deployments(endpoint, kind=kind, names=list(wanted))
    except CompareError as e:
        first = next(iter(wanted.values()))
        raise UsageError(f"--score {first}: {e}") from None


def run_judges(args: argparse.Namespace, chosen: Chosen, flags: Sequence[ScoreFlag] | None,
               endpoint: Any = None) -> list[Deployment]:
    """The deployments `compare run`'s scorers call that are not compared (see the module doc)."""
    compared = {d.name for d in chosen.deployments}
    wanted = {n: s for n, s in called(flags).items() if n not in compared}
    if not wanted:
        return []
    if chosen.origin == LOCAL:
        return _from_local(endpoint, args, wanted)
    if chosen.origin == FLAGS:
        return [_target_of_last_flag(args, name) for name in wanted]
    return _from_file(chosen.origin, wanted)


def local_names(args: argparse.Namespace) -> list[str] | None:
    """What a local endpoint started for the command must serve: --only plus the judges."""
    if not args.only:
        return None
    return list(dict.fromkeys([*args.only, *called(args.score)]))


def manifest_deployments(results: Any) -> list[Deployment]:
    """The run's deployments as its manifest describes them (keys come from the environment);
    one that cannot be rebuilt here (e.g. its endpoint variable is unset) is left out."""
    out = []
    for entry in results.manifest.get("deployments") or ():
        try:
            out.append(Deployment(**{k: v for k, v in entry.items() if k in FIELD_NAMES}))
        except (CompareError, TypeError):
            continue
    return out


def _on_run_endpoint(name: str, spec: str, compared: list[Deployment], run_dir: str
                     ) -> Deployment:
    targets = {(d.endpoint, d.kind, d.api_version, d.api_key_env) for d in compared}
    if len(targets) != 1:
        where = (f"its deployments are on {len(targets)} endpoints" if targets
                 else "its manifest names no deployment")
        raise UsageError(
            f"--score {spec}: {name!r} is not one of the deployments of {run_dir} and {where}; "
            f"say where it is with --deployments FILE or --endpoint URL --kind KIND "
            f"--deployment {name}")
    endpoint, kind, api_version, api_key_env = targets.pop()
    return Deployment(name=name, endpoint=endpoint, kind=kind, api_version=api_version,
                      api_key_env=api_key_env)


def score_judges(results: Any, run_dir: str, flags: Sequence[ScoreFlag] | None,
                 given: Chosen | None) -> list[tuple[Deployment, str]]:
    """For `compare score`: (deployment, where it came from) for each deployment the scorers
    call; see the module doc. Deployments given that no scorer calls are a usage error."""
    wanted = called(flags)
    named = {d.name: d for d in given.deployments} if given is not None else {}
    unused = [n for n in named if n not in wanted]
    if unused and given is not None and given.origin == FLAGS:
        raise UsageError(f"--deployment {unused[0]}: no --score calls it (the deployments flags "
                         "of `compare score` name judge and embedding deployments)")
    compared = manifest_deployments(results)
    by_name = {d.name: d for d in compared}
    out = []
    for name, spec in wanted.items():
        if name in named and given is not None:
            out.append((named[name], given.origin))
        elif name in by_name:
            out.append((by_name[name], RUN_MANIFEST))
        elif given is not None and given.origin != FLAGS:
            raise UsageError(f"--score {spec}: {given.origin} has no deployment {name!r}"
                             f"{hint(name, named)}")
        else:
            out.append((_on_run_endpoint(name, spec, compared, run_dir), RUN_MANIFEST))
    return out
