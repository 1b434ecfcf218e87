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

Routes (`nodes.observe.dashboard_routes`, a Starlette app that `nodes.web.server.WebServer`
runs): `/` the page, `/fragment` its refreshed part, `/workflows/<id>` a workflow's page,
`/dashboard.css`, `/dashboard.js`, `/api/overview`, `/api/jobs?queue=&state=&job_type=&limit=`,
`/api/jobs/<id>`, `/api/workflows/<id>?limit=`, `POST /api/jobs/<id>/retry`.
"""

from __future__ import annotations

import hmac
import logging
import threading
from typing import TYPE_CHECKING, Any

from nodes.addons import DASHBOARD_REFRESH_S, DEFAULT_DASHBOARD_BIND, parse_bind
from nodes.inprocess import InProcessClient
from nodes.observe.dashboard_routes import dashboard_app
from nodes.observe.overview import overview
from nodes.web.server import WebServer

if TYPE_CHECKING:
    from nodes.addons import AddonHost

log = logging.getLogger(__name__)


class Dashboard:
    """Add-on: the dashboard's HTTP server on a thread of its own (uvicorn), its handlers on
    Starlette's thread pool."""

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
        self._server: WebServer | None = None
        self._lock = threading.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self, coordinator: AddonHost) -> None:
        self.client = InProcessClient(coordinator)  # closed by stop(), even if this fails
        self.coordinator_address = coordinator.address
        self._server = WebServer(dashboard_app(self), self.host, self.port, name="corral-dashboard")
        self._server.start()
        self.port = self._server.port
        log.info("dashboard on %s%s", self.url, " (retry enabled)" if self.admin_token else "")

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
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
