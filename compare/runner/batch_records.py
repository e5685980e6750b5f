"""From batch output and error lines to Records: exactly one per key of a part.

An output line `{custom_id, response: {status_code, request_id, body}, error}` becomes an ok (or
content_filtered) record with the body's text, finish_reason, usage and the cost at the batch
deployment's prices; an error line becomes the record of the error its status and body describe
(the same `http_error` table as online answers: 400 content_filter → content_filtered, 429 →
rate_limited, ...), or of its `error` (batch_expired → timeout). Batch rows carry `batch_id` and
`batch_turnaround_s`; ttft_s, latency_s, wall_s, decode_tps and inter-token gaps stay NaN, since
a batch has no per-request timing.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from compare.endpoints.base import Completion
from compare.endpoints.batch_state import BatchState
from compare.endpoints.completion import Accumulator, require_finish, unexpected_response
from compare.endpoints.http_errors import http_error
from compare.errors import EndpointError, EndpointTimeout
from compare.records import NAN, Record
from compare.runner.measure import RecordMaker, Tries, utc_iso
from compare.runner.plan import Job

if TYPE_CHECKING:
    from compare.runner.attempt import DeploymentRun

_UNTIMED = ("ttft_s", "latency_s", "wall_s", "decode_tps", "itl_p50_s", "itl_p90_s")


def line_error(error: Any, batch_id: str) -> EndpointError:
    """The error of a line that has no response (its `error` object)."""
    code = str(error.get("code") or "unknown") if isinstance(error, Mapping) else "unknown"
    message = str(error.get("message") or "") if isinstance(error, Mapping) else str(error)
    if code == "batch_expired":
        return EndpointTimeout(
            f"not run before batch {batch_id}'s completion window closed (batch_expired); "
            "rerun with the same out to send it in a new batch", code=code)
    return EndpointError(f"{code}: {message}".rstrip(": "), code=code)


class BatchRecords:
    """Builds the records of one batch deployment (through the run's `RecordMaker`, so keys
    are scrubbed from messages and fingerprints kept as for online rows)."""

    def __init__(self, run: DeploymentRun, maker: RecordMaker) -> None:
        self.run = run
        self.maker = maker
        self.service_name = str(run.dep.deployment)

    def _job(self, pidx: int, repeat: int, digest: str | None) -> Job:
        requests = self.run.plan.requests
        return Job(requests.prompts.ids[pidx], repeat, requests.get(pidx)[0], digest)

    def answer(self, item: Mapping[str, Any], state: BatchState, pidx: int, repeat: int,
               digest: str | None, attempts: int) -> Record:
        """The record of one output or error line."""
        response = item.get("response")
        tries = Tries(attempts=attempts)
        if isinstance(response, Mapping):
            status, body = response.get("status_code"), response.get("body")
            if isinstance(status, int) and 200 <= status < 300:
                outcome: Completion | EndpointError = self._completion(body)
            elif isinstance(status, int):
                outcome = http_error(status, body, {}, deployment=self.service_name)
            else:
                outcome = EndpointError(f"batch line without a status code: {response!r}"[:300])
        elif item.get("error") is not None:
            outcome = line_error(item.get("error"), state.id)
        else:
            outcome = EndpointError("batch line with neither response nor error")
        if isinstance(outcome, Completion):
            rec = self.maker.ok(self.run, self._job(pidx, repeat, digest), outcome, tries)
        else:
            rec = self.maker.error(self.run, self._job(pidx, repeat, digest), outcome, tries, 0.0,
                                   0.0)
        if isinstance(response, Mapping) and isinstance(response.get("request_id"), str):
            rec.request_id = response["request_id"]
        return self.stamp(rec, state, attempts)

    def _completion(self, body: Any) -> Completion | EndpointError:
        acc = Accumulator(0.0, streamed=False)
        try:
            acc.add_chunk(body, 0.0)
            return require_finish(acc, self.service_name, {})
        except EndpointError as e:
            return e
        except ValueError as e:  # not shaped like a chat completion
            return unexpected_response(e, self.service_name, {})

    def failed(self, pidx: int, repeat: int, digest: str | None, error: EndpointError,
               state: BatchState | None, attempts: int) -> Record:
        """The record of a key whose batch gave it no line (a failed, cancelled or lost batch,
        a refused upload)."""
        rec = self.maker.error(self.run, self._job(pidx, repeat, digest), error,
                               Tries(attempts=attempts),
                               0.0, 0.0)
        return self.stamp(rec, state, attempts)

    def not_sent(self, pidx: int, repeat: int, digest: str | None) -> Record:
        """The record of a key not sent because the deployment was stopped."""
        rec = self.maker.not_sent(self.run, self._job(pidx, repeat, digest), Tries())
        return self.stamp(rec, None, 0)

    def stamp(self, rec: Record, state: BatchState | None, attempts: int) -> Record:
        """Batch identity and turnaround; no per-request timing."""
        for name in _UNTIMED:
            setattr(rec, name, NAN)
        rec.streamed = False
        rec.attempts, rec.backoff_s = attempts, 0.0
        rec.started_at = None
        if state is not None:
            rec.batch_id = state.id
            rec.batch_turnaround_s = state.turnaround_s
            created = state.created_at
            rec.started_at = utc_iso(created) if created is not None and math.isfinite(
                created) else None
        return rec
