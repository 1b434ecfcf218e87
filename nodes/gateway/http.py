"""What every OJS route shares: the media type and headers, reading the JSON body, bearer
tokens to roles, and turning errors into the binding's error body."""

from __future__ import annotations

import hmac
import json
import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from nodes.gateway.envelope import SPEC_VERSION
from nodes.gateway.errors import OjsError, from_corral, invalid
from transport.codec import deeper_than
from transport.errors import CorralError

log = logging.getLogger(__name__)

MEDIA_TYPE = "application/openjobspec+json"
ACCEPTED_TYPES = (MEDIA_TYPE, "application/json")
MAX_BODY_BYTES = 1024 * 1024  # corral's max_message_size: a larger job could not be enqueued
# A body is sent on inside a frame nesting up to three levels more (frame, jobs list, job map):
# the coordinator refuses frames deeper than its max_depth (32 by default), answering no rid.
MAX_BODY_DEPTH = 28
ROLES = ("client", "worker", "admin")

Handler = Callable[[Request], Awaitable[Response]]


class Tokens:
    """Bearer tokens and the roles each grants; none configured: every request is allowed."""

    def __init__(self, grants: Mapping[str, frozenset[str]] | None = None) -> None:
        self._grants = dict(grants or {})

    @property
    def open(self) -> bool:
        return not self._grants

    def roles(self, header: str | None) -> frozenset[str]:
        if self.open:
            return frozenset(ROLES)
        scheme, _, token = (header or "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return frozenset()
        for known, roles in self._grants.items():  # compare every token: no timing hint
            if hmac.compare_digest(known.encode(), token.strip().encode()):
                return roles
        return frozenset()


def respond(request: Request, body: Any, status: int = 200, **headers: str) -> Response:
    """A JSON response of the binding: its media type, OJS-Version and X-Request-Id."""
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type=MEDIA_TYPE,
        headers={"OJS-Version": SPEC_VERSION, "X-Request-Id": request_id(request), **headers},
    )


def request_id(request: Request) -> str:
    """The caller's X-Request-Id, else one made for this request (kept for the error body)."""
    made = request.scope.setdefault("ojs_request_id", None)
    if made is None:
        given = request.headers.get("x-request-id", "")
        made = given[:128] if given else f"req_{uuid.uuid4()}"
        request.scope["ojs_request_id"] = made
    return made


async def json_body(request: Request, *, required: bool = True) -> Any:
    """The request's JSON body; 400 `invalid_payload` when it is not JSON."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise OjsError(413, "invalid_request", f"body over {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        if required:
            raise OjsError(400, "invalid_payload", "a JSON body is required")
        return {}
    kind = request.headers.get("content-type", MEDIA_TYPE).split(";")[0].strip().lower()
    if kind not in ACCEPTED_TYPES:
        raise OjsError(415, "invalid_request", f"content type must be {MEDIA_TYPE}")
    try:
        value = json.loads(raw, parse_constant=_not_json)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise OjsError(400, "invalid_payload", f"the body is not valid JSON: {exc}") from None
    if deeper_than(value, MAX_BODY_DEPTH):
        raise invalid(f"the body nests arrays and objects deeper than {MAX_BODY_DEPTH} levels")
    return value


def _not_json(constant: str) -> Any:
    """NaN and Infinity: Python's json reads them, JSON has no such values."""
    raise ValueError(f"{constant} is not a JSON value")


async def json_object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise invalid("the body must be a JSON object")
    return body


def route(role: str | None, tokens: Tokens, handler: Handler) -> Handler:
    """`handler` behind the token check for `role` (None: open), its errors as OJS errors."""

    async def guarded(request: Request) -> Response:
        try:
            if role is not None:
                roles = tokens.roles(request.headers.get("authorization"))
                if not roles:
                    raise OjsError(
                        401, "unauthorized", "a bearer token is required",
                        headers={"WWW-Authenticate": 'Bearer realm="corral"'},
                    )  # fmt: skip
                if role not in roles:
                    raise OjsError(403, "forbidden", f"this token lacks the {role!r} role")
            return await handler(request)
        except OjsError as exc:
            return respond(request, exc.body(request_id(request)), exc.status, **exc.headers)
        except CorralError as exc:
            error = from_corral(exc)
            return respond(request, error.body(request_id(request)), error.status)
        except Exception:
            log.exception("OJS %s %s failed", request.method, request.url.path)
            error = OjsError(500, "backend_error", "the gateway failed", retryable=True)
            return respond(request, error.body(request_id(request)), 500)

    return guarded
