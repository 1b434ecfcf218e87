"""Gateway: the Open Job Spec HTTP binding in front of corral (`kind: gateway`, docs/OJS.md).

A node of its own that speaks corral's wire protocol to the coordinator, like any client or
worker: it follows the leader among several coordinators, holds a CURVE key with the roles it
needs, and takes the HTTP work (parsing, JSON, TLS at a proxy in front) off the coordinator's
process, whose one interpreter lock serves every ZeroMQ peer. Several gateways may serve one
cluster; each keeps its own HTTP workers' sessions.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING

import zmq.asyncio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from actors.clock import Clock, SystemClock
from nodes.gateway.admin_routes import AdminRoutes
from nodes.gateway.backend import Backend
from nodes.gateway.cron_routes import CronRoutes
from nodes.gateway.errors import OjsError
from nodes.gateway.http import ROLES, Handler, Tokens, request_id, respond, route
from nodes.gateway.job_routes import JobRoutes
from nodes.gateway.worker_routes import WorkerRoutes
from nodes.gateway.workers import MAX_HTTP_WORKERS
from nodes.gateway.workflow_routes import WorkflowRoutes
from nodes.web.server import WebServer
from transport.aio import Reach
from transport.endpoints import addresses_of

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)

DEFAULT_GATEWAY_BIND = "127.0.0.1:8080"
REQUEST_TIMEOUT_S = 10.0
V1 = "/ojs/v1"


class Gateway:
    """Serves the OJS HTTP binding on `bind` (`host:port`, port 0: any) for the coordinators
    at `connect`. `tokens` maps each bearer token to its roles (client, worker, admin); none:
    every caller may do everything (bind to loopback, or put a proxy with auth in front)."""

    def __init__(
        self,
        connect: str | Sequence[str] = "tcp://127.0.0.1:5555",
        *,
        bind: str = DEFAULT_GATEWAY_BIND,
        tokens: Mapping[str, Iterable[str]] | None = None,
        curve: CurveClientConfig | None = None,
        timeout: float = REQUEST_TIMEOUT_S,
        test_directives: bool = False,
        max_http_workers: int = MAX_HTTP_WORKERS,
        clock: Clock | None = None,
        name: str = "gateway",
    ) -> None:
        host, _, port = bind.rpartition(":")
        self.host, self.port = host.strip("[]") or "127.0.0.1", int(port)
        self.addresses = addresses_of(connect)
        self.name = name
        self._tokens = Tokens({t: frozenset(_roles(r)) for t, r in (tokens or {}).items()})
        self._curve = curve
        self._timeout = timeout
        self._test_directives = test_directives
        self._max_http_workers = max_http_workers
        self._clock = clock or SystemClock()
        self._context: zmq.asyncio.Context | None = None
        self._server: WebServer | None = None

    @property
    def url(self) -> str:
        """The base URL (`http://host:port`), with the bound port once started."""
        return self._server.url.rstrip("/") if self._server else f"http://{self.host}:{self.port}"

    def start(self) -> None:
        self._context = zmq.asyncio.Context()
        # a client link and each HTTP worker's, to every coordinator, and room to spare
        sockets = (self._max_http_workers + 1) * len(self.addresses) + 16
        self._context.set(zmq.MAX_SOCKETS, max(sockets, self._context.get(zmq.MAX_SOCKETS)))
        backend = Backend(
            Reach(self.addresses, self._context, self._curve), timeout=self._timeout,
            test_directives=self._test_directives, max_workers=self._max_http_workers,
        )  # fmt: skip
        self._server = WebServer(self.app(backend), self.host, self.port, name="corral-gateway")
        try:
            self._server.start()
        except BaseException:
            self._context.destroy(linger=0)
            raise
        self.port = self._server.port
        log.info("OJS gateway on %s for %s", self.url, ", ".join(self.addresses))

    def stop(self) -> None:
        """Stop serving. The HTTP workers' sessions are not ended: the coordinator recovers
        their jobs when they go silent (heartbeat_timeout), or sooner when a job's own lease
        (its visibility timeout) runs out."""
        if self._server is not None:
            self._server.stop()
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def app(self, backend: Backend) -> Starlette:
        now = self._clock.now
        jobs, workers = JobRoutes(backend, now), WorkerRoutes(backend, now)
        admin, cron = AdminRoutes(backend, now), CronRoutes(backend, now)
        flows = WorkflowRoutes(backend, now)
        table: list[tuple[str, str, str | None, Handler]] = [
            ("/ojs/manifest", "GET", None, admin.manifest),
            (f"{V1}/health", "GET", None, admin.health),
            (f"{V1}/jobs", "POST", "client", jobs.create),
            (f"{V1}/jobs/batch", "POST", "client", jobs.batch),
            (f"{V1}/jobs/{{job_id}}", "GET", "client", jobs.get),
            (f"{V1}/jobs/{{job_id}}", "DELETE", "client", jobs.cancel),
            (f"{V1}/workers/fetch", "POST", "worker", workers.fetch),
            (f"{V1}/workers/ack", "POST", "worker", workers.ack),
            (f"{V1}/workers/nack", "POST", "worker", workers.nack),
            (f"{V1}/workers/heartbeat", "POST", "worker", workers.heartbeat),
            (f"{V1}/queues", "GET", "client", admin.queues),
            (f"{V1}/queues/{{name}}/stats", "GET", "client", admin.queue_stats),
            (f"{V1}/queues/{{name}}/pause", "POST", "admin", admin.pause),
            (f"{V1}/queues/{{name}}/resume", "POST", "admin", admin.resume),
            (f"{V1}/dead-letter", "GET", "client", admin.dead_letter),
            (f"{V1}/dead-letter/{{job_id}}/retry", "POST", "admin", admin.dead_letter_retry),
            (f"{V1}/dead-letter/{{job_id}}", "DELETE", "admin", admin.dead_letter_delete),
            (f"{V1}/events", "GET", "client", admin.events),
            (f"{V1}/workflows", "POST", "client", flows.create),
            (f"{V1}/workflows/{{workflow_id}}", "GET", "client", flows.get),
            (f"{V1}/workflows/{{workflow_id}}", "DELETE", "client", flows.cancel),
            (f"{V1}/cron", "GET", "client", cron.list),
            (f"{V1}/cron", "POST", "admin", cron.register),
            (f"{V1}/cron/{{name}}", "DELETE", "admin", cron.delete),
        ]
        routes = [
            Route(path, route(role, self._tokens, handler), methods=[method])
            for path, method, role, handler in table
        ]
        return Starlette(
            routes=routes,
            exception_handlers={HTTPException: _http_error},  # type: ignore[dict-item]
        )


async def _http_error(request: Request, exc: HTTPException) -> Response:
    """Starlette's own 404 and 405 in the binding's error shape."""
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
    error = OjsError(exc.status_code, code, f"{request.method} {request.url.path}: {exc.detail}")
    return respond(request, error.body(request_id(request)), exc.status_code)


def _roles(roles: Iterable[str]) -> list[str]:
    chosen = list(roles)
    unknown = [role for role in chosen if role not in ROLES]
    if unknown:
        raise ValueError(f"unknown roles {unknown}: each is one of {', '.join(ROLES)}")
    return chosen
