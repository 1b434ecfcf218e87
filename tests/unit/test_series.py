"""actors/series.py: the per-second throughput and latency ring, driven by events and a
ManualClock (no coordinator)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from actors import events, states
from actors.clock import ManualClock
from actors.series import BINS, Series

T0 = 1_700_000_000.0


def job(state: str, created: float, ended: float | None, error: str | None = None) -> Any:
    errors = [{"type": error, "at": ended}] if error else []
    return SimpleNamespace(state=state, created_at=created, completed_at=ended, errors=errors)


def completed(series: Series, created: float, ended: float) -> None:
    series.observe(events.JOB_TERMINAL, {"job": job(states.COMPLETED, created, ended)})


def test_counts_land_in_their_second_and_the_current_second_is_left_out():
    series = Series(ManualClock(T0), window=10)
    completed(series, T0, T0 + 0.2)
    completed(series, T0, T0 + 0.9)
    completed(series, T0, T0 + 2.5)
    series.observe(events.JOB_RETRY, {"job": job(states.RETRYABLE, T0, T0 + 1.1, "E")})
    shot = series.snapshot(T0 + 2.7)
    assert shot["interval"] == 1.0 and shot["end"] == T0 + 2
    assert len(shot["completed"]) == 10
    assert shot["completed"][-2:] == [2, 0]  # seconds T0 and T0+1; T0+2 is still running
    assert shot["failed"][-2:] == [0, 1]
    assert series.snapshot(T0 + 3.0)["completed"][-3:] == [2, 0, 1]


def test_a_retry_without_an_error_time_and_a_recovery_count_at_the_clock():
    clock = ManualClock(T0 + 4.5)
    series = Series(clock, window=10)
    series.observe(events.JOB_RECOVERED, {"job": job(states.ACTIVE, T0, None), "reason": "x"})
    series.observe(events.JOB_RETRY, {"job": SimpleNamespace(errors=[])})
    assert series.snapshot(T0 + 5)["failed"][-1] == 2


def test_a_discard_counts_as_failed_unless_its_recovery_was_counted_already():
    series = Series(ManualClock(T0), window=10)
    for error in ("ValueError", "worker_lost", "timeout"):
        dead = job(states.DISCARDED, T0, T0 + 1.5, error)
        series.observe(events.JOB_TERMINAL, {"job": dead})
    cancelled = job(states.CANCELLED, T0, T0 + 1.5)
    series.observe(events.JOB_TERMINAL, {"job": cancelled})
    shot = series.snapshot(T0 + 2)
    assert (shot["failed"][-1], shot["completed"][-1]) == (1, 0)


def test_latency_percentiles_are_within_the_bin_resolution():
    series = Series(ManualClock(T0), window=10)
    for ms in range(1, 101):  # 1..100 ms, all ending in the same second
        completed(series, T0 + 1.5 - ms / 1000, T0 + 1.5)
    shot = series.snapshot(T0 + 2)
    p50, p95 = shot["latency_p50_ms"][-1], shot["latency_p95_ms"][-1]
    assert 50 / 1.2 <= p50 <= 50 * 1.2
    assert 95 / 1.2 <= p95 <= 95 * 1.2
    assert shot["latency_p50_ms"][-2] is None  # no job completed in that second


def test_the_ring_forgets_what_is_older_than_its_window_and_ignores_late_events():
    series = Series(ManualClock(T0), window=5)
    completed(series, T0, T0 + 0.5)
    completed(series, T0, T0 + 5.5)  # same slot, five seconds later: the old count is cleared
    completed(series, T0, T0 + 0.7)  # a late event for the overwritten second is dropped
    shot = series.snapshot(T0 + 6)
    assert shot["completed"] == [0, 0, 0, 0, 1]
    assert sum(series._latency[(int(T0) % 5) * BINS : (int(T0) % 5 + 1) * BINS]) == 1
    assert series.snapshot(T0 + 100)["completed"] == [0] * 5  # nothing in the last 5 s


def test_other_events_are_ignored():
    series = Series(ManualClock(T0), window=5)
    series.observe(events.JOB_ENQUEUED, {"job": job(states.AVAILABLE, T0, None)})
    series.observe(events.WORKER_JOINED, {"worker_id": "w", "hostname": "h", "pid": 1})
    assert series.snapshot(T0 + 1) == Series(ManualClock(T0), window=5).snapshot(T0 + 1)
