"""The dashboard's HTTP side: a Starlette app over a `Dashboard` (nodes.observe.dashboard).

Routes match the decoded path, where an id's `%2F` has become a slash; a workflow id is any
text, so the handlers of `/api/jobs/<id>`, `/api/workflows/<id>` and `/workflows/<id>` cut the
id from the path as sent. The last two routes catch every other GET (404 `no page`) and POST
(413 for a large body, else 404 `no action`); any other method, an OPTIONS preflight included,
is answered 501. Every response carries SECURITY_HEADERS.

Handlers are plain functions: Starlette runs them on its thread pool, where they may block on
the `InProcessClient`. Bodies are never read: a retry says all it needs in its path.
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import parse_qs, unquote

from starlette.applications import Starlette
from starlette.datastructures import MutableHeaders
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nodes.observe import assets, page, workflow_page
from transport.errors import BadRequest, CorralError, UnknownJob

if TYPE_CHECKING:
    from nodes.inprocess import InProcessClient

log = logging.getLogger("nodes.observe.dashboard")  # the add-on's: one name for the dashboard

MAX_API_LIMIT = 1000
MAX_BODY_BYTES = 4096
SECURITY_HEADERS = {
    # Everything the page loads comes from here; nothing may frame it.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
JSON = "application/json; charset=utf-8"
HTML = "text/html; charset=utf-8"

View = Callable[[Request], Response]


class Dashboard(Protocol):
    """What the routes use of the dashboard they serve (`nodes.observe.dashboard.Dashboard`,
    which imports this module)."""

    title: str
    refresh_s: float
    admin_token: str | None
    coordinator_address: str
    client: InProcessClient | None

    def overview(self) -> dict[str, Any]: ...

    def authorised(self, header: str | None) -> bool: ...

    def forget_view(self) -> None: ...


def dashboard_app(dashboard: Dashboard) -> Starlette:
    """The ASGI app serving `dashboard` (started, so that its `client` is set)."""
    views = _Views(dashboard)
    get = ["GET"]  # and HEAD: Starlette runs the GET handler, the server drops the body
    routes = [
        Route("/", _guarded(views.page), methods=get),
        Route("/fragment", _guarded(views.fragment), methods=get),
        Route("/dashboard.css", _guarded(views.css), methods=get),
        Route("/dashboard.js", _guarded(views.js), methods=get),
        Route("/api/overview", _guarded(views.overview), methods=get),
        Route("/api/jobs", _guarded(views.jobs), methods=get),
        Route("/api/jobs/{rest:path}", _guarded(views.job), methods=get),
        Route("/api/workflows/{rest:path}", _guarded(views.workflow_json), methods=get),
        Route("/workflows/{rest:path}", _guarded(views.workflow_page), methods=get),
        Route("/{rest:path}", _guarded(views.no_page), methods=get),
        Route("/{rest:path}", _guarded(views.action), methods=["POST"]),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_SecurityHeaders)],
        exception_handlers={405: _unsupported},
    )


class _Refused(Exception):
    """Ends a request with a JSON problem reply: `{"error": message}`."""

    def __init__(self, status: HTTPStatus, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _json(value: Any, status: int = HTTPStatus.OK) -> Response:
    body = json.dumps(value, default=str, ensure_ascii=False).encode()
    return Response(body, int(status), media_type=JSON)


def _html(text: str) -> Response:
    return Response(text.encode(), HTTPStatus.OK.value, media_type=HTML)


def _problem(status: int, message: str) -> Response:
    return _json({"error": message}, status)


def _guarded(view: View) -> View:
    """`view`, answering a `_Refused` with its problem and any other error with a 500."""

    @functools.wraps(view)
    def guarded(request: Request) -> Response:
        try:
            return view(request)
        except _Refused as refused:
            return _problem(refused.status, refused.message)
        except Exception:
            log.exception("dashboard failed on %s %s", request.method, _path(request))
            return _problem(HTTPStatus.INTERNAL_SERVER_ERROR, "the dashboard failed")

    return guarded


async def _unsupported(request: Request, exc: Exception) -> Response:
    """A method no route takes (only GET, HEAD and POST have one)."""
    return _problem(HTTPStatus.NOT_IMPLEMENTED, f"unsupported method {request.method}")


class _SecurityHeaders:
    """ASGI middleware: SECURITY_HEADERS on every response, the framework's own included."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_secured(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_secured)


def _path(request: Request) -> str:
    """The path as the client sent it, percent-escapes kept (its query left out)."""
    raw: bytes | None = request.scope.get("raw_path")
    if raw is None:
        return str(request.scope["path"])
    return raw.decode("latin-1").partition("?")[0]


def _id_after(request: Request, prefix: str) -> str:
    """The id in `<prefix><id>` (as sent, then decoded); 404 when more segments follow."""
    path = _path(request)
    rest = path.removeprefix(prefix)
    if not path.startswith(prefix) or "/" in rest:
        raise _Refused(HTTPStatus.NOT_FOUND, f"no page {path}")
    return unquote(rest)


