"""`run()`'s synchronous path: inside a running event loop (Jupyter) the run gets its own loop on
a worker thread, while the calling thread stays responsive to Ctrl-C and draws the progress bar."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from compare.runner.progress import BAR_FACTORY, BarRelay

if TYPE_CHECKING:
    from compare.results import Results


def run_sync(make: Callable[[], Any]) -> Any:
    """Run the coroutine `make()` returns to its end: here without an event loop, or on a
    worker thread with its own loop inside a running one (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(make())
    return run_in_thread(make)


def run_in_thread(make: Callable[[], Any]) -> Results:
    box: dict[str, Any] = {}
    started = threading.Event()
    finished = threading.Event()
    relay = BarRelay()

    def target() -> None:
        BAR_FACTORY.set(relay)  # this thread's context; the run's task copies it
        loop = asyncio.new_event_loop()
        try:
            task = loop.create_task(make())
            box["loop"], box["task"] = loop, task
            started.set()
            box["result"] = loop.run_until_complete(task)
        except BaseException as e:  # handed to the calling thread
            box["error"] = e
        finally:
            started.set()
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                finished.set()

    thread = threading.Thread(target=target, name="compare-run", daemon=True)
    thread.start()
    try:
        # Short waits on an Event (not Thread.join, whose lock a KeyboardInterrupt can break)
        # keep the calling thread responsive to Ctrl-C / "interrupt kernel".
        # The same wake-ups draw the progress bar here, on the calling (kernel main) thread.
        while not finished.wait(0.05):
            relay.pump()
    except KeyboardInterrupt:
        started.wait()
        loop, task = box.get("loop"), box.get("task")
        if loop is not None and task is not None and not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)
        # The run writes its checkpoint, results and manifest, then stops.
        while not finished.wait(0.05):
            relay.pump()
        relay.pump()
        raise
    finally:
        relay.pump()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["result"]
