"""Turn a decoded map into a typed request, or raise the PROTOCOL.md section 2 error.

Every check that does not depend on coordinator state lives here, so a request that passes
reaches the actors already trusted.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from transport import messages as m
from transport.codec import MAX_DEPTH, encode, valid_rid
from transport.errors import BadRequest, TooLarge, UnsupportedVersion

PROTOCOL_VERSION = 1
MAX_JOB_SIZE_BYTES = 512 * 1024
MAX_RESULT_SIZE_BYTES = 512 * 1024
MAX_NAME_CHARS = 256
MAX_BATCH_JOBS = 10_000
MAX_LIST_ITEMS = 100_000
DEFAULT_CONCURRENCY = 10
DEFAULT_JOBS_LIMIT = 50  # `jobs` extension: jobs listed unless `limit` says otherwise
MAX_JOBS_LIMIT = 1000


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits applied while validating (all configurable on the coordinator).

    `max_name_chars` bounds names (job type, queue, function and label names, unique keys,
    hostnames, error types), `max_list_items` every list of names or ids in a request, and
    `max_depth` how deep lists and maps may nest in a frame.
    """

    max_job_size: int = MAX_JOB_SIZE_BYTES
    max_result_size: int = MAX_RESULT_SIZE_BYTES
    max_batch_jobs: int = MAX_BATCH_JOBS
    max_name_chars: int = MAX_NAME_CHARS
    max_list_items: int = MAX_LIST_ITEMS
    max_depth: int = MAX_DEPTH


DEFAULT_LIMITS = Limits()
_MISSING = object()
T = TypeVar("T")


