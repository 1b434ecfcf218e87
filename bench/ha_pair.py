"""Two coordinator processes sharing one PostgreSQL database, for the failover benchmarks.

Each coordinator keeps its own loopback endpoint across restarts (a worker or client lists
both), so one SIGKILLed and started again stands by where it was. `leader()` asks each one
directly for `stats`: only a leader answers it (a standby answers `not_leader`).
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import common

LEADER_TIMEOUT_S = 60.0  # a takeover over a million queued jobs loads them all first
ASK_TIMEOUT_S = 1.0


class Pair:
    """Coordinators `names` on the database `url`, each on an endpoint of its own."""

    def __init__(
        self, url: str, failover_timeout: float, names: tuple[str, ...] = ("a", "b")
    ) -> None:
        self.url = url
        self.failover_timeout = failover_timeout
        self.endpoints = {name: common.free_endpoint() for name in names}
        self.nodes: dict[str, common.NodeProcess] = {}

    @property
    def addresses(self) -> list[str]:
        return list(self.endpoints.values())

    def start(self, name: str) -> common.NodeProcess:
        """Start coordinator `name` (again): it leads if nobody holds the lease, else stands by."""
        node = common.start_coordinator_process(
            self.url,
            bind=self.endpoints[name],
            failover_timeout=self.failover_timeout,
            name=name,
        )
        self.nodes[name] = node
        return node

    def kill(self, name: str) -> float:
        """SIGKILL coordinator `name` and reap it; the wall-clock time the signal was sent."""
        node = self.nodes.pop(name)
        sent = time.time()
        node.process.kill()
        node.process.wait(common.KILL_GRACE_S)
        node.stop()  # closes its pipes
        return sent

    def cluster_of(self, name: str) -> dict[str, Any] | None:
        """Coordinator `name`'s `stats` (with its `cluster` view) when it leads, else None."""
        from nodes import Client

        with contextlib.closing(Client(self.endpoints[name], timeout=ASK_TIMEOUT_S)) as client:
            try:
                return client.stats()
            except Exception:  # not_leader, or no answer: not serving
                return None

    def leader(self, timeout: float = LEADER_TIMEOUT_S, other_than: str | None = None) -> str:
        """Wait (bounded) until a coordinator other than `other_than` serves as leader."""
        found: list[str] = []

        def serving() -> bool:
            for name in self.nodes:
                stats = None if name == other_than else self.cluster_of(name)
                if stats is not None and stats.get("cluster", {}).get("role") == "leading":
                    found.append(name)
                    return True
            return False

        common.wait_until(serving, timeout, "a coordinator leading")
        return found[0]

    def wait_standby(self, leader: str, timeout: float) -> None:
        """Wait (bounded) until the leader lists a standby ready to take over (its copy of the
        jobs loaded), as a standby that has run for a while is."""

        def listed() -> bool:
            stats = self.cluster_of(leader)
            standbys = stats["cluster"].get("standbys") if stats else None
            return bool(standbys) and all(standby["ready"] for standby in standbys)

        common.wait_until(listed, timeout, f"{leader} to list a ready standby")

    def stop(self) -> None:
        common.stop_all(list(self.nodes.values()))
        self.nodes.clear()
