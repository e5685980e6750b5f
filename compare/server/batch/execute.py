"""Running a batch job: validation, the quota, its requests on the deployment's backend with
bounded concurrency, output and error files written line by line, and the end states
(completed, failed, expired with unfinished requests reported, cancelled with partial output)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from typing import IO, Any

from compare.server.azure_errors import WireError
from compare.server.batch.files import FileStore
from compare.server.batch.jobs import BatchBook, BatchFailure, BatchJob
from compare.server.batch.validate import ValidatedInput, validate_lines
from compare.server.chat import collect, output_gate, prepare, start
from compare.server.served import EndpointState, ServedDeployment
from compare.server.spec import AZURE_OPENAI, ResponseShape, usage

log = logging.getLogger("compare.server")


async def answer(dep: ServedDeployment, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """One batch request run like an online one: (status code, response body)."""
    try:
        if body.get("stream"):
            raise WireError(400, "invalid_request", "Batch requests cannot stream.",
                            param="stream")
        job = prepare(dep, body, AZURE_OPENAI, None)
        gen: Any = start(job, asyncio.get_running_loop().time())
        shape = ResponseShape(dialect=AZURE_OPENAI, id=f"chatcmpl-{uuid.uuid4().hex[:24]}",
                              created=int(time.time()), model=dep.spec.model,
                              filtered_deployment=bool(dep.spec.content_filter))
        gate = output_gate(job)
        text, reason = await collect(gen, gate)
        return 200, shape.completion(text, reason, usage(gen.prompt_tokens,
                                                         gen.completion_tokens), gate.hit)
    except WireError as exc:
        return exc.status, exc.body()
    except Exception:  # a bug, not the request's fault: one failed line, not a crashed job
        log.exception("batch request failed on deployment %s", dep.spec.name)
        return 500, WireError(500, "InternalServerError",
                              "The local endpoint hit an internal error.").body()


def _line(custom_id: str, status: int | None, body: Any, error: Any = None) -> str:
    response = None if status is None else {"status_code": status,
                                            "request_id": str(uuid.uuid4()), "body": body}
    return json.dumps({"id": f"batch_req_{uuid.uuid4().hex}", "custom_id": custom_id,
                       "response": response, "error": error}, ensure_ascii=False) + "\n"


class JobRun:
    """The execution of one job; `run()` is the job's task."""

    def __init__(self, job: BatchJob, endpoint: EndpointState, files: FileStore,
                 book: BatchBook) -> None:
        self.job, self.endpoint, self.files, self.book = job, endpoint, files, book
        self.pending: dict[int, str] = {}  # line number -> custom_id of requests in flight
        self.out_id, self.out_path = files.new_path()
        self.err_id, self.err_path = files.new_path()

    async def run(self) -> None:
        """validating → in_progress → finalizing → completed (or failed/expired/cancelled)."""
        job = self.job
        try:
            source = open(self.files.get(job.input_file_id).path, encoding="utf-8")  # noqa: SIM115
        except (WireError, OSError):
            self._fail([BatchFailure("invalid_request", f"The input file {job.input_file_id} "
                                     "is gone (deleted before the batch ran).")])
            return
        with source, open(self.out_path, "w", encoding="utf-8") as out, \
                open(self.err_path, "w", encoding="utf-8") as err:
            try:
                checked = await asyncio.to_thread(self._validate, source)
                dep = self._admit(checked)
                source.seek(0)
                end = await self._execute(dep, source, out, err)
            except BatchFailure as failure:
                self._fail(getattr(failure, "all", [failure]))
                return
            except asyncio.CancelledError:
                if job.status != "cancelling":
                    raise  # the server is shutting down
                current = asyncio.current_task()
                if current is not None:
                    current.uncancel()
                end = "cancelled"
        self._finish(end)

    def _validate(self, source: IO[str]) -> ValidatedInput:
        return validate_lines(source, self.job.endpoint, self._check_model)

    def _check_model(self, name: str) -> None:
        dep = self.endpoint.deployments.get(name.lower())
        if dep is None:
            raise BatchFailure("model_not_found", f"The deployment {name!r} named in the file's "
                               f"model property does not exist here. Deployments: "
                               f"{', '.join(self.endpoint.config.names())}.", 1, "body.model")
        if not dep.spec.is_batch:
            raise BatchFailure("invalid_request", f"The deployment {dep.spec.name!r} is a "
                               "standard deployment; batch jobs run on global-batch deployments "
                               "only (the deployment SKU must be globalbatch).", 1, "body.model")

    def _admit(self, checked: ValidatedInput) -> ServedDeployment:
        """The enqueued-token quota: a job whose tokens do not fit fails (retry later)."""
        job = self.job
        dep = self.endpoint.deployments[checked.model.lower()]
        assert dep.spec.batch is not None and dep.batch_slots is not None
        job.deployment, job.tokens = dep.spec.name, checked.tokens
        enqueued = self.book.enqueued_tokens(dep.spec.name, besides=job)
        limit = dep.spec.batch.enqueued_tokens
        if enqueued + checked.tokens > limit:
            job.tokens = 0
            raise BatchFailure("token_limit_exceeded", f"Enqueued token limit reached for "
                               f"{dep.spec.name}: {enqueued} tokens are enqueued by unfinished "
                               f"batches, this one needs {checked.tokens}, the limit is {limit}."
                               " Retry once running batches have finished.")
        job.total = checked.lines
        job.move_to("in_progress")
        return dep

    async def _execute(self, dep: ServedDeployment, source: IO[str], out: IO[str],
                       err: IO[str]) -> str:
        deadline = asyncio.get_running_loop().time() + max(
            0.0, self.job.created_s + self.job.window_s - time.time())
        try:
            async with asyncio.timeout_at(deadline):
                await self._dispatch(dep, source, out, err)
        except TimeoutError:
            self._expire_rest(source, err)
            return "expired"
        return "completed"

    async def _dispatch(self, dep: ServedDeployment, source: IO[str], out: IO[str],
                        err: IO[str]) -> None:
        slots = dep.batch_slots
        assert slots is not None
        async with asyncio.TaskGroup() as group:
            for number, raw in enumerate(source, start=1):
                if not raw.strip():
                    continue
                item = json.loads(raw)
                self.pending[number] = item["custom_id"]  # before the wait: expiry may strike
                await slots.acquire()
                group.create_task(self._one(dep, number, item, out, err))

    async def _one(self, dep: ServedDeployment, number: int, item: dict[str, Any],
                   out: IO[str], err: IO[str]) -> None:
        try:
            status, body = await answer(dep, item["body"])
        finally:
            assert dep.batch_slots is not None
            dep.batch_slots.release()
        del self.pending[number]
        if status == 200:
            out.write(_line(item["custom_id"], status, body))
            self.job.completed += 1
        else:
            err.write(_line(item["custom_id"], status, body))
            self.job.failed += 1

    def _expire_rest(self, source: IO[str], err: IO[str]) -> None:
        """Requests not finished when the window closed go to the error file."""
        expired = {"code": "batch_expired", "message": "This request could not be executed "
                   "before the completion window expired."}
        for custom_id in self.pending.values():
            err.write(_line(custom_id, None, None, expired))
            self.job.failed += 1
        self.pending.clear()
        for raw in source:
            if raw.strip():
                err.write(_line(json.loads(raw)["custom_id"], None, None, expired))
                self.job.failed += 1

    def _fail(self, failures: list[BatchFailure]) -> None:
        self.job.errors = failures
        self.job.move_to("failed")
        for path in (self.out_path, self.err_path):
            path.unlink(missing_ok=True)

    def _finish(self, end: str) -> None:
        job = self.job
        if end != "cancelled":
            job.move_to("finalizing")
        stem = f"{job.id}"
        job.output_file_id = self.files.add(self.out_id, self.out_path, f"{stem}_output.jsonl",
                                            "batch_output").id
        job.error_file_id = self.files.add(self.err_id, self.err_path, f"{stem}_error.jsonl",
                                           "batch_output").id
        job.move_to(end)


def start_job(job: BatchJob, endpoint: EndpointState, files: FileStore,
              book: BatchBook) -> None:
    """Run `job` in the background: it outlives the request that created it."""
    job.task = asyncio.get_running_loop().create_task(JobRun(job, endpoint, files, book).run(),
                                                      name=job.id)

    def settle(task: asyncio.Task[None]) -> None:
        # Cancelled before its first step, the job's code never ran: settle it here.
        if task.cancelled() and job.status == "cancelling":
            job.move_to("cancelled")

    job.task.add_done_callback(settle)


async def stop_all(book: BatchBook) -> None:
    """Cancel every running job and wait for them (server shutdown)."""
    book.cancel_all()
    for job in book.jobs.values():
        if job.task is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await job.task
