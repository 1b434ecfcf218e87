"""A small web dashboard served by the coordinator (`dashboard: {bind: 127.0.0.1:8080}`).

Read-only by default: queues with counts per state, workers, recent failures and the dead
set, refreshed every few seconds. Its data come from an `InProcessClient` (the store and one
in-process `stats` request per view), so no actor ever waits for a browser.

Retrying dead jobs is an admin action. The dashboard speaks HTTP, not CURVE, so it cannot
check the `admin` role of a key; instead it offers retry only when it was given an admin token
(`admin_token_file`), and a retry must carry it as `Authorization: Bearer <token>`. The page
asks for the token once and keeps it in the tab's sessionStorage. Without a configured token
`POST /api/jobs/<id>/retry` answers 403 and the page shows no retry buttons. A header cannot be
sent cross-site without a CORS preflight, which this server never grants, so another site open
in the same browser cannot retry jobs.

Routes: `/` the page, `/fragment` its refreshed part, `/workflows/<id>` a workflow's page,
`/dashboard.css`, `/dashboard.js`, `/api/overview`, `/api/jobs?queue=&state=&job_type=&limit=`,
`/api/jobs/<id>`, `/api/workflows/<id>?limit=`, `POST /api/jobs/<id>/retry`.
"""

from __future__ import annotations

import hmac
import json
import logging
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from nodes.addons import DASHBOARD_REFRESH_S, DEFAULT_DASHBOARD_BIND, parse_bind
from nodes.inprocess import InProcessClient
from nodes.observe import assets, page, workflow_page
from nodes.observe.overview import overview
from transport.errors import BadRequest, CorralError, UnknownJob

if TYPE_CHECKING:
    from nodes.addons import AddonHost

log = logging.getLogger(__name__)

