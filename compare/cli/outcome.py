"""What a command ends with: exit codes, the failure report on stderr, the interrupted message,
and reading a user's file so that whatever it trips over is one error naming the file.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Final

from compare.records import FAILED_STATUSES

EXIT_OK: Final = 0
EXIT_ROWS_FAILED: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130
CHARTS_FILE: Final = "charts.png"
EXIT_CODES_HELP: Final = """exit codes:
  0    every row ok (or content_filtered)
  1    finished, but some rows failed (error, timeout, rate_limited, incomplete), or
       judge/embedding calls of --score failed (rerun to retry them)
  2    usage or configuration error (argument, file, missing key)
  130  interrupted; finished records kept in OUT/records.jsonl (rerun to resume)"""


def read_file(path: str | Path, loader: Any, what: str) -> Any:
    """Run a file loader; whatever it trips over becomes one ConfigError naming the file."""
    import yaml

    from compare.errors import CompareError, ConfigError

    try:
        return loader(path)
    except CompareError:
        raise
    except UnicodeDecodeError as e:
        raise ConfigError(
            f"{what} is not UTF-8 text (byte {e.start}: {e.object[e.start:e.start + 1]!r})",
            source=str(path),
        ) from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to read", source=str(path)) from None
    except (yaml.YAMLError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ConfigError(f"cannot read {what}: {first}", source=str(path)) from None


def report_failures(results: Any) -> int:
    """Say on stderr how many rows failed and the first failure; the exit code that goes with it.

    content_filtered is a result (the service's filter verdict), not a failure: it is counted on
    its own line and never makes the exit code 1.
    """
    frame = results.frame
    filtered = int((frame["status"] == "content_filtered").sum())
    if filtered:
        print(f"{filtered} of {len(frame)} rows content_filtered (the service's filter answered "
              "instead of the model; not a failure)", file=sys.stderr)
    failed = frame["status"].isin(list(FAILED_STATUSES))
    n_failed = int(failed.sum())
    if not n_failed:
        return EXIT_OK
    kinds = frame.loc[failed, "status"].value_counts().to_dict()
    detail = ", ".join(f"{k} {v}" for k, v in kinds.items())
    print(f"{n_failed} of {len(frame)} rows failed ({detail})", file=sys.stderr)
    first = frame.loc[failed].iloc[0]
    print(f"first failure: {first['deployment']}: {first['error_type']}: "
          f"{first['error_message']}", file=sys.stderr)
    return EXIT_ROWS_FAILED


def report_scoring(results: Any, scorers: Any) -> int:
    """Say on stderr which scorers' model calls (judges, embeddings) failed for good; exit 1
    when any did. Finished calls are checkpointed, so running again sends only those."""
    meta = results.manifest.get("scorers") or {}
    failed = {s.name: int((meta.get(s.name) or {}).get("errors") or 0) for s in scorers}
    failed = {name: n for name, n in failed.items() if n}
    if not failed:
        return EXIT_OK
    detail = ", ".join(f"{name} {n}" for name, n in failed.items())
    print(f"scoring calls failed ({detail}): those rows score NaN; run the same command again "
          "to retry them (finished calls are not sent again)", file=sys.stderr)
    return EXIT_ROWS_FAILED


def interrupted(out: Path) -> int:
    """Say how many records a Ctrl-C kept and how to resume; exit code 130."""
    from compare.checkpoint import read_checkpoint

    n = len(read_checkpoint(out))
    where = out / "records.jsonl" if (out / "records.jsonl").exists() else out
    print(f"\ninterrupted: {n} finished records kept in {where}; run the same "
          "command again to resume", file=sys.stderr)
    return EXIT_INTERRUPTED


def print_where(out: Path, chart: Path | None) -> None:
    """Where the run directory and the charts are."""
    files = "results.parquet, manifest.json, records.jsonl"
    if (out / "parts").is_dir():  # a sharded run (--workers / --ray)
        files = "parts/*.parquet, manifest.json, records-*.jsonl"
    print(f"\nresults: {out}/ ({files})")
    if chart is not None:
        print(f"charts:  {chart}")


def write_charts(results: Any, path: Path) -> Path:
    """The charts dashboard as a PNG (figures are backend-free, see compare.charts)."""
    from compare import charts

    fig = charts.dashboard(results)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    return path
