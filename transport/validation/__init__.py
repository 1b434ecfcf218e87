"""Turn a decoded map into a typed request, or raise the PROTOCOL.md section 2 error.

Every check that does not depend on coordinator state lives in this package, so a request
that passes reaches the actors already trusted. One module per request family:

- `session`: a worker's hello, register, beat, fetch and deregister;
- `outcomes`: ack, fail and the `outcomes` extension;
- `jobs`: enqueue and the job spec (`job_spec`);
- `admin`: ping, get, cancel, retry, delete, stats, jobs, direct, pause_queue and resume_queue;
- `schedules`: schedule_put, schedule_remove, schedule_pause, schedule_resume, schedules;
- `workflows`: workflow (compiled into steps), workflow_get, workflow_cancel;
- `fields` holds the shared field checkers and `limits` the configurable size limits.
"""

from __future__ import annotations

from typing import Any

from transport import messages as m
from transport.codec import valid_rid
from transport.errors import BadRequest
from transport.validation import admin, jobs, outcomes, schedules, session, workflows
from transport.validation.fields import Parser
from transport.validation.limits import DEFAULT_LIMITS, Limits

_PARSERS: dict[str, Parser] = {
    **session.PARSERS,
    **outcomes.PARSERS,
    **jobs.PARSERS,
    **admin.PARSERS,
    **schedules.PARSERS,
    **workflows.PARSERS,
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