def _query(request: Request) -> dict[str, list[str]]:
    """The query's values by name, blank ones left out (`?queue=` is no queue filter)."""
    return parse_qs(request.scope["query_string"].decode("latin-1"))


def _limit(query: dict[str, list[str]], default: int) -> int:
    """The `limit` of a query, between 1 and MAX_API_LIMIT."""
    try:
        limit = min(int(query.get("limit", [str(default)])[0]), MAX_API_LIMIT)
    except ValueError:
        raise _Refused(HTTPStatus.BAD_REQUEST, "limit must be an integer") from None
    return max(limit, 1)


class _Views:
    """The handlers, over one dashboard."""

    def __init__(self, dashboard: Dashboard) -> None:
        self.dashboard = dashboard

    @property
    def client(self) -> InProcessClient:
        client = self.dashboard.client
        assert client is not None, "the dashboard serves only while started"
        return client

    def page(self, request: Request) -> Response:
        dashboard = self.dashboard
        return _html(
            page.page(
                dashboard.overview(),
                title=dashboard.title,
                coordinator_address=dashboard.coordinator_address,
                refresh_s=dashboard.refresh_s,
                admin=dashboard.admin_token is not None,
            )
        )

    def fragment(self, request: Request) -> Response:
        return _html(page.content(self.dashboard.overview()))

    def css(self, request: Request) -> Response:
        return Response(assets.CSS.encode(), media_type="text/css; charset=utf-8")

    def js(self, request: Request) -> Response:
        return Response(assets.JS.encode(), media_type="text/javascript; charset=utf-8")

    def overview(self, request: Request) -> Response:
        return _json(self.dashboard.overview())

    def jobs(self, request: Request) -> Response:
        query = _query(request)
        limit = _limit(query, 50)
        jobs = self.client.jobs(
            query.get("queue", [None])[0],
            query.get("state", [None])[0],
            query.get("job_type", [None])[0],
            limit,
        )
        return _json({"jobs": jobs})

    def job(self, request: Request) -> Response:
        job_id = _id_after(request, "/api/jobs/")
        job = self.client.get(job_id)
        if job is None:
            raise _Refused(HTTPStatus.NOT_FOUND, f"no job {job_id}")
        return _json({"job": job})

    def _workflow(self, workflow_id: str, limit: int) -> dict[str, Any]:
        """The `workflow_get` reply; 404 for no such workflow, 503 when none came."""
        try:
            return self.client.workflow(workflow_id, limit)
        except UnknownJob as exc:
            raise _Refused(HTTPStatus.NOT_FOUND, exc.message) from None
        except CorralError as exc:
            raise _Refused(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc.code}: {exc.message}") from None

    def workflow_json(self, request: Request) -> Response:
        workflow_id = _id_after(request, "/api/workflows/")
        limit = _limit(_query(request), workflow_page.STEPS_SHOWN)
        return _json({"workflow": self._workflow(workflow_id, limit)})

    def workflow_page(self, request: Request) -> Response:
        dashboard = self.dashboard
        reply = self._workflow(_id_after(request, "/workflows/"), workflow_page.STEPS_SHOWN)
        where = dashboard.coordinator_address
        return _html(workflow_page.page(reply, title=dashboard.title, coordinator_address=where))

    def no_page(self, request: Request) -> Response:
        return _problem(HTTPStatus.NOT_FOUND, f"no page {_path(request)}")

    def action(self, request: Request) -> Response:
        """Every POST: only `/api/jobs/<id>/retry` is one, and it needs the admin token."""
        length = request.headers.get("content-length", "")
        if length.isdigit() and int(length) > MAX_BODY_BYTES:
            return _problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
        path = _path(request)
        parts = path.split("/")
        if len(parts) != 5 or parts[:3] != ["", "api", "jobs"] or parts[4] != "retry":
            return _problem(HTTPStatus.NOT_FOUND, f"no action {path}")
        dashboard = self.dashboard
        if dashboard.admin_token is None:
            message = "retry is disabled: the dashboard has no admin token"
            return _problem(HTTPStatus.FORBIDDEN, message)
        if not dashboard.authorised(request.headers.get("authorization")):
            return _problem(HTTPStatus.UNAUTHORIZED, "retry needs the admin token")
        return self._retry(unquote(parts[3]))

    def _retry(self, job_id: str) -> Response:
        try:
            state = self.client.retry(job_id)
        except UnknownJob as exc:
            return _problem(HTTPStatus.NOT_FOUND, exc.message)
        except BadRequest as exc:
            return _problem(HTTPStatus.CONFLICT, exc.message)
        except CorralError as exc:
            return _problem(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc.code}: {exc.message}")
        log.info("dashboard: job %s retried by hand", job_id, extra={"job_id": job_id})
        self.dashboard.forget_view()
        return _json({"job_id": job_id, "state": state})
