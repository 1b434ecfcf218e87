"""Enqueue: one job spec or a batch of them, with their defaults filled in."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from transport import jobspec
from transport import messages as m
from transport.codec import encode
from transport.errors import BadRequest, TooLarge
from transport.validation.fields import Parser, batch, boolean, integer, mapping, number, string
from transport.validation.limits import DEFAULT_LIMITS, Limits

# A request id is a client's name for one enqueue (a uuid4 in hex is 32); fixed, not a limit
# to configure: it is kept with every job the request made.
REQUEST_ID_CHARS = 64
# A job id a client names (extension "Job ids"): a UUID in canonical lowercase form, as every id
# corral makes (UUIDv7), so ids of both kinds sort and compare alike.
JOB_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")


def _retry_policy(raw: dict[str, Any]) -> jobspec.RetryPolicy:
    base = jobspec.DEFAULT_RETRY
    policy = jobspec.RetryPolicy(
        initial_interval=number(raw, "initial_interval", base.initial_interval, minimum=0.0),
        backoff_coefficient=number(
            raw, "backoff_coefficient", base.backoff_coefficient, minimum=1.0
        ),
        max_interval=number(raw, "max_interval", base.max_interval, minimum=0.0),
        jitter=boolean(raw, "jitter", base.jitter),
        backoff=string(raw, "backoff", base.backoff),
    )
    if policy.backoff not in jobspec.BACKOFFS:
        raise BadRequest(f"field 'retry.backoff' must be one of {', '.join(jobspec.BACKOFFS)}")
    return base if policy == base else policy


def rate(raw: Any, key: str) -> jobspec.Rate:
    """`{count, per}`: at most `count` (an integer >= 1) starts per `per` seconds (> 0)."""
    if not isinstance(raw, dict):
        raise BadRequest(f"field '{key}' must be a map {{count, per}}")
    count, per = raw.get("count"), raw.get("per")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise BadRequest(f"field '{key}.count' must be an integer >= 1")
    if isinstance(per, bool) or not isinstance(per, int | float) or not 0 < per < math.inf:
        raise BadRequest(f"field '{key}.per' must be a number of seconds > 0")
    return jobspec.Rate(count=count, per=float(per))


def _job_limit(raw: dict[str, Any], chars: int) -> jobspec.JobLimit:
    """The limit fields (docs/PROTOCOL.md extension "Limits") of a spec that has one at least."""
    concurrency, rate_map = raw.get("concurrency_limit"), raw.get("rate_limit")
    key = string(raw, "concurrency_key", None, limit=chars)
    if key is None:
        raise BadRequest("concurrency_limit and rate_limit need a concurrency_key")
    return jobspec.JobLimit(
        key=key,
        concurrency=(None if concurrency is None else integer(raw, "concurrency_limit", minimum=1)),
        rate=None if rate_map is None else rate(rate_map, "rate_limit"),
    )


def _flow(raw: dict[str, Any], limits: Limits) -> jobspec.Flow | None:
    """`depends_on` (docs/PROTOCOL.md extension "Workflows"), with `on_failure` and
    `pass_results`; None for a spec that waits for nothing."""
    get = raw.get
    parents = get("depends_on")
    if parents is None or parents == []:
        if get("on_failure") is not None or get("pass_results") is not None:
            raise BadRequest("on_failure and pass_results need depends_on")
        return None
    if not isinstance(parents, list) or len(parents) > limits.max_list_items:
        raise BadRequest(
            f"field 'depends_on' must be a list of at most {limits.max_list_items} job ids"
        )
    chars = limits.max_name_chars
    if not all(isinstance(p, str) and 0 < len(p) <= chars for p in parents):
        raise BadRequest(f"field 'depends_on' must hold job ids (1 to {chars} characters)")
    on_failure = string(raw, "on_failure", "cancel")
    if on_failure not in jobspec.ON_FAILURE:
        raise BadRequest(f"field 'on_failure' must be one of {', '.join(jobspec.ON_FAILURE)}")
    pass_results = boolean(raw, "pass_results", True)
    return jobspec.Flow(tuple(dict.fromkeys(parents)), on_failure, pass_results)


def job_spec(
    raw: Any, *, check_size: bool = False, limits: Limits = DEFAULT_LIMITS
) -> jobspec.JobSpec:
    """Validate one JobSpec map and fill in its defaults, in the compact forms JobSpec names.

    Absent fields take their default without a parser call: most specs carry two or three
    fields, and this runs once per job of every batch (it was the enqueue path's top cost).
    `type` and `queue` are shared strings (`jobspec.shared_name`): msgpack decodes a new string
    per occurrence, and a million queued jobs would otherwise hold a million copies of each.
    """
    if not isinstance(raw, dict):
        raise BadRequest("a job spec must be a map")
    if check_size and len(encode(raw)) > limits.max_job_size:
        raise TooLarge(f"job spec exceeds max_job_size {limits.max_job_size}")
    get = raw.get
    chars = limits.max_name_chars
    route: Mapping[str, str] = jobspec.EMPTY_MAP
    if get("route") is not None:
        given = mapping(raw, "route")
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
    unique_key = string(raw, "unique_key", None)
    if unique_key is not None and (not unique_key or len(unique_key) > chars):
        raise BadRequest(f"field 'unique_key' must have 1 to {chars} characters")
    timeout = None
    if get("timeout") is not None:
        timeout = number(raw, "timeout", minimum=0.0)
        if timeout <= 0:
            raise BadRequest("field 'timeout' must be > 0")
    return jobspec.JobSpec(
        type=jobspec.shared_name(string(raw, "type", limit=chars)),
        args=tuple(args),  # an empty one is the shared ()
        queue=(
            jobspec.shared_name(string(raw, "queue", limit=chars))
            if get("queue") is not None
            else "default"
        ),
        priority=integer(raw, "priority") if get("priority") is not None else 0,
        scheduled_at=number(raw, "scheduled_at", None),
        max_attempts=(
            integer(raw, "max_attempts", minimum=1) if get("max_attempts") is not None else 3
        ),
        retry=(
            _retry_policy(mapping(raw, "retry"))
            if get("retry") is not None
            else jobspec.DEFAULT_RETRY
        ),
        timeout=timeout,
        route=route,
        unique_key=unique_key,
        meta=(
            (dict(mapping(raw, "meta")) or jobspec.EMPTY_MAP)
            if get("meta") is not None
            else jobspec.EMPTY_MAP
        ),
        limit=(
            None  # most specs: three misses, no call
            if get("concurrency_key") is None
            and get("concurrency_limit") is None
            and get("rate_limit") is None
            else _job_limit(raw, chars)
        ),
        flow=(
            None
            if get("depends_on") is None
            and get("on_failure") is None
            and get("pass_results") is None
            else _flow(raw, limits)
        ),
        id=None if get("id") is None else _job_id(raw),
        expires_at=None if get("expires_at") is None else number(raw, "expires_at"),
        run_timeout=None if get("run_timeout") is None else _run_timeout(raw),
    )


def _run_timeout(raw: dict[str, Any]) -> float:
    """`run_timeout` (extension "Run timeout"): a finite number of seconds > 0."""
    run_timeout = number(raw, "run_timeout")
    if run_timeout <= 0:
        raise BadRequest("field 'run_timeout' must be > 0")
    return run_timeout


def _job_id(raw: dict[str, Any]) -> str:
    job_id = raw["id"]
    if not isinstance(job_id, str) or JOB_ID.fullmatch(job_id) is None:
        raise BadRequest("field 'id' must be a UUID in canonical lowercase form")
    return job_id


def _enqueue(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.Enqueue:
    check = size > limits.max_job_size
    request_id = string(b, "request_id", None, limit=REQUEST_ID_CHARS)
    if b.get("job") is not None:
        spec = job_spec(b["job"], check_size=check, limits=limits)
        return m.Enqueue(rid, (spec,), batch=False, request_id=request_id)
    if not isinstance(b.get("jobs"), list):
        raise BadRequest("enqueue needs 'job' (a map) or 'jobs' (a non-empty list)")
    specs = batch(b, "jobs", limits, lambda raw: job_spec(raw, check_size=check, limits=limits))
    named = [spec.id for spec in specs if spec.id is not None]
    if len(named) != len(set(named)):
        raise BadRequest("two jobs of the batch name the same 'id'")
    return m.Enqueue(rid, specs, batch=True, request_id=request_id)


PARSERS: dict[str, Parser] = {"enqueue": _enqueue}
