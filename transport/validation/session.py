"""A worker's session: hello, register, beat, fetch and deregister."""

from __future__ import annotations

from typing import Any

from transport import messages as m
from transport.errors import BadRequest, UnsupportedVersion
from transport.validation.fields import (
    Parser,
    field,
    integer,
    mapping,
    number,
    string,
    strings,
    worker_state,
)
from transport.validation.limits import MAX_PROGRESS_MESSAGE_CHARS, Limits

PROTOCOL_VERSION = 1
DEFAULT_CONCURRENCY = 10


def _hello(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Hello:
    version = field(b, "v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise UnsupportedVersion(f"protocol version {version!r} is not supported; speak 1")
    role = string(b, "role")
    if role != "worker":
        raise BadRequest("hello.role must be 'worker'")
    return m.Hello(rid, role, _hostname(b, limits), integer(b, "pid", minimum=0))


def _hostname(b: dict[str, Any], limits: Limits) -> str:
    hostname = string(b, "hostname")
    if len(hostname) > limits.max_name_chars:
        raise BadRequest(f"field 'hostname' has more than {limits.max_name_chars} characters")
    return hostname


def _labels(b: dict[str, Any], limits: Limits) -> dict[str, frozenset[str]]:
    raw = mapping(b, "labels", {})
    chars = limits.max_name_chars
    if not all(isinstance(key, str) and 0 < len(key) <= chars for key in raw):
        raise BadRequest(f"field 'labels' must have string keys of 1 to {chars} characters")
    if len(raw) > limits.max_list_items:
        raise BadRequest(f"field 'labels' has more than {limits.max_list_items} keys")
    return {key: frozenset(strings(raw, key, limits=limits)) for key in raw}


def _register(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Register:
    previous = string(b, "previous_worker_id", None)
    return m.Register(
        rid=rid,
        worker_id=string(b, "worker_id"),
        queues=strings(b, "queues", non_empty=True, limits=limits),
        concurrency=integer(b, "concurrency", DEFAULT_CONCURRENCY, minimum=1),
        functions=frozenset(strings(b, "functions", [], limits=limits)),
        labels=_labels(b, limits),
        hostname=_hostname(b, limits),
        pid=integer(b, "pid", minimum=0),
        previous_worker_id=previous,
        active_job_ids=strings(b, "active_job_ids", [], limits=limits),
        name=string(b, "name", None, limit=limits.max_name_chars),
    )


def _beat(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Beat:
    job_ids = strings(b, "active_job_ids", limits=limits)
    progress = _progress(b, limits) if b.get("progress") is not None else ()
    return m.Beat(rid, string(b, "worker_id"), worker_state(b), job_ids, progress)


def _progress(b: dict[str, Any], limits: Limits) -> tuple[m.ProgressReport, ...]:
    """The extension "Progress": `{job_id: {fraction, message?}}`."""
    reports = mapping(b, "progress")
    if len(reports) > limits.max_list_items:
        raise BadRequest(f"field 'progress' has more than {limits.max_list_items} items")
    parsed = []
    for job_id, report in reports.items():
        if not isinstance(job_id, str) or not job_id or len(job_id) > limits.max_name_chars:
            raise BadRequest("field 'progress' must be keyed by job ids")
        if not isinstance(report, dict):
            raise BadRequest(f"progress of {job_id} must be a map")
        fraction = number(report, "fraction", minimum=0.0)
        if fraction > 1.0:
            raise BadRequest(f"progress of {job_id}: 'fraction' must be within [0, 1]")
        message = string(report, "message", "")
        if len(message) > MAX_PROGRESS_MESSAGE_CHARS:
            raise BadRequest(
                f"progress of {job_id}: 'message' has more than "
                f"{MAX_PROGRESS_MESSAGE_CHARS} characters"
            )
        parsed.append(m.ProgressReport(job_id, fraction, message))
    return tuple(parsed)


def _fetch(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Fetch:
    queues = (
        strings(b, "queues", None, non_empty=True, limits=limits)
        if b.get("queues") is not None
        else None
    )
    return m.Fetch(
        rid,
        string(b, "worker_id"),
        integer(b, "count", minimum=1),
        queues,
        number(b, "wait", 0.0, minimum=0.0),
    )


def _deregister(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Deregister:
    return m.Deregister(rid, string(b, "worker_id"))


PARSERS: dict[str, Parser] = {
    "hello": _hello,
    "register": _register,
    "beat": _beat,
    "fetch": _fetch,
    "deregister": _deregister,
}
