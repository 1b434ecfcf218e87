"""Series: throughput and latency per second over the last minutes, for the pictures.

An observer on the coordinator's EventHub (`observe`), counting per second the jobs completed,
the attempts that failed, and the enqueue-to-completion latency of completed jobs in a log-scale
histogram. The storage is a ring of `window` one-second slots allocated once: an event costs a
few list stores and one bisect, never an allocation, and reads the job's own timestamps rather
than the clock (only a recovery, which is rare and has no timestamp yet, asks the clock).

The coordinator's `stats {series: true}` reply carries `snapshot(now)` (docs/PROTOCOL.md,
"Extensions"); the dashboard and `corral status --watch` draw it. Events come from the
supervisor's handlers and the snapshot is taken in one, so they never interleave.
"""

from __future__ import annotations

import math
from bisect import bisect_left
from collections.abc import Callable
from itertools import pairwise
from typing import Any

from actors import events, states
from actors.clock import Clock

INTERVAL_S = 1.0
WINDOW_S = 600  # ten minutes of one-second slots
# Latency bins: upper bounds in ms, a factor sqrt(2) apart from 0.5 ms to ~12 days, then one
# bin for anything longer. A percentile is reported as its bin's geometric middle (within 19%).
BOUNDS_MS: tuple[float, ...] = tuple(2 ** (k / 2) for k in range(-2, 61))
BINS = len(BOUNDS_MS) + 1
MIDDLES_MS: tuple[float, ...] = (
    BOUNDS_MS[0] / 2,
    *(math.sqrt(low * high) for low, high in pairwise(BOUNDS_MS)),
    BOUNDS_MS[-1],
)
PERCENTILES = (("latency_p50_ms", 0.50), ("latency_p95_ms", 0.95))
RECOVERY_ERRORS = frozenset({"worker_lost", "timeout"})  # counted by JOB_RECOVERED already


class Series:
    """Per-second counters in a ring of `window` slots; `observe` is the EventHub observer."""

    def __init__(self, clock: Clock, window: int = WINDOW_S) -> None:
        self.clock = clock
        self.window = window
        self._second = [-1] * window  # the second each slot holds now
        self._completed = [0] * window
        self._failed = [0] * window
        self._latency = [0] * (window * BINS)  # slot * BINS + bin
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            events.JOB_TERMINAL: self._terminal,
            events.JOB_RETRY: self._retry,
            events.JOB_RECOVERED: self._recovered,
        }

    def observe(self, name: str, payload: dict[str, Any]) -> None:
        handler = self._handlers.get(name)
        if handler is not None:
            handler(payload)

    # -- events -------------------------------------------------------------------------------

    def _slot(self, at: float) -> int:
        """The slot of second `at`, cleared if it held an older second; -1 when `at` is older
        than what the slot holds (a late event from a second already overwritten)."""
        second = int(at)
        slot = second % self.window
        held = self._second[slot]
        if held != second:
            if held > second:
                return -1
            self._second[slot] = second
            self._completed[slot] = self._failed[slot] = 0
            start = slot * BINS
            self._latency[start : start + BINS] = _ZEROS
        return slot

    def _terminal(self, payload: dict[str, Any]) -> None:
        job = payload["job"]
        state = job.state
        if state == states.COMPLETED:
            at = job.completed_at
            slot = self._slot(at)
            if slot >= 0:
                self._completed[slot] += 1
                latency_ms = (at - job.created_at) * 1000.0
                self._latency[slot * BINS + bisect_left(BOUNDS_MS, latency_ms)] += 1
        elif state == states.DISCARDED and (
            not job.errors or job.errors[-1].get("type") not in RECOVERY_ERRORS
        ):
            self._fail(job.completed_at)

    def _retry(self, payload: dict[str, Any]) -> None:
        errors = payload["job"].errors
        self._fail(errors[-1]["at"] if errors else self.clock.now())

    def _recovered(self, payload: dict[str, Any]) -> None:
        self._fail(self.clock.now())

    def _fail(self, at: float) -> None:
        slot = self._slot(at)
        if slot >= 0:
            self._failed[slot] += 1

    # -- reading ------------------------------------------------------------------------------

    def snapshot(self, now: float) -> dict[str, Any]:
        """The last `window` whole seconds before `now`, oldest first: per second the jobs
        completed, the attempts failed, and the latency percentiles in ms (None: no job)."""
        end = int(now)  # the second in progress is not over: left out
        seconds = range(end - self.window, end)
        completed, failed = [], []
        latency: dict[str, list[float | None]] = {key: [] for key, _ in PERCENTILES}
        for second in seconds:
            slot = second % self.window
            if self._second[slot] != second:
                completed.append(0)
                failed.append(0)
                for values in latency.values():
                    values.append(None)
                continue
            completed.append(self._completed[slot])
            failed.append(self._failed[slot])
            for key, rank in PERCENTILES:
                latency[key].append(self._percentile(slot, rank))
        return {
            "interval": INTERVAL_S,
            "end": float(end),
            "completed": completed,
            "failed": failed,
            **latency,
        }

    def _percentile(self, slot: int, rank: float) -> float | None:
        count = self._completed[slot]
        if not count:
            return None
        wanted = max(1, math.ceil(rank * count))
        seen = 0
        start = slot * BINS
        for index, n in enumerate(self._latency[start : start + BINS]):
            seen += n
            if seen >= wanted:
                return round(MIDDLES_MS[index], 3)
        return round(MIDDLES_MS[-1], 3)


_ZEROS = [0] * BINS
