"""The metrics observer counts what the coordinator's events say happened.

A simulated cluster (real actors, in-process network, ManualClock) emits the events; the
observer is subscribed to its hub exactly as the exporter subscribes to a real coordinator's.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, cast

import pytest
from prometheus_client import CollectorRegistry

from actors import events
from actors.clock import ManualClock
from actors.coordinator_settings import CoordinatorSettings
from actors.jobs import Job
from actors.worker import current_job
from nodes.client import JobFailed
from nodes.cluster import Cluster
from nodes.observe.gauges import CoordinatorCollector
from nodes.observe.metrics import MetricsObserver
from nodes.observe.traffic import Traffic
from transport.jobspec import JobSpec

FAST = CoordinatorSettings(heartbeat_interval=1.0, heartbeat_timeout=5.0, reaper_interval=0.5)
NO_WAIT_RETRY = {"initial_interval": 0.1, "jitter": False}


def flaky(x: int) -> int:
    """Fails its first attempt, then squares."""
    job = current_job()
    assert job is not None
    if job.attempt == 1:
        raise RuntimeError("first attempt fails")
    return x * x


def boom() -> None:
    raise ValueError("always")


def hold(seconds: float) -> float:
    job = current_job()
    assert job is not None
    job.sleep(seconds)
    return seconds


@pytest.fixture
def observed() -> Iterator[tuple[Cluster, CollectorRegistry]]:
    registry = CollectorRegistry()
    cluster = Cluster(
        1,
        clock=ManualClock(),
        seed=3,
        settings=FAST,
        handlers={"square": lambda x: x * x, "flaky": flaky, "boom": boom, "hold": hold},
    )
    cluster.events.subscribe(MetricsObserver(registry))
    cluster.start()
    yield cluster, registry
    cluster.stop()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_each_job_outcome_moves_its_own_counter(
    observed: tuple[Cluster, CollectorRegistry],
) -> None:
    cluster, registry = observed
    client = cluster.client()

    for x in range(3):
        assert client.enqueue("square", [x]).result(timeout=60) == x * x
    assert client.enqueue("flaky", [4], retry=NO_WAIT_RETRY).result(timeout=60) == 16
    doomed = client.enqueue("boom", max_attempts=2, retry=NO_WAIT_RETRY)
    with pytest.raises(JobFailed):
        doomed.result(timeout=60)
    later = client.enqueue("square", [9], scheduled_at=cluster.clock.now() + 3600)
    assert client.cancel(later) == "cancelled"

    q = {"queue": "default"}
    assert value(registry, "corral_jobs_enqueued_total", **q) == 6
    assert value(registry, "corral_jobs_started_total", **q) == 3 + 2 + 2
    assert value(registry, "corral_jobs_completed_total", **q) == 4
    assert value(registry, "corral_jobs_retried_total", **q) == 2  # flaky once, boom once
    assert value(registry, "corral_job_failures_total", reason="error", **q) == 3
    assert value(registry, "corral_jobs_discarded_total", **q) == 1
    assert value(registry, "corral_jobs_cancelled_total", **q) == 1
    assert value(registry, "corral_job_run_seconds_count", outcome="completed", **q) == 4
    assert value(registry, "corral_job_run_seconds_count", outcome="failed", **q) == 3
    assert value(registry, "corral_job_wait_seconds_count", **q) == 7
    assert value(registry, "corral_fetch_wait_seconds_count", outcome="jobs") >= 1
    assert value(registry, "corral_workers_joined_total") == 1


def test_a_dead_worker_counts_as_a_death_and_its_running_job_as_a_recovery(
    observed: tuple[Cluster, CollectorRegistry],
) -> None:
    cluster, registry = observed
    client = cluster.client()
    job = client.enqueue("hold", [600])
    cluster.run_until(lambda: client.get(job).state == "active", within=60)

    cluster.kill_worker("worker-1")
    cluster.advance(FAST.heartbeat_timeout + 2 * FAST.reaper_interval)
    cluster.run_until(lambda: client.get(job).state == "available", within=60)

    assert value(registry, "corral_workers_lost_total", reason="timeout") == 1
    assert (
        value(registry, "corral_jobs_recovered_total", queue="default", reason="worker_lost") == 1
    )
    assert value(registry, "corral_job_failures_total", queue="default", reason="worker_lost") == 1
    assert value(registry, "corral_job_failures_total", queue="default", reason="error") == 0


def test_directives_are_counted_by_state(observed: tuple[Cluster, CollectorRegistry]) -> None:
    cluster, registry = observed
    client = cluster.client()
    [worker] = [w for w in client.stats()["workers"] if w["state"] == "running"]

    client.direct(worker["worker_id"], "quiet")
    client.direct(worker["worker_id"], "running")

    assert value(registry, "corral_worker_directives_total", state="quiet") == 1
    assert value(registry, "corral_worker_directives_total", state="running") == 1


def _job(**fields: Any) -> Job:
    job = Job.from_spec(JobSpec(type="t", queue="q"), "job-1", now=100.0, seq=1)
    for name, setting in fields.items():
        setattr(job, name, setting)
    return job


def test_queue_wait_counts_from_when_a_job_became_due_not_from_its_creation() -> None:
    registry = CollectorRegistry()
    observer = MetricsObserver(registry)

    observer(events.JOB_STARTED, {"job": _job(scheduled_at=160.0, started_at=160.5)})

    assert value(registry, "corral_job_wait_seconds_sum", queue="q") == pytest.approx(0.5)


def test_an_observer_that_raises_never_breaks_the_job_path(
    observed: tuple[Cluster, CollectorRegistry],
) -> None:
    cluster, registry = observed

    def broken(name: str, payload: dict[str, Any]) -> None:
        raise RuntimeError("observer bug")

    cluster.events.subscribe(broken)
    client = cluster.client()

    assert client.enqueue("square", [5]).result(timeout=60) == 25
    assert value(registry, "corral_jobs_completed_total", queue="default") == 1


# -- scrape-time gauges -----------------------------------------------------------------------


class _Host:
    """What the collector reads of a coordinator besides its stats: one without standbys."""

    def __init__(self) -> None:
        self.traffic = Traffic()
        self.dispatcher = None

    def cluster(self) -> None:
        return None


class _StatsClient:
    def __init__(self, reply: dict[str, Any]) -> None:
        self.reply = reply

    def stats(self, timeout: float | None = None) -> dict[str, Any]:
        return self.reply


def scraped(stats: dict[str, Any]) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(CoordinatorCollector(cast(Any, _Host()), cast(Any, _StatsClient(stats))))
    return registry


STATS = {
    "queues": {"default": {"available": 4}, "images": {"available": 1}},
    "workers": [],
    "unroutable": {"images": 1},
    "limited": {"default": 3},
    "paused": [],
}


def test_the_gauges_count_per_queue_jobs_no_worker_may_take_and_jobs_a_limit_holds_back() -> None:
    registry = scraped(STATS)

    gauge = registry.get_sample_value
    assert gauge("corral_jobs_limited", {"queue": "default"}) == 3
    assert gauge("corral_jobs_limited", {"queue": "images"}) == 0  # present, at zero
    assert gauge("corral_jobs_unroutable", {"queue": "default"}) == 0
    assert gauge("corral_jobs_unroutable", {"queue": "images"}) == 1


def test_stats_without_limited_from_an_older_coordinator_scrape_as_none_held_back() -> None:
    registry = scraped({key: held for key, held in STATS.items() if key != "limited"})

    assert registry.get_sample_value("corral_stats_up") == 1
    assert registry.get_sample_value("corral_jobs_limited", {"queue": "default"}) == 0
    assert registry.get_sample_value("corral_jobs_unroutable", {"queue": "images"}) == 1
