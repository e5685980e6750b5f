"""`workers=N`: the shards as N processes on this machine, the coordinator in the driver.

Each shard is a fresh interpreter (`python -m compare.distributed.local_engine SOCKET JOB`): not a
fork, which would copy the driver's threads and event loop half-alive, and not multiprocessing's
spawn, which re-imports the caller's `__main__` (a script without a main guard, a notebook). It
reads its pickled `ShardJob` and connects to the driver's coordinator socket.
A shard process that dies (killed, out of memory) is started again, up to `MAX_RESTARTS` times;
it resumes from the records already in the run directory, so no finished key is sent again.
When the driver dies, its socket closes and every shard stops, keeping its records.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path
from typing import Any, Final

from compare.distributed.coordinator import Coordinator
from compare.distributed.socket_transport import SocketTransport, serve
from compare.distributed.worker import ShardJob, run_shard
from compare.errors import CompareError

MAX_RESTARTS: Final = 3
POLL_S: Final = 0.25
STOP_GRACE_S: Final = 10.0


def process_main(path: str, job_file: str) -> None:
    """A shard process: run the shard, exit 0 when it finished."""
    job: ShardJob = pickle.loads(Path(job_file).read_bytes())

    async def main() -> None:
        transport = SocketTransport(path)
        try:
            await run_shard(job, transport)
        finally:
            await transport.aclose()

    try:
        asyncio.run(main())
    except BaseException:
        traceback.print_exc()
        sys.exit(1)


class LocalEngine:
    """Start, watch and restart the shard processes of one run."""

    def __init__(self) -> None:
        self.procs: dict[int, subprocess.Popen[bytes]] = {}
        self.job_files: dict[int, Path] = {}
        self.restarts: dict[int, int] = {}

    def totals(self, coordinator: Coordinator) -> dict[str, list[int]]:
        return coordinator.totals()

    async def run(self, jobs: list[ShardJob], coordinator: Coordinator,
                  on_tick: Any) -> None:
        """Run every shard to the end; `on_tick()` is called every `POLL_S` (progress)."""
        with tempfile.TemporaryDirectory(prefix="compare-shards-") as tmp:
            path = str(Path(tmp) / "coordinator.sock")
            server = await serve(coordinator, path)
            try:
                for job in jobs:
                    self.job_files[job.shard] = Path(tmp) / f"job-{job.shard}.pickle"
                    self.job_files[job.shard].write_bytes(pickle.dumps(job))
                    self._start(job, path)
                await self._watch(jobs, path, on_tick)
            finally:
                server.close()
                await self._stop()

    def _start(self, job: ShardJob, path: str) -> None:
        # The child imports this very `compare`, wherever the driver found it.
        root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        cmd = [sys.executable, "-m", "compare.distributed.local_engine", path,
               str(self.job_files[job.shard])]
        self.procs[job.shard] = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL)

    @property
    def pids(self) -> list[int]:
        """The shard processes' ids (a test kills one)."""
        return [p.pid for p in self.procs.values() if p.poll() is None]

    async def _watch(self, jobs: list[ShardJob], path: str, on_tick: Any) -> None:
        left = {job.shard: job for job in jobs}
        while left:
            await asyncio.sleep(POLL_S)
            on_tick()
            for shard, job in list(left.items()):
                code = self.procs[shard].poll()
                if code is None:
                    continue
                if code == 0:
                    del left[shard]
                    continue
                self.restarts[shard] = self.restarts.get(shard, 0) + 1
                if self.restarts[shard] > MAX_RESTARTS:
                    raise CompareError(
                        f"shard {shard} of {len(jobs)} stopped {self.restarts[shard]} times "
                        f"(last exit code {code}; its error is on stderr above); finished "
                        f"records are kept in {job.out} — rerun with the same out to resume")
                self._start(job, path)
        on_tick()

    async def _stop(self) -> None:
        """Shards see the socket close and stop; any still running after a grace period are
        terminated."""
        loop = asyncio.get_running_loop()
        for proc in self.procs.values():
            try:
                await loop.run_in_executor(None, proc.wait, STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                proc.terminate()
                await loop.run_in_executor(None, proc.wait)


if __name__ == "__main__":
    process_main(sys.argv[1], sys.argv[2])
