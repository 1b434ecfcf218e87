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

The last fields are compound, each a short array or nil (actors.store.record_fields): `limit`
(the job's concurrency key and own limits, schema version 5), `flow` (the jobs it waits for,
schema version 6) and `deadlines` (its `expires_at` and `run_timeout`, schema version 7). A full
record of version 3 or 4 ends before `limit`, one of version 5 before `flow`, one of version 6
before `deadlines`.

`request_id` (the enqueue's request id, docs/PROTOCOL.md) is the store's, not the Job map's:
`unpack` leaves it out and `read` returns it beside the map. It follows the head so that a
queued job with one costs its ~34 bytes and no more (at the end, the nils before it and an
array 16 header made it 48: +65 MiB of RSS for a million queued jobs in bench/million.py).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import msgpack

from actors import states
from actors.jobs import Job
from actors.store.record_fields import (
    deadlines_wire,
    flow_wire,
    is_deadlines,
    is_flow,
    is_limit,
    limit_wire,
    pack_deadlines,
    pack_flow,
    pack_limit,
)
from transport.jobspec import DEFAULT_RETRY, EMPTY_MAP, shared_name

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
    "limit",
    "flow",
    "deadlines",
)
HEAD = FIELDS.index("request_id")
DEFAULT_TAIL = (None,) * (len(FIELDS) - HEAD - 1)  # every field after `request_id` a default
_VERSION_2_FULL = len(FIELDS) - 4  # without `request_id`, `limit`, `flow` and `deadlines`
_VERSION_4_FULL = len(FIELDS) - 3  # without `limit`, `flow` and `deadlines`
_VERSION_5_FULL = len(FIELDS) - 2  # without `flow` and `deadlines`
_VERSION_6_FULL = len(FIELDS) - 1  # without `deadlines`
_SIZES = (
    HEAD,
    HEAD + 1,
    _VERSION_2_FULL,
    _VERSION_4_FULL,
    _VERSION_5_FULL,
    _VERSION_6_FULL,
    len(FIELDS),
)
# Where the index's fields sit in a full record (in a version 2 one, one place earlier)
UNIQUE_KEY, COMPLETED_AT = FIELDS.index("unique_key"), FIELDS.index("completed_at")
_LIMIT, _FLOW = FIELDS.index("limit"), FIELDS.index("flow")
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


class Indexed(NamedTuple):
    """What a store's index needs of a stored row, read without building its Job map."""

    id: str
    state: str
    type: str
    queue: str
    created_at: float
    unique_key: str | None
    completed_at: float | None
    request_id: str | None


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
        None if job.limit is None else pack_limit(job.limit),
        None if job.flow is None else pack_flow(job.flow),
        None if job.expires_at is None and job.run_timeout is None else pack_deadlines(job),
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
    value = _decode(blob)
    if isinstance(value, dict):
        if not value.keys() >= MAP_FIELDS:
            raise RecordError(f"not a job map: {str(value)[:80]}")
        return value, None
    _check(value)
    if len(value) == _VERSION_2_FULL:
        value.insert(HEAD, None)
        value.extend((None, None, None))
    elif len(value) == _VERSION_4_FULL:
        value.extend((None, None, None))
    elif len(value) == _VERSION_5_FULL:
        value.extend((None, None))
    elif len(value) == _VERSION_6_FULL:
        value.append(None)
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
        limit,
        flow,
        deadlines,
    ) = value
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
    if limit is not None:
        wire.update(limit_wire(limit))
    if flow is not None:
        wire.update(flow_wire(flow, request_id))
    if deadlines is not None:
        wire.update(deadlines_wire(deadlines))
    if state == states.COMPLETED:
        wire["result"] = result
    return wire, request_id


def job(blob: bytes, seq: int) -> Job:
    """The Job of a record, as `Job.from_wire(*read(blob))` gives it, its request id kept. A
    queued job without options (a record of the HEAD values, and its request id if any) is
    built straight from its array: at a takeover over a million queued jobs, the Job map and
    RetryPolicy built for each one cost ~5 s of the restore (bench/takeover.py)."""
    value = _decode(blob)
    if not (isinstance(value, list) and len(value) in (HEAD, HEAD + 1)):
        wire, request_id = read(blob)
        return Job.from_wire(wire, seq, request_id)
    _check(value)
    job_id, state, job_type, queue, created_at, args, priority, max_attempts, attempt = value[
        :HEAD
    ]
    return Job(
        id=job_id,
        type=shared_name(job_type),
        args=tuple(args),
        queue=shared_name(queue),
        priority=priority,
        scheduled_at=None,
        max_attempts=max_attempts,
        retry=DEFAULT_RETRY,
        timeout=None,
        route=EMPTY_MAP,
        unique_key=None,
        meta=EMPTY_MAP,
        created_at=created_at,
        seq=seq,
        state=state,
        attempt=attempt,
        request_id=value[HEAD] if len(value) > HEAD else None,
    )


def read_row(blob: bytes) -> tuple[bytes, Indexed]:
    """A stored row's record and what the index needs of it. A record is not unpacked into its
    Job map (a million rows are read at a takeover: ~2 us a row instead of ~9); a schema
    version 1 row (a Job map) is packed anew, so an index filled from an older file holds
    compact records too."""
    if blob[:1] and blob[0] in _ARRAY_MARKERS:
        value = _decode(blob)
        _check(value)
        size = len(value)
        if size <= HEAD + 1:  # a queued job without options, its request id if any
            return blob, Indexed(*value[:5], None, None, value[HEAD] if size > HEAD else None)
        shift = 1 if size == _VERSION_2_FULL else 0  # version 2: no request_id before them
        return blob, Indexed(
            *value[:5],
            value[UNIQUE_KEY - shift],
            value[COMPLETED_AT - shift],
            None if shift else value[HEAD],
        )
    wire, request_id = read(blob)
    indexed = Indexed(
        wire["id"],
        wire["state"],
        wire["type"],
        wire["queue"],
        wire["created_at"],
        wire.get("unique_key"),
        wire.get("completed_at"),
        request_id,
    )
    return pack(Job.from_wire(wire, 0)), indexed


def _decode(blob: bytes) -> Any:
    try:
        return msgpack.unpackb(blob, raw=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise RecordError(f"undecodable job record ({type(exc).__name__}: {exc})") from None


def _check(value: Any) -> None:
    """Refuse what is not a record's array: its length, its four names as text, and a request
    id that is not text."""
    if not (
        isinstance(value, list)
        and len(value) in _SIZES
        # unrolled: a generator here cost ~1 us of the ~3 us a row takes to load
        and isinstance(value[0], str)
        and isinstance(value[1], str)
        and isinstance(value[2], str)
        and isinstance(value[3], str)
        and (len(value) in (HEAD, _VERSION_2_FULL) or isinstance(value[HEAD], (str, type(None))))
        and (len(value) < _VERSION_5_FULL or is_limit(value[_LIMIT]))
        and (len(value) < _VERSION_6_FULL or is_flow(value[_FLOW]))
        and (len(value) != len(FIELDS) or is_deadlines(value[-1]))
    ):
        raise RecordError(f"not a job record: {str(value)[:80]}")
