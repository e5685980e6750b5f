"""The batch API of one batch deployment through the openai SDK's `files` and `batches`.

`BatchClient` uses the pool's shared SDK client for the endpoint (`AsyncAzureOpenAI` for
azure-openai-batch: `{endpoint}/openai/files?api-version=...`, since the SDK rewrites only
deployment-scoped paths; `AsyncOpenAI` on `/openai/v1` for openai-batch). Uploads stream from a
file on disk and downloads stream to one, so a 100,000-line batch never sits in memory. Every
SDK exception is translated by `http_errors.translate` (the one table); a 404 is then said in
batch terms (no such batch or file, or no batch API at this URL).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Final

from compare.batch_settings import BATCH_URL, COMPLETION_WINDOW
from compare.deployments import Deployment
from compare.endpoints.batch_state import BatchState, parse_batch
from compare.endpoints.http_errors import Call, translate
from compare.errors import DeploymentNotFoundError, EndpointError

UPLOAD_TIMEOUT_S: Final = 900.0
# How far back `find_by_input` looks in the batch list (newest first) for a lost create answer.
FIND_PAGES: Final = 5


class BatchClient:
    """Files and batches calls for one batch deployment. Raises only `EndpointError`s."""

    def __init__(self, shared: Any, deployment: Deployment) -> None:
        self.shared = shared
        self.deployment = deployment
        self.call = Call(str(deployment.deployment), str(deployment.endpoint))
        self.timeout = float(deployment.read_timeout_s)

    def __repr__(self) -> str:
        return f"BatchClient({self.deployment.name!r}, {self.deployment.endpoint!r})"

    def _sdk(self) -> Any:
        return self.shared.sdk()

    def _error(self, error: Exception, what: str, missing: str | None = None) -> EndpointError:
        """The translated error; a 404 named for what was missing."""
        err = translate(error, self.call)
        if err.http_status != 404:
            return err
        where = self.deployment.endpoint
        if missing is None:
            return DeploymentNotFoundError(
                f"HTTP 404 {what}: {where} has no batch API — give the Azure OpenAI resource "
                "URL (https://NAME.openai.azure.com) with kind azure-openai-batch, or its "
                "/openai/v1 URL with kind openai-batch", http_status=404, code=err.code)
        return EndpointError(f"HTTP 404 {what}: no {missing} on {where} (deleted, or made "
                             "with another resource)", http_status=404, code=err.code)

    async def upload(self, path: Path, filename: str) -> str:
        """Upload a JSONL input file (purpose batch), streamed from disk; its file id."""
        try:
            with open(path, "rb") as source:
                uploaded = await self._sdk().files.create(
                    file=(filename, source, "application/jsonl"), purpose="batch",
                    timeout=max(UPLOAD_TIMEOUT_S, self.timeout))
        except Exception as e:
            raise self._error(e, f"uploading {filename}") from e
        return str(uploaded.id)

    async def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchState:
        """Create the batch for an uploaded file (the service answers 200, newer previews 201)."""
        try:
            batch = await self._sdk().batches.create(
                input_file_id=input_file_id, endpoint=BATCH_URL,  # type: ignore[arg-type]
                completion_window=COMPLETION_WINDOW, metadata=metadata, timeout=self.timeout)
        except Exception as e:
            raise self._error(e, f"creating a batch for file {input_file_id}") from e
        return parse_batch(batch)

    async def retrieve(self, batch_id: str) -> BatchState:
        """The batch's current state."""
        try:
            batch = await self._sdk().batches.retrieve(batch_id, timeout=self.timeout)
        except Exception as e:
            raise self._error(e, f"reading batch {batch_id}", f"batch {batch_id!r}") from e
        return parse_batch(batch)

    async def cancel(self, batch_id: str) -> BatchState:
        """Ask the service to cancel; a batch that already ended is only read (409)."""
        try:
            batch = await self._sdk().batches.cancel(batch_id, timeout=self.timeout)
        except Exception as e:
            err = self._error(e, f"cancelling batch {batch_id}", f"batch {batch_id!r}")
            if err.http_status == 409:
                return await self.retrieve(batch_id)
            raise err from e
        return parse_batch(batch)

    async def find_by_input(self, input_file_id: str, since: float) -> BatchState | None:
        """The batch made from `input_file_id`, when a create's answer was lost (the run was
        killed between sending it and reading the batch id). Looks at batches created since
        `since` (unix seconds), newest first."""
        try:
            page = await self._sdk().batches.list(limit=100, timeout=self.timeout)
            for _ in range(FIND_PAGES):
                for item in page.data:
                    state = parse_batch(item)
                    if state.input_file_id == input_file_id:
                        return state
                    if (state.created_at or time.time()) < since - 60:
                        return None
                if not page.has_next_page():
                    return None
                page = await page.get_next_page()
        except Exception as e:
            raise self._error(e, "listing batches") from e
        return None

    async def download(self, file_id: str, path: Path) -> int:
        """Stream a file's content to `path`; the number of bytes."""
        size = 0
        try:
            with open(path, "wb") as target:
                async with self._sdk().files.with_streaming_response.content(
                        file_id, timeout=max(UPLOAD_TIMEOUT_S, self.timeout)) as response:
                    async for chunk in response.iter_bytes():
                        target.write(chunk)
                        size += len(chunk)
        except Exception as e:
            raise self._error(e, f"downloading file {file_id}", f"file {file_id!r}") from e
        return size
