"""A worker's results: ack, fail, and the `outcomes` extension carrying many of both."""

from __future__ import annotations

from typing import Any

from transport import messages as m
from transport.codec import encode
from transport.errors import BadRequest, TooLarge
from transport.validation.fields import Parser, batch, boolean, integer, lines, mapping, string
from transport.validation.limits import Limits


def _ack(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Ack:
    result = b.get("result")
    if _oversized(result, size, limits):
        raise TooLarge(f"result exceeds max_result_size {limits.max_result_size}")
    return m.Ack(
        rid,
        string(b, "worker_id"),
        string(b, "job_id"),
        integer(b, "attempt", minimum=1),
        result,
    )


def _fail(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Fail:
    raw = mapping(b, "error")
    if _oversized(raw, size, limits):
        raise TooLarge(f"error exceeds max_result_size {limits.max_result_size}")
    return m.Fail(
        rid,
        string(b, "worker_id"),
        string(b, "job_id"),
        integer(b, "attempt", minimum=1),
        _error_info(raw),
    )


def _oversized(value: Any, frame_size: int, limits: Limits) -> bool:
    """Whether `value` encodes larger than max_result_size (only a big frame can hold one)."""
    return frame_size > limits.max_result_size and len(encode(value)) > limits.max_result_size


def _error_info(raw: dict[str, Any]) -> m.ErrorInfo:
    return m.ErrorInfo(
        type=string(raw, "type"),
        message=string(raw, "message"),
        retryable=boolean(raw, "retryable", True),
        backtrace=lines(raw, "backtrace"),
        requeue=boolean(raw, "requeue", False),
    )


def _outcomes(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Outcomes:
    """Extension: acks and fails in one frame. A malformed item refuses the whole frame, so
    nothing changes; an item over max_result_size is refused alone (`too_large`)."""
    worker_id = string(b, "worker_id")
    items = batch(b, "outcomes", limits, lambda raw: _outcome(raw, size, limits))
    return m.Outcomes(rid, worker_id, items)


def _outcome(raw: Any, frame_size: int, limits: Limits) -> m.JobOutcome:
    if not isinstance(raw, dict):
        raise BadRequest("an outcome must be a map")
    job_id = string(raw, "job_id")
    attempt = integer(raw, "attempt", minimum=1)
    if raw.get("error") is None:
        result = raw.get("result")
        if _oversized(result, frame_size, limits):
            return m.JobOutcome(job_id, attempt, too_large=True)
        return m.JobOutcome(job_id, attempt, result)
    if "result" in raw:
        raise BadRequest("an outcome has 'result' (ack) or 'error' (fail), not both")
    error = mapping(raw, "error")
    info = _error_info(error)
    if _oversized(error, frame_size, limits):
        return m.JobOutcome(job_id, attempt, too_large=True)
    return m.JobOutcome(job_id, attempt, error=info)


PARSERS: dict[str, Parser] = {"ack": _ack, "fail": _fail, "outcomes": _outcomes}