def _get(body: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    value = body.get(key, _MISSING)
    if value is _MISSING or value is None:
        if default is _MISSING:
            raise BadRequest(f"missing field '{key}'")
        return default
    return value


def _string(body: dict[str, Any], key: str, default: Any = _MISSING, *, limit: int = 0) -> Any:
    value = _get(body, key, default)
    if value is default and default is not _MISSING:
        return value
    if not isinstance(value, str):
        raise BadRequest(f"field '{key}' must be a string")
    if limit and (not value or len(value) > limit):
        raise BadRequest(f"field '{key}' must have 1 to {limit} characters")
    return value


def _integer(
    body: dict[str, Any], key: str, default: Any = _MISSING, *, minimum: int | None = None
) -> Any:
    value = _get(body, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"field '{key}' must be an integer")
    if minimum is not None and value < minimum:
        raise BadRequest(f"field '{key}' must be >= {minimum}")
    return value


def _number(
    body: dict[str, Any], key: str, default: Any = _MISSING, *, minimum: float | None = None
) -> Any:
    value = _get(body, key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"field '{key}' must be a finite number")
    if minimum is not None and value < minimum:
        raise BadRequest(f"field '{key}' must be >= {minimum}")
    return float(value)


def _boolean(body: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    value = _get(body, key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"field '{key}' must be a boolean")
    return value


def _strings(
    body: dict[str, Any],
    key: str,
    default: Any = _MISSING,
    *,
    non_empty: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[str, ...]:
    value = _get(body, key, default)
    if not isinstance(value, list | tuple):
        raise BadRequest(f"field '{key}' must be a list of strings")
    if len(value) > limits.max_list_items:
        raise BadRequest(f"field '{key}' has more than {limits.max_list_items} items")
    chars = limits.max_name_chars
    for item in value:
        if not isinstance(item, str) or not item or len(item) > chars:
            raise BadRequest(f"field '{key}' must hold strings of 1 to {chars} characters")
    if non_empty and not value:
        raise BadRequest(f"field '{key}' must not be empty")
    return tuple(value)


def _mapping(body: dict[str, Any], key: str, default: Any = _MISSING) -> dict[str, Any]:
    value = _get(body, key, default)
    if not isinstance(value, dict):
        raise BadRequest(f"field '{key}' must be a map")
    return value


def _retry_policy(raw: dict[str, Any]) -> m.RetryPolicy:
    base = m.DEFAULT_RETRY
    policy = m.RetryPolicy(
        initial_interval=_number(raw, "initial_interval", base.initial_interval, minimum=0.0),
        backoff_coefficient=_number(
            raw, "backoff_coefficient", base.backoff_coefficient, minimum=1.0
        ),
        max_interval=_number(raw, "max_interval", base.max_interval, minimum=0.0),
        jitter=_boolean(raw, "jitter", base.jitter),
    )
    return base if policy == base else policy


def job_spec(raw: Any, *, check_size: bool = False, limits: Limits = DEFAULT_LIMITS) -> m.JobSpec:
    """Validate one JobSpec map and fill in its defaults, in the compact forms JobSpec names.

    Absent fields take their default without a parser call: most specs carry two or three
    fields, and this runs once per job of every batch (it was the enqueue path's top cost).
    `type` and `queue` are shared strings (`messages.shared_name`): msgpack decodes a new string
    per occurrence, and a million queued jobs would otherwise hold a million copies of each.
    """
    if not isinstance(raw, dict):
        raise BadRequest("a job spec must be a map")
    if check_size and len(encode(raw)) > limits.max_job_size:
        raise TooLarge(f"job spec exceeds max_job_size {limits.max_job_size}")
    get = raw.get
    chars = limits.max_name_chars
    route: Mapping[str, str] = m.EMPTY_MAP
    if get("route") is not None:
        given = _mapping(raw, "route")
        for key, value in given.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise BadRequest("field 'route' must map strings to strings")
        if given:
            route = dict(given)
    args = get("args")
    if args is None:
        args = ()
    elif not isinstance(args, list | tuple):
        raise BadRequest("field 'args' must be a list")
    unique_key = _string(raw, "unique_key", None)
    if unique_key is not None and (not unique_key or len(unique_key) > chars):
        raise BadRequest(f"field 'unique_key' must have 1 to {chars} characters")
    timeout = None
    if get("timeout") is not None:
        timeout = _number(raw, "timeout", minimum=0.0)
        if timeout <= 0:
            raise BadRequest("field 'timeout' must be > 0")
    return m.JobSpec(
        type=m.shared_name(_string(raw, "type", limit=chars)),
        args=tuple(args),  # an empty one is the shared ()
        queue=(
            m.shared_name(_string(raw, "queue", limit=chars))
            if get("queue") is not None
            else "default"
        ),
        priority=_integer(raw, "priority") if get("priority") is not None else 0,
        scheduled_at=_number(raw, "scheduled_at", None),
        max_attempts=(
            _integer(raw, "max_attempts", minimum=1) if get("max_attempts") is not None else 3
        ),
        retry=(
            _retry_policy(_mapping(raw, "retry")) if get("retry") is not None else m.DEFAULT_RETRY
        ),
        timeout=timeout,
        route=route,
        unique_key=unique_key,
        meta=(
            (dict(_mapping(raw, "meta")) or m.EMPTY_MAP) if get("meta") is not None else m.EMPTY_MAP
        ),
    )


def _hello(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Hello:
    version = _get(b, "v")
    if version != PROTOCOL_VERSION or isinstance(version, bool):
        raise UnsupportedVersion(f"protocol version {version!r} is not supported; speak 1")
    role = _string(b, "role")
    if role != "worker":
        raise BadRequest("hello.role must be 'worker'")
    return m.Hello(rid, role, _hostname(b, limits), _integer(b, "pid", minimum=0))


def _hostname(b: dict[str, Any], limits: Limits) -> str:
    hostname = _string(b, "hostname")
    if len(hostname) > limits.max_name_chars:
        raise BadRequest(f"field 'hostname' has more than {limits.max_name_chars} characters")
    return hostname


def _labels(b: dict[str, Any], limits: Limits) -> dict[str, frozenset[str]]:
    raw = _mapping(b, "labels", {})
    chars = limits.max_name_chars
    if not all(isinstance(key, str) and 0 < len(key) <= chars for key in raw):
        raise BadRequest(f"field 'labels' must have string keys of 1 to {chars} characters")
    if len(raw) > limits.max_list_items:
        raise BadRequest(f"field 'labels' has more than {limits.max_list_items} keys")
    return {key: frozenset(_strings(raw, key, limits=limits)) for key in raw}


def _register(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Register:
    previous = _string(b, "previous_worker_id", None)
    return m.Register(
        rid=rid,
        worker_id=_string(b, "worker_id"),
        queues=_strings(b, "queues", non_empty=True, limits=limits),
        concurrency=_integer(b, "concurrency", DEFAULT_CONCURRENCY, minimum=1),
        functions=frozenset(_strings(b, "functions", [], limits=limits)),
        labels=_labels(b, limits),
        hostname=_hostname(b, limits),
        pid=_integer(b, "pid", minimum=0),
        previous_worker_id=previous,
        active_job_ids=_strings(b, "active_job_ids", [], limits=limits),
    )


def _state(b: dict[str, Any]) -> str:
    state = _string(b, "state")
    if state not in m.WORKER_STATES:
        raise BadRequest(f"state must be one of {', '.join(m.WORKER_STATES)}")
    return state


def _beat(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Beat:
    job_ids = _strings(b, "active_job_ids", limits=limits)
    return m.Beat(rid, _string(b, "worker_id"), _state(b), job_ids)


def _fetch(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Fetch:
    queues = (
        _strings(b, "queues", None, non_empty=True, limits=limits)
        if b.get("queues") is not None
        else None
    )
    return m.Fetch(
        rid,
        _string(b, "worker_id"),
        _integer(b, "count", minimum=1),
        queues,
        _number(b, "wait", 0.0, minimum=0.0),
    )


def _ack(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Ack:
    result = b.get("result")
    if _oversized(result, size, limits):
        raise TooLarge(f"result exceeds max_result_size {limits.max_result_size}")
    return m.Ack(
        rid,
        _string(b, "worker_id"),
        _string(b, "job_id"),
        _integer(b, "attempt", minimum=1),
        result,
    )


def _fail(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Fail:
    raw = _mapping(b, "error")
    if _oversized(raw, size, limits):
        raise TooLarge(f"error exceeds max_result_size {limits.max_result_size}")
    return m.Fail(
        rid,
        _string(b, "worker_id"),
        _string(b, "job_id"),
        _integer(b, "attempt", minimum=1),
        _error_info(raw),
    )


def _oversized(value: Any, frame_size: int, limits: Limits) -> bool:
    """Whether `value` encodes larger than max_result_size (only a big frame can hold one)."""
    return frame_size > limits.max_result_size and len(encode(value)) > limits.max_result_size


def _error_info(raw: dict[str, Any]) -> m.ErrorInfo:
    return m.ErrorInfo(
        type=_string(raw, "type"),
        message=_string(raw, "message"),
        retryable=_boolean(raw, "retryable", True),
        backtrace=_strings_any(raw, "backtrace"),
    )


def _outcomes(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Outcomes:
    """Extension: acks and fails in one frame. A malformed item refuses the whole frame, so
    nothing changes; an item over max_result_size is refused alone (`too_large`)."""
    worker_id = _string(b, "worker_id")
    items = _batch(b, "outcomes", limits, lambda raw: _outcome(raw, size, limits))
    return m.Outcomes(rid, worker_id, items)


def _batch(b: dict[str, Any], key: str, limits: Limits, parse: Callable[[Any], T]) -> tuple[T, ...]:
    """A non-empty list of at most max_batch_jobs items, each parsed; a refused item refuses
    the whole batch, naming its index (`jobs[3]: ...`)."""
    raw_items = _get(b, key)
    if not isinstance(raw_items, list) or not raw_items:
        raise BadRequest(f"field '{key}' must be a non-empty list")
    if len(raw_items) > limits.max_batch_jobs:
        raise BadRequest(f"'{key}' holds at most {limits.max_batch_jobs} items")
    items = []
    for index, raw in enumerate(raw_items):
        try:
            items.append(parse(raw))
        except (BadRequest, TooLarge) as exc:
            raise type(exc)(f"{key}[{index}]: {exc.message}") from None
    return tuple(items)


def _outcome(raw: Any, frame_size: int, limits: Limits) -> m.JobOutcome:
    if not isinstance(raw, dict):
        raise BadRequest("an outcome must be a map")
    job_id = _string(raw, "job_id")
    attempt = _integer(raw, "attempt", minimum=1)
    if raw.get("error") is None:
        result = raw.get("result")
        if _oversized(result, frame_size, limits):
            return m.JobOutcome(job_id, attempt, too_large=True)
        return m.JobOutcome(job_id, attempt, result)
    if "result" in raw:
        raise BadRequest("an outcome has 'result' (ack) or 'error' (fail), not both")
    error = _mapping(raw, "error")
    info = _error_info(error)
    if _oversized(error, frame_size, limits):
        return m.JobOutcome(job_id, attempt, too_large=True)
    return m.JobOutcome(job_id, attempt, error=info)


def _strings_any(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = _get(raw, key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(line, str) for line in value):
        raise BadRequest(f"field '{key}' must be a list of strings")
    return tuple(value)


def _deregister(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Deregister:
    return m.Deregister(rid, _string(b, "worker_id"))


def _ping(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Ping:
    return m.Ping(rid)


def _enqueue(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Enqueue:
    check = size > limits.max_job_size
    if b.get("job") is not None:
        return m.Enqueue(rid, (job_spec(b["job"], check_size=check, limits=limits),), batch=False)
    if not isinstance(b.get("jobs"), list):
        raise BadRequest("enqueue needs 'job' (a map) or 'jobs' (a non-empty list)")
    specs = _batch(b, "jobs", limits, lambda raw: job_spec(raw, check_size=check, limits=limits))
    return m.Enqueue(rid, specs, batch=True)


def _get_job(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Get:
    return m.Get(rid, _string(b, "job_id"), _number(b, "wait", 0.0, minimum=0.0))


def _cancel(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Cancel:
    return m.Cancel(rid, _string(b, "job_id"))


def _retry_job(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Retry:
    return m.Retry(rid, _string(b, "job_id"))


def _stats(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Stats:
    return m.Stats(rid)


def _jobs(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Jobs:
    state = _string(b, "state", None)
    if state is not None and state not in m.JOB_STATES:
        raise BadRequest(f"state must be one of {', '.join(m.JOB_STATES)}")
    limit = _integer(b, "limit", DEFAULT_JOBS_LIMIT, minimum=1)
    if limit > MAX_JOBS_LIMIT:
        raise BadRequest(f"field 'limit' must be <= {MAX_JOBS_LIMIT}")
    queue = _string(b, "queue", None, limit=limits.max_name_chars)
    job_type = _string(b, "job_type", None, limit=limits.max_name_chars)  # `type` is "jobs"
    return m.Jobs(rid, queue, state, job_type, limit)


def _direct(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Direct:
    return m.Direct(rid, _string(b, "worker_id"), _state(b))


_PARSERS: dict[str, Callable[[dict[str, Any], m.Rid, int, Limits], m.Request]] = {
    "hello": _hello,
    "register": _register,
    "beat": _beat,
    "fetch": _fetch,
    "ack": _ack,
    "fail": _fail,
    "outcomes": _outcomes,
    "deregister": _deregister,
    "ping": _ping,
    "enqueue": _enqueue,
    "get": _get_job,
    "cancel": _cancel,
    "retry": _retry_job,
    "stats": _stats,
    "jobs": _jobs,
    "direct": _direct,
}

REQUEST_TYPES = frozenset(_PARSERS)


def request_rid(body: dict[str, Any]) -> m.Rid:
    """Read `rid`; BadRequest (with no rid to echo) when it is missing or invalid."""
    rid = body.get("rid")
    if not valid_rid(rid):
        raise BadRequest("'rid' must be an int >= 0 or a string of at most 64 characters")
    return rid


def request_type(body: dict[str, Any]) -> str:
    """Read `type`; BadRequest when it is not a request this coordinator knows."""
    kind = body.get("type")
    if not isinstance(kind, str) or kind not in _PARSERS:
        raise BadRequest(f"unknown request type {kind!r}")
    return kind


def parse_request(
    kind: str, rid: m.Rid, body: dict[str, Any], size: int, limits: Limits = DEFAULT_LIMITS
) -> m.Request:
    """Validate the fields of a request whose header is already known to be good."""
    return _PARSERS[kind](body, rid, size, limits)
