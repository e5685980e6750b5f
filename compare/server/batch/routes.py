"""HTTP side of the batch API: `/files` (upload, list, get, delete, content) and `/batches`
(create, list, get, cancel), mounted under `/openai` (api-version required) and `/openai/v1`."""

from __future__ import annotations

from typing import Any

from aiohttp import BodyPartReader, web

from compare.server.azure_errors import WireError
from compare.server.batch.execute import start_job
from compare.server.batch.files import UPLOAD_PURPOSES, invalid, not_found
from compare.server.batch.jobs import TERMINAL, BatchJob
from compare.server.batch.validate import same_url
from compare.server.request_body import read_object
from compare.server.served import EndpointState, context, state
from compare.server.spec import check_api_version

BATCH_ENDPOINTS = ("/chat/completions", "/v1/chat/completions")


def routes(prefix: str, versioned: bool) -> list[web.RouteDef]:
    """The files and batches routes under `prefix`."""

    def guarded(handler: Any) -> Any:
        async def route(request: web.Request) -> web.StreamResponse:
            check_api_version(request, required=versioned)
            return await handler(request, state(request))

        return route

    return [
        web.post(f"{prefix}/files", guarded(_upload)),
        web.get(f"{prefix}/files", guarded(_list_files)),
        web.get(f"{prefix}/files/{{file_id}}", guarded(_get_file)),
        web.delete(f"{prefix}/files/{{file_id}}", guarded(_delete_file)),
        web.get(f"{prefix}/files/{{file_id}}/content", guarded(_file_content)),
        web.post(f"{prefix}/batches", guarded(_create_batch)),
        web.get(f"{prefix}/batches", guarded(_list_batches)),
        web.get(f"{prefix}/batches/{{batch_id}}", guarded(_get_batch)),
        web.post(f"{prefix}/batches/{{batch_id}}/cancel", guarded(_cancel_batch)),
    ]


async def _upload(request: web.Request, endpoint: EndpointState) -> web.Response:
    if not request.content_type.startswith("multipart/"):
        raise invalid("Upload a file as multipart/form-data with fields 'purpose' and 'file'.")
    reader = await request.multipart()
    purpose, record = None, None
    async for part in reader:
        if not isinstance(part, BodyPartReader):
            continue
        if part.name == "purpose":
            purpose = (await part.text()).strip()
        elif part.name == "file" and record is None:
            record = await endpoint.files.save_upload(part, purpose or "batch")
    if record is None:
        raise invalid("The upload has no 'file' part.", "file")
    if purpose not in UPLOAD_PURPOSES:
        endpoint.files.delete(record.id)
        raise invalid(f"purpose must be one of {', '.join(UPLOAD_PURPOSES)} here, got "
                      f"{purpose!r}.", "purpose")
    record.purpose = purpose
    return endpoint.json(request, record.body(), status=201)


async def _list_files(request: web.Request, endpoint: EndpointState) -> web.Response:
    records = endpoint.files.listing(request.query.get("purpose"))
    body: dict[str, Any] = {"object": "list", "data": [r.body() for r in records],
                            "has_more": False}
    if records:
        body.update(first_id=records[0].id, last_id=records[-1].id)
    return endpoint.json(request, body)


async def _get_file(request: web.Request, endpoint: EndpointState) -> web.Response:
    return endpoint.json(request, endpoint.files.get(request.match_info["file_id"]).body())


async def _delete_file(request: web.Request, endpoint: EndpointState) -> web.Response:
    record = endpoint.files.delete(request.match_info["file_id"])
    return endpoint.json(request, {"object": "file", "deleted": True, "id": record.id})


async def _file_content(request: web.Request, endpoint: EndpointState) -> web.StreamResponse:
    record = endpoint.files.get(request.match_info["file_id"])
    headers = endpoint.headers(context(request))
    headers["Content-Disposition"] = f'attachment; filename="{record.filename}"'
    return web.FileResponse(record.path, headers={**headers,
                                                  "Content-Type": "application/octet-stream"})


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) > 16 or not all(
            isinstance(k, str) and isinstance(v, str) and len(k) <= 64 and len(v) <= 512
            for k, v in value.items()):
        raise invalid("metadata must map at most 16 keys (64 characters) to strings (512 "
                      "characters).", "metadata")
    return dict(value)


async def _create_batch(request: web.Request, endpoint: EndpointState) -> web.Response:
    body = await read_object(request, endpoint.config.max_body_bytes)
    file_id, url = body.get("input_file_id"), body.get("endpoint")
    if not isinstance(file_id, str) or not file_id:
        raise invalid("input_file_id must name an uploaded file.", "input_file_id")
    if not isinstance(url, str) or not any(same_url(url, e) for e in BATCH_ENDPOINTS):
        raise invalid(f"endpoint must be /chat/completions (the only operation batches run "
                      f"here), got {url!r}.", "endpoint")
    if body.get("completion_window") != "24h":
        raise invalid("completion_window must be '24h'.", "completion_window")
    metadata = _metadata(body.get("metadata"))
    record = endpoint.files.get(file_id)
    if record.purpose != "batch":
        raise invalid(f"The file {file_id} has purpose {record.purpose!r}; a batch reads a "
                      "file uploaded with purpose 'batch'.", "input_file_id")
    job = BatchJob.new(file_id, url, endpoint.config.batch_completion_window_s, metadata)
    endpoint.batches.add(job)
    start_job(job, endpoint, endpoint.files, endpoint.batches)
    return endpoint.json(request, job.body())


def _job(request: web.Request, endpoint: EndpointState) -> BatchJob:
    batch_id = request.match_info["batch_id"]
    job = endpoint.batches.get(batch_id)
    if job is None:
        raise not_found("batch", batch_id)
    return job


async def _list_batches(request: web.Request, endpoint: EndpointState) -> web.Response:
    raw_limit = request.query.get("limit", "20")
    if not raw_limit.isdigit() or not 1 <= int(raw_limit) <= 100:
        raise invalid("limit must be an integer from 1 to 100.", "limit")
    jobs, more = endpoint.batches.page(request.query.get("after"), int(raw_limit))
    body: dict[str, Any] = {"object": "list", "data": [j.body() for j in jobs], "has_more": more}
    if jobs:
        body.update(first_id=jobs[0].id, last_id=jobs[-1].id)
    return endpoint.json(request, body)


async def _get_batch(request: web.Request, endpoint: EndpointState) -> web.Response:
    return endpoint.json(request, _job(request, endpoint).body())


async def _cancel_batch(request: web.Request, endpoint: EndpointState) -> web.Response:
    job = _job(request, endpoint)
    if job.status in TERMINAL or job.status == "cancelling":
        raise WireError(409, "conflict", f"Cannot cancel a batch with status {job.status!r}.")
    job.move_to("cancelling")
    if job.task is not None:
        job.task.cancel()
    return endpoint.json(request, job.body())