MAX_API_LIMIT = 1000
MAX_BODY_BYTES = 4096
SECURITY_HEADERS = {
    # Everything the page loads comes from here; nothing may frame it.
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class Dashboard:
    """Add-on: the dashboard's HTTP server on its own threads, one per request."""

    config_key = "dashboard.bind"  # named when it cannot listen (nodes.addons.start_failed)

    def __init__(
        self,
        bind: str = DEFAULT_DASHBOARD_BIND,
        *,
        admin_token: str | None = None,
        title: str = "corral",
        refresh_s: float = DASHBOARD_REFRESH_S,
    ) -> None:
        self.host, self.port = parse_bind(bind)
        self.admin_token = admin_token or None
        self.title = title
        self.refresh_s = refresh_s
        self.coordinator_address = ""
        self.client: InProcessClient | None = None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, coordinator: AddonHost) -> None:
        self.client = InProcessClient(coordinator)
        self.coordinator_address = coordinator.address
        server = _Server((self.host, self.port), _Handler)
        server.dashboard = self
        self.port = int(server.server_address[1])
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="corral-dashboard"
        )
        self._thread.daemon = True
        self._thread.start()
        log.info("dashboard on %s%s", self.url, " (retry enabled)" if self.admin_token else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self.client is not None:
            self.client.close()
            self.client = None

    def forget_view(self) -> None:
        with self._lock:
            self._cached = None

    def authorised(self, header: str | None) -> bool:
        """Does an `Authorization` header carry the admin token? (constant-time compare)"""
        if not self.admin_token or not header or not header.startswith("Bearer "):
            return False
        given = header.removeprefix("Bearer ").strip().encode()
        return hmac.compare_digest(given, self.admin_token.encode())

    def overview(self) -> dict[str, Any]:
        """The current view, shared by every open tab for half a refresh period, so the cost
        on the coordinator does not grow with the number of people watching."""
        assert self.client is not None
        with self._lock:
            now = self.client.now()
            if self._cached is None or now - self._cached[0] >= self.refresh_s / 2:
                self._cached = (now, overview(self.client, admin=self.admin_token is not None))
            return self._cached[1]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    dashboard: Dashboard


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    server_version = "corral-dashboard"
    sys_version = ""

    def log_message(self, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), args[0] % args[1:])

    # -- responses ----------------------------------------------------------------------------

    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in SECURITY_HEADERS.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        body = json.dumps(value, default=str, ensure_ascii=False).encode()
        self._send(status, body, "application/json; charset=utf-8")

    def _html(self, text: str) -> None:
        self._send(HTTPStatus.OK, text.encode(), "text/html; charset=utf-8")

    def _problem(self, status: int, message: str) -> None:
        self._json(status, {"error": message})

    # -- routes -------------------------------------------------------------------------------

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        dashboard = self.server.dashboard
        url = urlsplit(self.path)
        path = url.path
        try:
            if path == "/":
                self._html(
                    page.page(
                        dashboard.overview(),
                        title=dashboard.title,
                        coordinator_address=dashboard.coordinator_address,
                        refresh_s=dashboard.refresh_s,
                        admin=dashboard.admin_token is not None,
                    )
                )
            elif path == "/fragment":
                self._html(page.content(dashboard.overview()))
            elif path == "/dashboard.css":
                self._send(HTTPStatus.OK, assets.CSS.encode(), "text/css; charset=utf-8")
            elif path == "/dashboard.js":
                self._send(HTTPStatus.OK, assets.JS.encode(), "text/javascript; charset=utf-8")
            elif path == "/api/overview":
                self._json(HTTPStatus.OK, dashboard.overview())
            elif path == "/api/jobs":
                self._jobs(parse_qs(url.query))
            elif path.startswith("/api/jobs/") and path.count("/") == 3:
                self._job(unquote(path.removeprefix("/api/jobs/")))
            elif path.startswith("/api/workflows/") and path.count("/") == 3:
                self._workflow_json(unquote(path.removeprefix("/api/workflows/")), url.query)
            elif path.startswith("/workflows/") and path.count("/") == 2:
                self._workflow_page(unquote(path.removeprefix("/workflows/")))
            else:
                self._problem(HTTPStatus.NOT_FOUND, f"no page {path}")
        except Exception:
            log.exception("dashboard failed on GET %s", path)
            self._problem(HTTPStatus.INTERNAL_SERVER_ERROR, "the dashboard failed")

    def do_POST(self) -> None:
        dashboard = self.server.dashboard
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._problem(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "body too large")
            return
        self.rfile.read(length)  # nothing is read from it; drained so the reply is clean
        parts = path.split("/")
        if len(parts) != 5 or parts[:3] != ["", "api", "jobs"] or parts[4] != "retry":
            self._problem(HTTPStatus.NOT_FOUND, f"no action {path}")
            return
        if dashboard.admin_token is None:
            self._problem(
                HTTPStatus.FORBIDDEN, "retry is disabled: the dashboard has no admin token"
            )
            return
        if not dashboard.authorised(self.headers.get("Authorization")):
            self._problem(HTTPStatus.UNAUTHORIZED, "retry needs the admin token")
            return
        self._retry(unquote(parts[3]))

    def _limit(self, query: dict[str, list[str]], default: int) -> int | None:
        """The `limit` of a query, between 1 and MAX_API_LIMIT; None once refused with 400."""
        try:
            limit = min(int(query.get("limit", [str(default)])[0]), MAX_API_LIMIT)
        except ValueError:
            self._problem(HTTPStatus.BAD_REQUEST, "limit must be an integer")
            return None
        return max(limit, 1)

    def _jobs(self, query: dict[str, list[str]]) -> None:
        client = self.server.dashboard.client
        assert client is not None
        limit = self._limit(query, 50)
        if limit is None:
            return
        jobs = client.jobs(
            query.get("queue", [None])[0],
            query.get("state", [None])[0],
            query.get("job_type", [None])[0],
            limit,
        )
        self._json(HTTPStatus.OK, {"jobs": jobs})

    def _job(self, job_id: str) -> None:
        client = self.server.dashboard.client
        assert client is not None
        job = client.get(job_id)
        if job is None:
            self._problem(HTTPStatus.NOT_FOUND, f"no job {job_id}")
        else:
            self._json(HTTPStatus.OK, {"job": job})

    def _workflow(self, workflow_id: str, limit: int) -> dict[str, Any] | None:
        """The `workflow_get` reply; None once answered 404 (no such workflow) or 503."""
        client = self.server.dashboard.client
        assert client is not None
        try:
            return client.workflow(workflow_id, limit)
        except UnknownJob as exc:
            self._problem(HTTPStatus.NOT_FOUND, exc.message)
        except CorralError as exc:
            self._problem(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc.code}: {exc.message}")
        return None

    def _workflow_json(self, workflow_id: str, query: str) -> None:
        limit = self._limit(parse_qs(query), workflow_page.STEPS_SHOWN)
        reply = None if limit is None else self._workflow(workflow_id, limit)
        if reply is not None:
            self._json(HTTPStatus.OK, {"workflow": reply})

    def _workflow_page(self, workflow_id: str) -> None:
        dashboard = self.server.dashboard
        if reply := self._workflow(workflow_id, workflow_page.STEPS_SHOWN):
            where = dashboard.coordinator_address
            self._html(workflow_page.page(reply, title=dashboard.title, coordinator_address=where))

    def _retry(self, job_id: str) -> None:
        client = self.server.dashboard.client
        assert client is not None
        try:
            state = client.retry(job_id)
        except UnknownJob as exc:
            self._problem(HTTPStatus.NOT_FOUND, exc.message)
        except BadRequest as exc:
            self._problem(HTTPStatus.CONFLICT, exc.message)
        except CorralError as exc:
            self._problem(HTTPStatus.SERVICE_UNAVAILABLE, f"{exc.code}: {exc.message}")
        else:
            log.info("dashboard: job %s retried by hand", job_id, extra={"job_id": job_id})
            self.server.dashboard.forget_view()
            self._json(HTTPStatus.OK, {"job_id": job_id, "state": state})
