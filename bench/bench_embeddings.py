"""Which real embedding model the local endpoint should serve: each candidate on 20 paraphrase
and 20 unrelated sentence pairs (bench/data/embedding_pairs.jsonl, written for this benchmark).

    .venv/bin/python bench/bench_embeddings.py [--smoke]

Candidates: all-MiniLM-L6-v2 through sentence-transformers (the `embeddings` extra), and the
chat models the project already ships, run by llama.cpp in embedding mode with mean pooling
(SmolLM2-135M-Instruct, Gemma 3 270M). Each runs in its own process, so its startup time
(imports + load) and peak RSS are its own. Separation: ROC AUC of paraphrase vs unrelated
cosines (scipy's Mann-Whitney U / n1·n2), the mean cosine of each group, and the margin (lowest
paraphrase cosine minus highest unrelated one; positive means one threshold splits them).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

PAIRS = Path(__file__).with_name("data") / "embedding_pairs.jsonl"
CANDIDATES = ("minilm", "smollm2", "gemma3-base")


def _encoder(candidate: str):
    import numpy as np

    if candidate == "minilm":
        from compare.server.backends.sentence import SentenceEncoder, model_dir
        from compare.server.config import load_config

        spec = next(d for d in load_config().deployments if d.name == "embed-small")
        assert spec.encoder is not None
        model = SentenceEncoder(model_dir(spec.encoder.weights), 1).model
        return lambda texts: model.encode(texts, normalize_embeddings=True)
    from llama_cpp import LLAMA_POOLING_TYPE_MEAN, Llama

    from compare.server.backends.llama import resolve_weights
    from compare.server.config import load_config

    spec = next(d for d in load_config().deployments if d.name == candidate)
    assert spec.llama is not None
    llm = Llama(model_path=str(resolve_weights(spec.llama.weights)), embedding=True,
                pooling_type=LLAMA_POOLING_TYPE_MEAN, n_ctx=512, n_threads=1, verbose=False)

    def encode(texts: list[str]):
        vectors = np.array([llm.embed(t) for t in texts], dtype=np.float64)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    return encode


def measure(candidate: str, smoke: bool) -> dict[str, float]:
    """Startup, speed, separation and memory of one candidate (in this process)."""
    import numpy as np
    from scipy import stats

    started = time.perf_counter()
    encode = _encoder(candidate)
    startup = time.perf_counter() - started
    rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
    if smoke:
        rows = [r for r in rows if r["paraphrase"]][:3] + [r for r in rows
                                                          if not r["paraphrase"]][:3]
    encode(["warm up"])
    started = time.perf_counter()
    a, b = encode([r["a"] for r in rows]), encode([r["b"] for r in rows])
    per_text = (time.perf_counter() - started) / (2 * len(rows))
    cosines = np.sum(np.asarray(a) * np.asarray(b), axis=1)
    para = cosines[[r["paraphrase"] for r in rows]]
    other = cosines[[not r["paraphrase"] for r in rows]]
    u = stats.mannwhitneyu(para, other, alternative="greater").statistic
    return {"startup_s": startup, "ms_per_text": per_text * 1000,
            "auc": float(u / (len(para) * len(other))), "mean_paraphrase": float(para.mean()),
            "mean_unrelated": float(other.mean()), "margin": float(para.min() - other.max()),
            "dims": int(np.asarray(a).shape[1]),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="3 + 3 pairs: checks the script")
    parser.add_argument("--only", default=",".join(CANDIDATES))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.smoke)))
        return
    print(f"{'candidate':<12} {'AUC':>5} {'cos para':>8} {'cos unrel':>9} {'margin':>7} "
          f"{'dims':>5} {'startup s':>9} {'ms/text':>8} {'peak RSS MiB':>12}")
    for candidate in args.only.split(","):
        cmd = [sys.executable, __file__, "--child", candidate] + (["--smoke"] if args.smoke
                                                                  else [])
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
        if done.returncode != 0:
            print(f"{candidate:<12} failed: {done.stderr.strip().splitlines()[-1:]}")
            continue
        r = json.loads(done.stdout.strip().splitlines()[-1])
        print(f"{candidate:<12} {r['auc']:>5.3f} {r['mean_paraphrase']:>8.3f} "
              f"{r['mean_unrelated']:>9.3f} {r['margin']:>7.3f} {r['dims']:>5} "
              f"{r['startup_s']:>9.2f} {r['ms_per_text']:>8.1f} {r['peak_rss_mib']:>12.0f}")


if __name__ == "__main__":
    main()
