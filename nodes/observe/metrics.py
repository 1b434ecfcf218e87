"""Prometheus metrics of a coordinator (`metrics: {bind: 127.0.0.1:9464}` in the YAML).

Two sources, one registry per coordinator (never the global one, so several coordinators can
live in one process):
- `MetricsObserver`, an event observer, counts what happens as it happens: enqueues, starts,
  completions, failed attempts, retries, discards, cancels, recoveries, worker joins, deaths
  and directives, and times job runs, queue waits and parked fetches in histograms;
- `CoordinatorCollector` (`nodes.observe.gauges`) reads the current state at scrape time:
  jobs per queue and state, unroutable jobs, jobs held back by a limit, paused queues, workers
  per state and their slots (one in-process `stats` request), frames and bytes in and out
  (`nodes.observe.traffic`), and requests refused at the edge.

Labels are the queue (at most `max_queues`, 1,000) and small fixed sets (state, reason,
outcome). Job types are not a label: clients choose them freely, and a label per type would
let one client grow the exporter without bound.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import start_http_server
from prometheus_client.process_collector import ProcessCollector

from actors import events, states
from nodes.addons import DEFAULT_METRICS_BIND, parse_bind
from nodes.inprocess import InProcessClient
from nodes.observe.gauges import CoordinatorCollector

if TYPE_CHECKING:
    from nodes.addons import AddonHost

log = logging.getLogger(__name__)

RUN_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800)
WAIT_BUCKETS_S = (0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300, 3600)
FETCH_BUCKETS_S = (0.001, 0.01, 0.1, 0.5, 1, 2, 5, 10, 30)
RECOVERY_ERRORS = frozenset({"worker_lost", "timeout"})


class MetricsObserver:
    """Event observer: counters and histograms. Runs on the emitting handler's thread, so each
    event costs a dict lookup and one or two increments (about 1 us)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        def counter(name: str, doc: str, *labels: str) -> Counter:
            return Counter(name, doc, labels, registry=registry)

        self.enqueued = counter("corral_jobs_enqueued", "Jobs enqueued", "queue")
        self.started = counter("corral_jobs_started", "Jobs handed to a worker", "queue")
        self.completed = counter("corral_jobs_completed", "Jobs completed", "queue")
        self.failures = counter(
            "corral_job_failures",
            "Failed attempts: error (the handler failed), worker_lost or timeout",
            "queue",
            "reason",
        )
        self.retried = counter("corral_jobs_retried", "Failed attempts to be retried", "queue")
        self.discarded = counter("corral_jobs_discarded", "Jobs discarded (dead)", "queue")
        self.cancelled = counter("corral_jobs_cancelled", "Jobs cancelled", "queue")
        self.recovered = counter(
            "corral_jobs_recovered",
            "Jobs taken back from a lost worker or an expired reservation",
            "queue",
            "reason",
        )
        self.joined = counter("corral_workers_joined", "Worker sessions opened (hello)")
        self.lost = counter(
            "corral_workers_lost",
            "Worker sessions ended: timeout (a death), deregistered, replaced",
            "reason",
        )
        self.directives = counter("corral_worker_directives", "Directives sent", "state")
        self.run_seconds = Histogram(
            "corral_job_run_seconds",
            "Time from a job's start to its ack or fail",
            ("queue", "outcome"),
            buckets=RUN_BUCKETS_S,
            registry=registry,
        )
        self.wait_seconds = Histogram(
            "corral_job_wait_seconds",
            "Time a job waited, once due, until a worker got it",
            ("queue",),
            buckets=WAIT_BUCKETS_S,
            registry=registry,
        )
        self.fetch_seconds = Histogram(
            "corral_fetch_wait_seconds",
            "Time a worker's fetch was held before its answer",
            ("outcome",),
            buckets=FETCH_BUCKETS_S,
            registry=registry,
        )
        self._children: dict[tuple[int, tuple[str, ...]], Any] = {}

    def _of(self, metric: Any, *labels: str) -> Any:
        """The labelled child, cached (prometheus_client's `labels()` takes a lock each call)."""
        key = (id(metric), labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        handler = self._handlers.get(name)
        if handler is not None:
            handler(self, payload)

    def _enqueued(self, p: dict[str, Any]) -> None:
        self._of(self.enqueued, p["job"].queue).inc()

    def _started(self, p: dict[str, Any]) -> None:
        job = p["job"]
        self._of(self.started, job.queue).inc()
        due = max(
            job.created_at,
            job.scheduled_at or 0.0,
            job.next_attempt_at or 0.0,
            job.errors[-1]["at"] if job.errors else 0.0,
        )
        if job.started_at is not None:
            self._of(self.wait_seconds, job.queue).observe(max(0.0, job.started_at - due))

    def _terminal(self, p: dict[str, Any]) -> None:
        job = p["job"]
        if job.state == states.COMPLETED:
            self._of(self.completed, job.queue).inc()
            self._ran(job, "completed", job.completed_at)
        elif job.state == states.DISCARDED:
            self._of(self.discarded, job.queue).inc()
            last = job.errors[-1]["type"] if job.errors else "error"
            if last not in RECOVERY_ERRORS:  # a recovery was counted by its own event
                self._of(self.failures, job.queue, "error").inc()
                self._ran(job, "failed", job.completed_at)
        elif job.state == states.CANCELLED:
            self._of(self.cancelled, job.queue).inc()

    def _retry(self, p: dict[str, Any]) -> None:
        job = p["job"]
        self._of(self.retried, job.queue).inc()
        self._of(self.failures, job.queue, "error").inc()
        self._ran(job, "failed", job.errors[-1]["at"] if job.errors else None)

    def _ran(self, job: Any, outcome: str, ended: float | None) -> None:
        if job.started_at is not None and ended is not None:
            self._of(self.run_seconds, job.queue, outcome).observe(max(0.0, ended - job.started_at))

    def _recovered(self, p: dict[str, Any]) -> None:
        job, reason = p["job"], p["reason"]
        self._of(self.recovered, job.queue, reason).inc()
        self._of(self.failures, job.queue, reason).inc()

    def _fetch(self, p: dict[str, Any]) -> None:
        outcome = "jobs" if p["jobs"] else "empty"
        self._of(self.fetch_seconds, outcome).observe(p["waited"])

    _handlers = {
        events.JOB_ENQUEUED: _enqueued,
        events.JOB_STARTED: _started,
        events.JOB_TERMINAL: _terminal,
        events.JOB_RETRY: _retry,
        events.JOB_RECOVERED: _recovered,
        events.FETCH_ANSWERED: _fetch,
        events.WORKER_JOINED: lambda self, p: self.joined.inc(),
        events.WORKER_LOST: lambda self, p: self._of(self.lost, p["reason"]).inc(),
        events.WORKER_DIRECTED: lambda self, p: self._of(self.directives, p["state"]).inc(),
    }


class MetricsExporter:
    """Add-on: the observer, the collector and an HTTP server for `/metrics` on `bind`."""

    config_key = "metrics.bind"  # named when it cannot listen (nodes.addons.start_failed)

    def __init__(self, bind: str = DEFAULT_METRICS_BIND) -> None:
        self.host, self.port = parse_bind(bind)
        self.registry: CollectorRegistry | None = None
        self._server: Any = None
        self._thread: Any = None
        self._unsubscribe: Any = None
        self._client: InProcessClient | None = None

    @property
    def url(self) -> str:
        """Where Prometheus scrapes (with the real port once started)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def start(self, coordinator: AddonHost) -> None:
        registry = CollectorRegistry(auto_describe=True)
        self._unsubscribe = coordinator.events.subscribe(MetricsObserver(registry))
        self._client = InProcessClient(coordinator)
        registry.register(CoordinatorCollector(coordinator, self._client))
        ProcessCollector(registry=registry)
        self.registry = registry
        self._server, self._thread = start_http_server(self.port, self.host, registry=registry)
        self.port = int(self._server.server_port)
        log.info("metrics on %s", self.url)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._client is not None:
            self._client.close()
            self._client = None
