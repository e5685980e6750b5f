"""One background task on the Jupyter kernel's event loop, started and cancelled from any thread.

JupyterLab >= 4.6 delivers widget messages to an ipykernel *subshell*: a separate thread with its
own loop. A run started by a click must still live on the kernel's main loop, where cells (and
`await explorer.wait()`) run, so a click on a subshell hands the work over with
`call_soon_threadsafe`. The loop is the one running when the `BackgroundTask` was made.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any


class BackgroundTask:
    """At most one asyncio task at a time on the loop that made this object."""

    def __init__(self) -> None:
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.task: asyncio.Task[Any] | None = None
        # A start requested from another thread, whose task the kernel loop has yet to create.
        self._pending = False

    @property
    def running(self) -> bool:
        """A task is about to start or has not finished."""
        return self._pending or (self.task is not None and not self.task.done())

    def _on_kernel_loop(self) -> bool:
        """True on the thread of the loop this object was made on, or when none is known."""
        if self.loop is None or self.loop.is_closed() or not self.loop.is_running():
            return True
        try:
            return asyncio.get_running_loop() is self.loop
        except RuntimeError:
            return False

    def _call(self, fn: Callable[..., None], *args: Any) -> None:
        if self._on_kernel_loop():
            fn(*args)
        else:
            assert self.loop is not None
            self.loop.call_soon_threadsafe(fn, *args)

    def start(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> asyncio.Task[Any] | None:
        """Create the task running `make()` on the kernel's loop. Returns it, or None when the
        call came from another thread and the kernel's loop creates it in a moment."""
        self._pending = True
        self._call(self._launch, make)
        return self.task if not self._pending else None

    def _launch(self, make: Callable[[], Coroutine[Any, Any, Any]]) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = self.loop or asyncio.get_event_loop()
        self.task = loop.create_task(make())
        self._pending = False

    def cancel(self) -> None:
        """Cancel the task (from any thread)."""
        self._call(self._cancel)

    def _cancel(self) -> None:
        if self.task is not None and not self.task.done():
            self.task.cancel()

    async def settle(self) -> None:
        """Wait until the task has finished, however it ends. Cancelling this waiter (a notebook
        interrupt) leaves the task running."""
        while self._pending:  # a click on another thread: the task is about to be created
            await asyncio.sleep(0.01)
        if self.task is None:
            return
        try:
            await asyncio.shield(self.task)
        except asyncio.CancelledError:
            if not self.task.cancelled():  # the waiter itself was cancelled
                raise
