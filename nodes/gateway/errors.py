"""OJS errors on the HTTP side: `{"error": {code, message, retryable, details?, request_id}}`
with the binding's status codes, and the mapping of corral's wire errors onto them."""

from __future__ import annotations

from typing import Any

from transport.errors import CorralError

# corral wire code -> (HTTP status, OJS code, retryable)
_FROM_WIRE: dict[str, tuple[int, str, bool]] = {
    "bad_request": (400, "invalid_request", False),
    "unknown_job": (404, "not_found", False),
    "not_owner": (409, "conflict", False),
    "duplicate_job": (409, "duplicate", False),
    "too_large": (413, "invalid_request", False),
    "unauthorized": (403, "unauthorized", False),
    "not_leader": (503, "backend_error", True),
    "connection_lost": (503, "backend_error", True),
    "internal": (500, "backend_error", True),
}


DOCS_URL = "docs/OJS.md#errors"  # in corral's source tree: the gateway has no site of its own
HINTS = {
    "invalid_request": "fix the request as the message says; sending it again will not help",
    "invalid_payload": "send a JSON object with Content-Type application/openjobspec+json",
    "not_found": "check the id: terminal jobs are forgotten after their retention",
    "conflict": "read the job's state (GET /ojs/v1/jobs/{id}) before acting on it",
    "duplicate": "a job with this id or unique key exists: read it instead of enqueueing again",
    "backend_error": "retry later: the coordinator did not answer",
    "unauthorized": "send Authorization: Bearer <token>",
    "forbidden": "use a token with the role this route needs",
}


class OjsError(Exception):
    """An error reply of the HTTP binding."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        kind: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind  # the error's `type`, where the binding names one (validation_error)
        self.status = status
        self.code = code
        self.message = message
        self.retryable = retryable
        self.details = details
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "retryable": self.retryable,
            "request_id": request_id,
        }
        if self.kind is not None:
            error["type"] = self.kind
        if self.details:
            error["details"] = self.details
        error["hint"] = HINTS.get(self.code, "see docs_url for this error code")
        error["docs_url"] = DOCS_URL
        return {"error": error}


def invalid(message: str, **details: Any) -> OjsError:
    """A request the binding refuses as malformed (400 `invalid_request`)."""
    return OjsError(400, "invalid_request", message, details=details or None)


def not_found(what: str) -> OjsError:
    return OjsError(404, "not_found", f"{what} not found")


def conflict(message: str, **details: Any) -> OjsError:
    return OjsError(409, "conflict", message, details=details or None)


def from_corral(error: CorralError) -> OjsError:
    """The HTTP form of an error the coordinator answered (or of no answer)."""
    status, code, retryable = _FROM_WIRE.get(error.code, (500, "backend_error", True))
    return OjsError(status, code, str(error) or error.code, retryable=retryable)
