"""Human A/B ratings: blind pairs of answers, one vote appended to OUT/ratings.jsonl at a time.

The explorer's rate tab shows one prompt at a time with two deployments' answers side by side,
names hidden and sides randomised (seeded, so a session can be reproduced); each vote is written
and fsync'ed at once (a kernel crash loses none) and the names are revealed after voting.
`Results.ratings` reads them back; `compare.stats.bradley_terry(source="human")` ranks by them.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Final

import pandas as pd

from compare.errors import ConfigError
from compare.run_dir import RATINGS_FILE

VOTES: Final = ("left", "right", "tie", "both_bad")
RATING_COLUMNS: Final = ("prompt_id", "repeat", "left", "right", "vote", "note", "rated_at")


@dataclass(frozen=True)
class Pair:
    """What the rater sees: one prompt, which deployment is on each side (hidden until voted)."""

    prompt_id: str
    repeat: int
    left: str
    right: str


def plan_pairs(frame: pd.DataFrame, *, seed: int = 0, repeat: int = 0) -> list[Pair]:
    """Every pair of deployments that both answered a prompt ok (at `repeat`), in a seeded
    random order with seeded random sides."""
    rng = random.Random(seed)
    ok = frame[(frame["status"] == "ok") & (frame["repeat"] == repeat)]
    pairs = []
    for pid, rows in ok.groupby("prompt_id", sort=False):
        names = sorted(set(rows["deployment"].astype(str)))
        for a, b in combinations(names, 2):
            left, right = (a, b) if rng.random() < 0.5 else (b, a)
            pairs.append(Pair(str(pid), repeat, left, right))
    rng.shuffle(pairs)
    return pairs


def append_rating(directory: str | os.PathLike[str], pair: Pair, vote: str,
                  note: str = "") -> dict[str, object]:
    """Append one vote to DIRECTORY/ratings.jsonl, flushed and fsync'ed before returning."""
    if vote not in VOTES:
        raise ConfigError(f"vote must be one of {', '.join(VOTES)}, got {vote!r}", field="vote")
    row = {**asdict(pair), "vote": vote, "note": note or "",
           "rated_at": datetime.now(UTC).isoformat()}
    path = Path(directory) / RATINGS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    return row


def read_ratings(directory: str | os.PathLike[str] | None) -> pd.DataFrame:
    """The votes in DIRECTORY/ratings.jsonl (empty frame when there are none); a torn last
    line (a crash mid-write) is skipped."""
    rows = []
    path = Path(directory) / RATINGS_FILE if directory is not None else None
    if path is not None and path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                continue
            if isinstance(row, dict) and row.get("vote") in VOTES:
                rows.append(row)
    return pd.DataFrame(rows, columns=list(RATING_COLUMNS))
