"""Scoring speed and memory: 100k synthetic records through every non-model scorer.

    .venv/bin/python bench/bench_scoring.py [--records 100000] [--smoke] [--results PATH]

Goal: all non-model scorers over 100k records in ≤ 10 s and ≤ +200 MB RSS.

The records mimic an evaluation run: 1,000 prompts × 10 deployments × 10 repeats, prompts of
five families (arithmetic, capitals, multiple choice, JSON, free text) with their references,
and answers of realistic shapes — a bare answer, the answer in a sentence, a wrong answer,
a longer explanation (up to 60 words), JSON in a fenced block, some failed rows. Most outputs
are distinct (word order and filler are drawn at random); short answers repeat, as they do.

Each scorer is timed alone through `score_frame` (its batch path plus building the long and
wide frames), then all together. Imports and first-use set-up are warmed up on a tiny frame
first and reported apart. RSS is sampled every 5 ms on a thread; "+RSS" is the peak during
scoring minus the RSS just before it.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import common_args, header, results_path, table, write_section

from compare.prompts import PromptSet, load_prompts
from compare.scorers import parse_scorer_spec, score_frame_sync

SCORERS = ["exact", "includes", "f1", "numeric", "choice", "regex:(?i)answer:\\s*(\\w+)",
           "rouge", "chrf", "bleu", "edit_similarity", "json_valid", "json_schema"]
SCHEMA = {"type": "object", "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
WORDS = ["the", "model", "thinks", "answer", "because", "value", "city", "river", "number",
         "result", "first", "second", "people", "capital", "known", "large", "small", "quickly",
         "country", "north", "south", "report", "figure", "likely", "therefore", "given",
         "question", "simple", "note", "total"]
CITIES = ["Paris", "Berlin", "Madrid", "Rome", "Tokyo", "Ottawa", "Canberra", "Lima", "Cairo"]


def _prompts(n: int, rng: np.random.Generator) -> tuple[PromptSet, list[str]]:
    rows, families = [], []
    for i in range(n):
        family = ("arithmetic", "capital", "choice", "json", "text")[i % 5]
        if family == "arithmetic":
            a, b = rng.integers(10, 999, 2)
            ref, text = str(a * b), f"What is {a} times {b}?"
        elif family == "capital":
            ref, text = CITIES[i % len(CITIES)], f"What is the capital of country {i}?"
        elif family == "choice":
            ref, text = "ABCD"[i % 4], f"Question {i}: pick A, B, C or D."
        elif family == "json":
            ref, text = '{"name": "Ann", "age": 30}', f"Give JSON for person {i}."
        else:
            ref = " ".join(rng.choice(WORDS, rng.integers(8, 20)))
            text = f"Explain topic {i} in one sentence."
        rows.append({"id": f"q{i}", "prompt": text, "reference": ref, "tags": [family]})
        families.append(family)
    return load_prompts(rows), families


def _output(family: str, ref: str, rng: np.random.Generator) -> str | None:
    kind = rng.random()
    filler = " ".join(rng.choice(WORDS, rng.integers(3, 60 if kind > 0.8 else 15)))
    if kind < 0.03:
        return None  # a failed row
    if family == "json":
        body = ref if kind < 0.6 else '{"name": "Ann", "age": "thirty"}'
        return body if kind < 0.4 else f"Sure.\n```json\n{body}\n```\n{filler}"
    wrong = str(rng.integers(1, 10**6)) if family == "arithmetic" else "Lima"
    answer = ref if kind < 0.6 else wrong
    if kind < 0.3:
        return answer
    if kind < 0.6:
        return f"Answer: {answer}. {filler}"
    return f"{filler} {answer} {filler[: int(rng.integers(0, 80))]}"


def synthetic_frame(records: int, seed: int = 7) -> tuple[pd.DataFrame, PromptSet]:
    rng = np.random.default_rng(seed)
    n_prompts = max(5, records // 100)
    prompts, families = _prompts(n_prompts, rng)
    rows = []
    for r in range(records):
        p = r % n_prompts
        dep, rep = (r // n_prompts) % 10, r // (n_prompts * 10)
        out = _output(families[p], prompts[p].reference or "", rng)
        rows.append((prompts[p].id, f"dep-{dep}", rep, "ok" if out is not None else "error",
                     out, False))
    frame = pd.DataFrame.from_records(
        rows, columns=["prompt_id", "deployment", "repeat", "status", "output", "cached"])
    return frame, prompts


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


class PeakRss:
    """The peak RSS while the block runs, sampled every 5 ms on a thread."""

    def __enter__(self) -> PeakRss:
        self.start = _rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss_mb())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, _rss_mb())

    @property
    def delta(self) -> float:
        return self.peak - self.start


def _scorers(specs: list[str]) -> list:
    from compare.scorers import json_schema

    return [json_schema(SCHEMA) if s == "json_schema" else parse_scorer_spec(s) for s in specs]


def _timed(frame: pd.DataFrame, prompts: PromptSet, specs: list[str]
           ) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds of this process, +RSS MB) of scoring `frame` with `specs`."""
    gc.collect()
    scorers = _scorers(specs)
    with PeakRss() as rss:
        start, cpu = time.perf_counter(), time.process_time()
        scored = score_frame_sync(frame, prompts, scorers)
        took, cpu = time.perf_counter() - start, time.process_time() - cpu
    del scored
    return took, cpu, rss.delta


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    common_args(parser)
    args = parser.parse_args(argv)
    n = 500 if args.smoke else args.records
    frame, prompts = synthetic_frame(n)
    start = time.perf_counter()
    _timed(frame.head(50), prompts, SCORERS)  # imports, first-use set-up
    warm = time.perf_counter() - start
    rows = []
    for spec in [*([s] for s in SCORERS), SCORERS]:
        took, cpu, delta = _timed(frame, prompts, spec)
        label = spec[0].split(":")[0] if len(spec) == 1 else "all together"
        rows.append([label, f"{took:.2f}", f"{cpu:.2f}", f"{n / took / 1000:.0f}k",
                     f"{delta:.0f}"])
    summed = sum(float(r[1]) for r in rows[:-1])
    together = rows[-1]
    goals = [
        {"goal": "scoring 100k records with every non-model scorer ≤ 10 s",
         "result": f"{together[1]} s wall, {together[2]} s CPU", "met": float(together[2]) <= 10},
        {"goal": "… at ≤ +200 MB RSS", "result": f"+{together[4]} MB",
         "met": float(together[4]) <= 200},
    ]
    body = "\n".join([
        header("7. Scoring: non-model scorers", args.smoke),
        f"{n:,} records ({frame['output'].isna().sum():,} failed rows), "
        f"{frame['output'].dropna().str.len().mean():.0f} characters per output on average, "
        f"{frame['output'].nunique():,} distinct outputs. Imports and set-up (warm-up): "
        f"{warm:.2f} s. Goal: all together ≤ 10 s and ≤ +200 MB RSS. CPU s is this process's "
        "CPU time (user + system, all threads): on a busy machine it shows the work that wall "
        "time hides behind other processes.\n",
        table(["scorer", "wall s", "CPU s", "records/s", "+RSS MB"], rows),
        f"\nSum of the scorers alone (wall): {summed:.2f} s.",
    ])
    print(body)
    write_section("scoring", body, results_path(args), goals if n >= 100_000 else None)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
