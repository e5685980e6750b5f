"""Progress: one tqdm.auto bar per run (terminal or notebook) with done/failed counts per
deployment, drawn on the thread that called `run()` even when the run's loop is elsewhere."""

from __future__ import annotations

import contextvars
import queue
import time
from collections.abc import Callable
from typing import Any, Final

from compare.records import FAILED_STATUSES, Record

PROGRESS_POSTFIX_INTERVAL_S: Final = 0.25


class Progress:
    """tqdm.auto bar (terminal or notebook) with done/error counts per deployment."""

    def __init__(self, total: int, names: list[str], enabled: bool, initial: int = 0) -> None:
        self.counts = {n: [0, 0] for n in names}
        self.bar: Any = None
        self._next_postfix = 0.0
        if enabled:
            make = BAR_FACTORY.get()
            if make is None:
                from tqdm.auto import tqdm as make
            self.bar = make(total=total, initial=initial, desc="compare", unit="req",
                            dynamic_ncols=True)

    def add(self, rec: Record) -> None:
        c = self.counts[rec.deployment]
        c[0] += 1
        if rec.status in FAILED_STATUSES:  # a content filter verdict is an answer, not a failure
            c[1] += 1
        bar = self.bar
        if bar is not None:
            if not rec.cached:
                bar.update(1)
            now = time.monotonic()
            if now >= self._next_postfix:
                self._next_postfix = now + PROGRESS_POSTFIX_INTERVAL_S
                bar.set_postfix_str(self.postfix(), refresh=False)

    def postfix(self) -> str:
        return " | ".join(f"{n} {d} done/{e} failed" for n, (d, e) in self.counts.items())

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix(), refresh=False)
            self.bar.close()
            self.bar = None


class BarRelay:
    """A tqdm stand-in for a run on a worker thread: its calls are queued for the caller's thread.

    In Jupyter, `run()` runs the event loop on a worker thread, but a tqdm.auto bar is an
    ipywidget: it should be created (displayed in the cell) and updated from the kernel's main
    thread, which is the thread waiting in `run()`. So the worker only queues (method, args)
    here and the waiting thread creates the real bar and applies the calls (`pump`).
    """

    def __init__(self) -> None:
        self._calls: queue.SimpleQueue[tuple[str, tuple[Any, ...], dict[str, Any]]] = \
            queue.SimpleQueue()
        self._bar: Any = None

    def __call__(self, **kwargs: Any) -> BarRelay:  # the factory: "create the bar"
        self._calls.put(("__init__", (), kwargs))
        return self

    def update(self, n: int = 1) -> None:
        self._calls.put(("update", (n,), {}))

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self._calls.put(("set_postfix_str", (s,), {"refresh": refresh}))

    def close(self) -> None:
        self._calls.put(("close", (), {}))

    def pump(self) -> None:
        """On the caller's thread: create the real bar / apply queued calls."""
        while True:
            try:
                name, args, kwargs = self._calls.get_nowait()
            except queue.Empty:
                return
            if name == "__init__":
                from tqdm.auto import tqdm

                self._bar = tqdm(**kwargs)
            elif self._bar is not None:
                getattr(self._bar, name)(*args, **kwargs)
                if name == "close":
                    self._bar = None


# Set on run()'s worker thread: progress bars are relayed to the thread that called run().
BAR_FACTORY: contextvars.ContextVar[Callable[..., Any] | None] = contextvars.ContextVar(
    "compare_bar_factory", default=None)
