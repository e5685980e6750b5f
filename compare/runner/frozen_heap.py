"""Keep the cyclic garbage collector's full passes off the event loop while requests are timed.

A full (generation 2) collection stops the event loop while it walks every tracked object. In a
process holding pandas, the SDKs and a notebook's data that took 24–42 ms per pass here (gc
callbacks around a 256-request run against a local server: two full passes), and every chunk
that arrived meanwhile was stamped that much late: at 16 requests in flight that alone is about
1 % of TTFT and latency measurements, the p99. `gc.freeze()` moves every object that exists at
that point (modules, SDK clients and what their first requests imported, the user's data) to a
permanent generation that collections skip; what the run itself creates is collected as usual.
The outermost run unfreezes when it ends, so cycles among the older objects are collected again
afterwards — unless the process had frozen objects of its own before the run, which are left so.
"""

from __future__ import annotations

import gc
from types import TracebackType


class FrozenHeap:
    """`with FrozenHeap() as heap:` freezes on entry; `heap.refreeze()` once lazily imported
    clients exist; the outermost exit unfreezes. Nested runs (judge calls, shards) share it."""

    _depth = 0  # runs inside each other in this process
    _undo_on_exit = False  # whether the outermost run's freeze is ours to undo

    def __enter__(self) -> FrozenHeap:
        if FrozenHeap._depth == 0:
            FrozenHeap._undo_on_exit = gc.get_freeze_count() == 0
        FrozenHeap._depth += 1
        gc.freeze()
        return self

    def refreeze(self) -> None:
        """Freeze what was created since (the SDK modules and clients a first request built)."""
        gc.freeze()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        FrozenHeap._depth -= 1
        if FrozenHeap._depth == 0 and FrozenHeap._undo_on_exit:
            gc.unfreeze()
