"""The stored snapshot of a job: msgpack of a fixed-order array, defaults left out.

Why not the Job map itself: a store keeps every job's last saved state, and with a million
jobs queued that is most of the coordinator's memory. A queued no-op job as its wire dict costs
~1 KB of Python objects (a dozen keys, a retry dict, an errors list, route and meta maps); as a
record it is ~75 bytes of msgpack, ~110 with the bytes object around them. The same bytes are
the SQLite store's `wire` column (schema version 2), so one pack per save serves both the
memory index and the disk, and the writer thread packs nothing.

Layout: the values of FIELDS in that order. A nil stands for the default: an optional field
unset, `retry` the DEFAULT_RETRY policy (else its map), `route`, `meta` and `errors` empty,
`result` for any job not completed (the Job map has a `result` only then). A job whose fields
after `request_id` are all defaults (a queued job without options) is packed as the first HEAD
values alone, or with its request id as one more. A change of layout needs a new SQLite schema
version (actors.store.sqlite.SCHEMA_VERSION); `unpack` also reads the rows of schema version 1,
which hold the Job map itself, and the full records of version 2, which had no `request_id`.

`request_id` (the enqueue's request id, docs/PROTOCOL.md) is the store's, not the Job map's:
`unpack` leaves it out and `read` returns it beside the map. It follows the head so that a
queued job with one costs its ~34 bytes and no more (at the end, the nils before it and an
array 16 header made it 48: +65 MiB of RSS for a million queued jobs in bench/million.py).
"""

from __future__ import annotations

from typing import Any

import msgpack

from actors import states
from actors.jobs import Job
from transport.messages import DEFAULT_RETRY

FIELDS = (
    "id",
    "state",
    "type",
    "queue",
    "created_at",
    "args",
    "priority",
    "max_attempts",
    "attempt",
    # never nil above, defaults (nil) usual below
    "request_id",
    "retry",
    "timeout",
    "route",
    "meta",
    "unique_key",
    "scheduled_at",
    "started_at",
    "worker_id",
    "completed_at",
    "next_attempt_at",
    "errors",
    "result",
)
HEAD = FIELDS.index("request_id")
DEFAULT_TAIL = (None,) * (len(FIELDS) - HEAD - 1)  # every field after `request_id` a default
_VERSION_2_FULL = len(FIELDS) - 1  # the same fields without `request_id`
_SIZES = (HEAD, HEAD + 1, _VERSION_2_FULL, len(FIELDS))
# Keys Job.to_wire always writes: what a schema version 1 row must hold to be a job.
MAP_FIELDS = frozenset(
    {
        "id",
        "type",
        "args",
        "queue",
        "priority",
        "max_attempts",
        "retry",
        "route",
        "meta",
        "state",
        "attempt",
        "created_at",
        "errors",
    }
)
_ARRAY_MARKERS = frozenset({*range(0x90, 0xA0), 0xDC, 0xDD})  # fixarray, array 16, array 32


class RecordError(ValueError):
    """Bytes that are not a job record (a damaged store row)."""


def pack(job: Job) -> bytes:
    """The record of `job` as it is now; `unpack` gives back exactly `job.to_wire()`."""
    retry = job.retry
    head = (
        job.id,
        job.state,
        job.type,
        job.queue,
        job.created_at,
        job.args,
        job.priority,
        job.max_attempts,
        job.attempt,
        job.request_id,
    )
    tail = (
        None if retry is DEFAULT_RETRY else retry.to_wire(),
        job.timeout,
        job.route or None,  # never EMPTY_MAP itself: msgpack cannot pack a mappingproxy
        job.meta or None,
        job.unique_key,
        job.scheduled_at,
        job.started_at,
        job.worker_id,
        job.completed_at,
        job.next_attempt_at,
        job.errors or None,
        job.result if job.state == states.COMPLETED else None,
    )
    if tail == DEFAULT_TAIL:  # a queued job without options: its head, request id if any
        values = head if job.request_id is not None else head[:HEAD]
    else:
        values = head + tail
    return msgpack.packb(values, use_bin_type=True)


def unpack(blob: bytes) -> dict[str, Any]:
    """The Job map (PROTOCOL.md section 4) of a record, or of a schema version 1 row.

    Raises RecordError for anything else.
    """
    return read(blob)[0]


def read(blob: bytes) -> tuple[dict[str, Any], str | None]:
    """The Job map of a record (as `unpack`) and the request id it was enqueued with."""
    try:
        value = msgpack.unpackb(blob, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise RecordError(f"undecodable job record ({type(exc).__name__}: {exc})") from None
    if isinstance(value, dict):
        if not value.keys() >= MAP_FIELDS:
            raise RecordError(f"not a job map: {str(value)[:80]}")
        return value, None
    if not isinstance(value, list) or len(value) not in _SIZES:
        raise RecordError(f"not a job record: {str(value)[:80]}")
    if len(value) == _VERSION_2_FULL:
        value.insert(HEAD, None)
    elif len(value) <= HEAD + 1:
        value.extend((None,) * (HEAD + 1 - len(value)) + DEFAULT_TAIL)
    (
        job_id,
        state,
        job_type,
        queue,
        created_at,
        args,
        priority,
        max_attempts,
        attempt,
        request_id,
        retry,
        timeout,
        route,
        meta,
        unique_key,
        scheduled_at,
        started_at,
        worker_id,
        completed_at,
        next_attempt_at,
        errors,
        result,
    ) = value
    if not all(isinstance(text, str) for text in (job_id, state, job_type, queue)) or not (
        request_id is None or isinstance(request_id, str)
    ):
        raise RecordError(f"not a job record: {str(value)[:80]}")
    wire: dict[str, Any] = {
        "id": job_id,
        "type": job_type,
        "args": args,
        "queue": queue,
        "priority": priority,
        "max_attempts": max_attempts,
        "retry": retry or DEFAULT_RETRY.to_wire(),
        "route": route or {},
        "meta": meta or {},
        "state": state,
        "attempt": attempt,
        "created_at": created_at,
        "errors": errors or [],
    }
    for key, optional in (
        ("scheduled_at", scheduled_at),
        ("timeout", timeout),
        ("unique_key", unique_key),
        ("started_at", started_at),
        ("completed_at", completed_at),
        ("worker_id", worker_id),
        ("next_attempt_at", next_attempt_at),
    ):
        if optional is not None:
            wire[key] = optional
    if state == states.COMPLETED:
        wire["result"] = result
    return wire, request_id


def read_row(blob: bytes) -> tuple[bytes, dict[str, Any], str | None]:
    """A stored row's record, Job map and request id. A schema version 1 row (a Job map) is
    packed anew, so an index filled from an older file holds compact records too."""
    wire, request_id = read(blob)
    if blob[0] not in _ARRAY_MARKERS:
        blob = pack(Job.from_wire(wire, 0))
    return blob, wire, request_id
