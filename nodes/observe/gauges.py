"""Scrape-time gauges of a coordinator (`CoordinatorCollector`): jobs per queue and state,
unroutable jobs, jobs held back by a limit and paused queues, workers per state and their
slots (one in-process `stats` request), leadership, frames and bytes in and out
(`nodes.observe.traffic`), and requests refused at the edge. Registered by
`nodes.observe.metrics.MetricsExporter`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from actors import states
from nodes.inprocess import InProcessClient
from transport.errors import CorralError

if TYPE_CHECKING:
    from nodes.addons import AddonHost

log = logging.getLogger(__name__)

SCRAPE_STATS_TIMEOUT_S = 2.0
WORKER_STATES = (states.RUNNING, states.QUIET, states.TERMINATE, states.TERMINATED)


class CoordinatorCollector:
    """Scrape-time gauges and wire counters, read from a running coordinator."""

    def __init__(self, coordinator: AddonHost, client: InProcessClient) -> None:
        self.coordinator = coordinator
        self.client = client

    def describe(self) -> list[Metric]:
        return []  # nothing to check at registration; and collect() would ask the supervisor

    def collect(self) -> Iterator[Metric]:
        yield from self._wire()
        yield from self._leadership()
        try:
            stats = self.client.stats(timeout=SCRAPE_STATS_TIMEOUT_S)
        except CorralError as exc:
            log.warning("metrics: no stats from the coordinator: %s", exc)
            yield GaugeMetricFamily("corral_stats_up", "1 when the last stats read worked", 0)
            return
        yield GaugeMetricFamily("corral_stats_up", "1 when the last stats read worked", 1)
        yield from self._jobs(stats)
        yield from self._workers(stats["workers"])

    def _wire(self) -> Iterator[Metric]:
        traffic = self.coordinator.traffic.snapshot()
        for name, doc, value in (
            ("corral_messages_received", "Frames received", traffic["frames_in"]),
            ("corral_messages_sent", "Frames sent", traffic["frames_out"]),
            ("corral_received_bytes", "Bytes of frames received", traffic["bytes_in"]),
            ("corral_sent_bytes", "Bytes of frames sent", traffic["bytes_out"]),
        ):
            yield CounterMetricFamily(name, doc, value)
        dispatcher = self.coordinator.dispatcher
        refused = dispatcher.bad_requests if dispatcher is not None else 0
        yield CounterMetricFamily(
            "corral_bad_requests", "Requests refused at the edge (PROTOCOL.md section 2)", refused
        )

    def _leadership(self) -> Iterator[Metric]:
        """With a shared database: whether this coordinator leads, and the lease's term."""
        cluster = self.coordinator.cluster()
        if cluster is None:
            return
        leader = cluster["leader"] or {}
        leading = GaugeMetricFamily(
            "corral_leader", "1 while this coordinator leads, 0 while it stands by", None,
            ["coordinator", "leader"],
        )
        leading.add_metric(
            [cluster["name"], str(leader.get("name") or "")], int(cluster["role"] == "leading")
        )
        yield leading
        yield GaugeMetricFamily("corral_leadership_term", "The lease's term", cluster["term"])
        yield GaugeMetricFamily(
            "corral_standbys", "Standby coordinators heard from lately", len(cluster["standbys"])
        )

    def _jobs(self, stats: dict[str, Any]) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "corral_jobs", "Jobs held, by queue and state", None, ["queue", "state"]
        )
        for queue, counts in sorted(stats["queues"].items()):
            for state in states.JOB_STATES:
                jobs.add_metric([queue, state], counts.get(state, 0))
        yield jobs
        unroutable = GaugeMetricFamily(
            "corral_jobs_unroutable", "Available jobs no connected worker may take", None, ["queue"]
        )
        limited = GaugeMetricFamily(
            "corral_jobs_limited",
            "Available jobs held back by a concurrency or rate limit",
            None,
            ["queue"],
        )
        held_back = stats.get("limited", {})  # an older coordinator's stats: no limits
        paused = GaugeMetricFamily(
            "corral_queue_paused", "1 while the queue is paused", None, ["queue"]
        )
        for queue in sorted(stats["queues"]):
            unroutable.add_metric([queue], stats["unroutable"].get(queue, 0))
            limited.add_metric([queue], held_back.get(queue, 0))
            paused.add_metric([queue], int(queue in stats["paused"]))
        yield unroutable
        yield limited
        yield paused

    def _workers(self, workers: list[dict[str, Any]]) -> Iterator[Metric]:
        by_state = dict.fromkeys(WORKER_STATES, 0)
        busy = slots = 0
        for worker in workers:
            by_state[worker["state"]] = by_state.get(worker["state"], 0) + 1
            if worker["state"] != states.TERMINATED:
                busy += worker["active"]
                slots += worker["concurrency"]
        gauge = GaugeMetricFamily("corral_workers", "Worker sessions by state", None, ["state"])
        for state, count in by_state.items():
            gauge.add_metric([state], count)
        yield gauge
        yield GaugeMetricFamily("corral_worker_active_jobs", "Jobs running on live workers", busy)
        yield GaugeMetricFamily("corral_worker_slots", "Concurrency of live workers", slots)
