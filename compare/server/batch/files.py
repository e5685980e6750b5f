"""The file store behind `/openai/files`: uploads (purpose `batch`) and job outputs
(`batch_output`), kept on disk under one directory for the life of the server."""

from __future__ import annotations

import codecs
import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import BodyPartReader

from compare.server.azure_errors import WireError

UPLOAD_PURPOSES = ("batch",)
CHUNK = 1 << 16


def invalid(message: str, param: str | None = None, status: int = 400) -> WireError:
    """An `invalidPayload` error (the code the files and batches spec defines for bad input)."""
    return WireError(status, "invalidPayload", message, param=param)


def not_found(what: str, ident: str) -> WireError:
    """A `notFound` error naming the missing file or batch."""
    return WireError(404, "notFound", f"No {what} with id {ident!r} exists on this endpoint.")


@dataclass
class FileRecord:
    """One stored file, and its `File` body."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    path: Path

    def body(self) -> dict[str, Any]:
        """The `File` object of the files API."""
        return {"id": self.id, "object": "file", "bytes": self.bytes,
                "created_at": self.created_at, "filename": self.filename,
                "purpose": self.purpose, "status": "processed"}


class FileStore:
    """Files by id, their bytes in `root`."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = root
        self.max_bytes = max_bytes
        self.files: dict[str, FileRecord] = {}

    def get(self, file_id: str) -> FileRecord:
        """The file `file_id`, or 404."""
        record = self.files.get(file_id)
        if record is None:
            raise not_found("file", file_id)
        return record

    def new_path(self) -> tuple[str, Path]:
        """A fresh file id and where its bytes go."""
        file_id = f"file-{uuid.uuid4().hex}"
        return file_id, self.root / file_id

    def add(self, file_id: str, path: Path, filename: str, purpose: str) -> FileRecord:
        """Register bytes already written at `path`."""
        record = FileRecord(file_id, filename, purpose, path.stat().st_size, int(time.time()),
                            path)
        self.files[file_id] = record
        return record

    def delete(self, file_id: str) -> FileRecord:
        """Forget a file and remove its bytes (a running job keeps its open handle)."""
        record = self.get(file_id)
        del self.files[file_id]
        record.path.unlink(missing_ok=True)
        return record

    def listing(self, purpose: str | None) -> list[FileRecord]:
        """Files, newest first, optionally of one purpose."""
        records = [r for r in self.files.values() if purpose in (None, r.purpose)]
        return sorted(records, key=lambda r: r.created_at, reverse=True)

    async def save_upload(self, part: BodyPartReader, purpose: str) -> FileRecord:
        """Stream a multipart file part to disk: at most `max_bytes`, UTF-8 without a BOM (what
        Azure accepts for batch input)."""
        filename = part.filename or "upload.jsonl"
        file_id, path = self.new_path()
        decoder = codecs.getincrementaldecoder("utf-8")()
        size = 0
        try:
            with open(path, "wb") as out:
                while chunk := await part.read_chunk(CHUNK):
                    if size == 0 and chunk.startswith(codecs.BOM_UTF8):
                        raise invalid(f"{filename} starts with a byte-order mark: save it as "
                                      "UTF-8 without BOM.", "file")
                    size += len(chunk)
                    if size > self.max_bytes:
                        raise invalid(f"{filename} is larger than {self.max_bytes} bytes, the "
                                      "limit for a batch input file.", "file", status=413)
                    _decode(decoder, chunk, size - len(chunk), filename)
                    out.write(chunk)
                _decode(decoder, b"", size, filename, final=True)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        if size == 0:
            path.unlink(missing_ok=True)
            raise invalid(f"{filename} is empty.", "file")
        return self.add(file_id, path, filename, purpose)

    def close(self) -> None:
        """Remove every stored file."""
        for record in self.files.values():
            record.path.unlink(missing_ok=True)
        self.files.clear()
        if self.root.is_dir():
            for leftover in self.root.iterdir():
                leftover.unlink(missing_ok=True)
            os.rmdir(self.root)


def _decode(decoder: Any, chunk: bytes, offset: int, filename: str, final: bool = False) -> None:
    try:
        decoder.decode(chunk, final)
    except UnicodeDecodeError as exc:
        raise invalid(f"{filename} is not UTF-8 text (byte {offset + exc.start}): save it as "
                      "UTF-8.", "file") from None
