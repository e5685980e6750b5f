"""The coordinator over a Unix socket, for shards that are processes on this machine.

The driver serves its `Coordinator` on a socket in a private temporary directory; each shard
process connects once. Frames are a 4-byte length and a pickle (both ends are this package, in
processes the driver started). When a shard's connection closes (it ended, or was killed), the
places it held are freed at once; when the driver's end closes, the shard's client reports the
coordinator lost and the shard stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import pickle
import struct
from typing import Any, Final

from compare.distributed.coordinator import Coordinator, Exchange, Reply

_HEADER: Final = struct.Struct("!I")


async def _read(reader: asyncio.StreamReader) -> Any:
    size = _HEADER.unpack(await reader.readexactly(_HEADER.size))[0]
    return pickle.loads(await reader.readexactly(size))


def _frame(obj: Any) -> bytes:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(data)) + data


class CoordinatorServer:
    """The listening socket and every shard's connection; `close()` ends them all (a shard
    whose connection ends stops)."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()

    def close(self) -> None:
        if self.server is not None:
            self.server.close()
        for writer in list(self.writers):
            writer.close()


async def serve(coordinator: Coordinator, path: str) -> CoordinatorServer:
    """Serve `coordinator` on the Unix socket `path` until the returned server is closed."""
    served = CoordinatorServer()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        shard: int | None = None
        served.writers.add(writer)
        try:
            while True:
                kind, arg = await _read(reader)
                if kind == "hello":
                    shard = int(arg)
                    coordinator.hello(shard)
                    reply: Any = None
                else:
                    reply = coordinator.exchange(arg)
                writer.write(_frame(reply))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            served.writers.discard(writer)
            if shard is not None:
                coordinator.forget(shard)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    served.server = await asyncio.start_unix_server(handle, path=path)
    return served


class SocketTransport:
    """A shard's connection to the driver's coordinator."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._streams: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None

    async def _call(self, kind: str, arg: Any) -> Any:
        if self._streams is None:
            self._streams = await asyncio.open_unix_connection(self.path)
        reader, writer = self._streams
        writer.write(_frame((kind, arg)))
        await writer.drain()
        return await _read(reader)

    async def hello(self, shard: int) -> None:
        await self._call("hello", shard)

    async def exchange(self, msg: Exchange) -> Reply:
        reply: Reply = await self._call("exchange", msg)
        return reply

    async def aclose(self) -> None:
        if self._streams is not None:
            writer = self._streams[1]
            self._streams = None
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()
