"""Session: who the worker is to the coordinator across connections.

Each connection gets a new worker_id at hello; a register after a reconnect names the last
session whose register succeeded (`previous_worker_id`) and the jobs still held, so they are
resumed, not run twice (PROTOCOL.md section 4). Consecutive failed connections back off, once
a whole round of the coordinator endpoints has failed.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from actors.worker_settings import WorkerSettings

log = logging.getLogger(__name__)


class Session:
    """The worker_id of this connection, its predecessor, and the backoff after failures."""

    def __init__(self, settings: WorkerSettings, rng: random.Random) -> None:
        self.settings = settings
        self.rng = rng
        self.worker_id: str | None = None
        self.previous_worker_id: str | None = None
        self.registered_as: str | None = None  # the last worker_id whose register succeeded
        self.sessions = 0  # how many times a worker_id was issued to us
        self.failures = 0  # consecutive failed connection attempts, for backoff
        self.standby_seen = False  # a standby answered `not_leader` in this round of endpoints
        self._silence_told = False  # this connection's unanswered hello was reported

    def welcomed(self, worker_id: str) -> None:
        # Resume from the last session that completed its register: a session that only got
        # an id (the coordinator went away before our register) never held any job.
        self.previous_worker_id = self.registered_as
        self.worker_id = worker_id
        self.sessions += 1
        self._silence_told = False

    def unanswered(self, seconds: float, address: str) -> None:
        """The hello has waited `seconds` (a beat or more) for an answer: say so once per
        connection, long before it is given up after heartbeat_timeout (a wrong address or a
        coordinator that is not running would otherwise be silent for 30 s)."""
        if self._silence_told:
            return
        self._silence_told = True
        log.warning(
            "no answer from the coordinator at %s after %.0f s; still trying",
            address or "its address",
            seconds,
            extra={"event": "unanswered", "silent_s": seconds},
        )

    def register_body(self, held: list[str]) -> dict[str, Any]:
        settings = self.settings
        body = {
            "worker_id": self.worker_id,
            "queues": list(settings.queues),
            "concurrency": settings.concurrency,
            "functions": list(settings.functions),
            "labels": settings.labels,
            "hostname": settings.hostname,
            "pid": settings.pid,
        }
        if settings.name:
            body["name"] = settings.name  # the `name` extension (PROTOCOL.md, "Extensions")
        if self.previous_worker_id:
            body["previous_worker_id"] = self.previous_worker_id
            body["active_job_ids"] = held
        return body

    @property
    def reconnected(self) -> bool:
        return self.previous_worker_id is not None

    def registered(self, resumed: frozenset[str]) -> None:
        self.failures = 0
        self.registered_as = self.worker_id
        log.info(
            "registered as %s (previous %s, resumed %d jobs)",
            self.worker_id,
            self.previous_worker_id or "none",
            len(resumed),
            extra={
                "event": "registered",
                "worker_id": self.worker_id,
                "previous_worker_id": self.previous_worker_id,
                "resumed_job_ids": sorted(resumed),
            },
        )

    def lost(self, reason: str, failed: str, address: str, endpoints: int = 1) -> float:
        """The connection to `failed` failed; the next goes to `address`, one of `endpoints`.
        The delay before it: none after a session that had registered, nor while a round of
        the endpoints is still untried; after each whole round failed, 1 s doubling to 32 s,
        jittered (with one endpoint, every failure is a round). A round in which a standby
        answered (`standby_seen`: a takeover is under way, a leader comes within seconds)
        waits the first delay again instead of doubling it."""
        delay = 0.0
        if self.failures and self.failures % endpoints == 0:
            if self.standby_seen:
                self.failures = endpoints  # the next round starts over at the first delay
            base = min(
                self.settings.reconnect_initial * 2 ** (self.failures // endpoints - 1),
                self.settings.reconnect_max,
            )
            delay = base * self.rng.uniform(0.5, 1.0)
            self.standby_seen = False
        self.failures += 1
        self._silence_told = False
        address = address or "its address"
        when = f"in {delay:.1f} s" if delay else "now"
        moved = bool(failed) and failed != address  # several endpoints: say which one failed
        if self.worker_id:
            lost = f"coordinator at {failed} lost" if moved else "coordinator lost"
            text, args = "worker %s: %s (%s); reconnecting to %s %s", (
                self.worker_id,
                lost,
                reason,
                address,
                when,
            )
        elif moved:
            text, args = "cannot reach the coordinator at %s (%s); trying %s %s", (
                failed,
                reason,
                address,
                when,
            )
        else:
            text, args = "cannot reach the coordinator at %s (%s); retrying %s", (
                address,
                reason,
                when,
            )
        log.warning(
            text,
            *args,
            extra={
                "event": "reconnect",
                "worker_id": self.worker_id,
                "reason": reason,
                "retry_in_s": delay,
            },
        )
        self.worker_id = None  # no beat may carry an old id on the next connection
        return delay
