"""What a batch deployment does when its run is interrupted (Ctrl-C, a cancelled task).

Its batches keep running on the service (and are billed for what they finish): the run says
which, and how a rerun with the same `out` collects them without sending anything again. With
`cancel_batches_on_interrupt` they are cancelled instead; what they finished is still collected
on resume, and the rest is sent again in a new batch.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from pathlib import Path

from compare.endpoints.batch import BatchClient
from compare.errors import EndpointError
from compare.runner.batch_part import Part

log = logging.getLogger("compare.runner")


async def interrupted(name: str, running: list[Part], client: BatchClient | None,
                      out: Path | None) -> None:
    """Cancel the running parts' batches when given a `client`; print what to do next."""
    if not running:
        return
    cancelled = await cancel_batches(client, running) if client is not None else []
    print(interrupt_message(name, running, cancelled, out), file=sys.stderr)


async def cancel_batches(client: BatchClient, parts: list[Part]) -> list[Part]:
    """Ask the service to cancel each part's batch (15 s each at most); the ones it accepted."""
    cancelled = []
    for part in parts:
        try:
            await asyncio.wait_for(client.cancel(str(part.batch_id)), 15)
            cancelled.append(part)
        except (EndpointError, TimeoutError) as e:
            log.warning("could not cancel batch %s: %s", part.batch_id, e)
    return cancelled


def interrupt_message(name: str, running: list[Part], cancelled: list[Part],
                      out: Path | None) -> str:
    """What an interrupted run tells the user about its batches, and how to go on."""
    ids = ", ".join(str(p.batch_id) for p in running)
    n = len(running)
    them = "it" if n == 1 else "them"
    if cancelled:
        head = (f"batch deployment {name!r}: cancelled {len(cancelled)} batch"
                f"{'es' if len(cancelled) > 1 else ''} ({ids}); finished requests are kept by "
                "the service")
        todo = "collect what finished and send the rest in a new batch"
    else:
        head = (f"batch deployment {name!r}: {n} batch{'es' if n > 1 else ''} still running "
                f"on the service ({ids})")
        todo = f"collect {them} without sending anything again"
    if out is None:
        return (f"{head}. This run has no out directory, so compare cannot take "
                f"{them} up again: fetch the results with the batch ids, and pass out=DIR "
                "next time.")
    tail = "" if cancelled else (" To cancel batches on interrupt instead, pass "
                                 "cancel_batches_on_interrupt=True (CLI: "
                                 "--cancel-batches-on-interrupt).")
    return (f"{head}. Run the same call again with out={str(out)!r} (CLI: the same command "
            f"with --out {out}) to {todo}.{tail}")
