"""The one error tree of corral: a class per PROTOCOL.md section 2 code."""

from __future__ import annotations


class CorralError(Exception):
    """Root of every error corral raises on purpose."""

    code = "internal"

    def __init__(self, message: str = "", *, context: str = "") -> None:
        self.message = message
        self.context = context
        super().__init__(f"{self.code}: {message}" + (f" ({context})" if context else ""))


class BadRequest(CorralError):
    """Undecodable frame, not a map, missing or mistyped field, unknown type."""

    code = "bad_request"


class UnsupportedVersion(CorralError):
    """`hello.v` is not a version this coordinator speaks."""

    code = "unsupported_version"


class NotRegistered(CorralError):
    """A worker request before `hello`, or `fetch` before `register`."""

    code = "not_registered"


class UnknownWorker(CorralError):
    """The worker_id is not the live session of this connection."""

    code = "unknown_worker"


class UnknownJob(CorralError):
    """No job has this id."""

    code = "unknown_job"


class NotOwner(CorralError):
    """ack/fail for a job this worker does not hold at this attempt."""

    code = "not_owner"


class TooLarge(CorralError):
    """A frame, job or result over its size limit."""

    code = "too_large"


class Unauthorized(CorralError):
    """The peer's key lacks the role this request needs."""

    code = "unauthorized"


class InternalError(CorralError):
    """The coordinator failed; the request may be retried."""

    code = "internal"


class NotLeader(CorralError):
    """A standby coordinator: only the leader serves; `leader` is its advertised endpoint when
    the standby knows it (a peer with several endpoints tries that one next)."""

    code = "not_leader"

    def __init__(self, message: str = "", *, context: str = "", leader: str | None = None) -> None:
        super().__init__(message, context=context)
        self.leader = leader


class DuplicateJob(CorralError):
    """Extension "Job ids": an enqueue names a job id that a stored job already has."""

    code = "duplicate_job"


class ConnectionLost(CorralError):
    """Client side: no reply arrived in time (not a wire code)."""

    code = "connection_lost"


_BY_CODE: dict[str, type[CorralError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        UnsupportedVersion,
        NotRegistered,
        UnknownWorker,
        UnknownJob,
        NotOwner,
        TooLarge,
        Unauthorized,
        InternalError,
        NotLeader,
        DuplicateJob,
    )
}

WIRE_CODES = frozenset(_BY_CODE)


def error_for_code(
    code: str, message: str, *, context: str = "", leader: str | None = None
) -> CorralError:
    """Build the exception matching a wire error code (unknown codes map to InternalError);
    `leader` is the hint a `not_leader` error carries."""
    cls = _BY_CODE.get(code, InternalError)
    if cls is NotLeader:
        return NotLeader(message, context=context, leader=leader)
    return cls(message, context=context)
