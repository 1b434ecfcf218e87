"""Coordinator processes sharing one PostgreSQL database (tests/pg.py's private cluster), for
the high-availability tests: start them on fixed ports, find which one leads, read the jobs
table directly (the truth the coordinators share)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, free_port
from tests.integration.real_cluster import spawn_coordinator

FAILOVER_TIMEOUT_S = 1.0


class Pair:
    """Coordinator processes on one database, each on a port of its own (kept across restarts)."""

    def __init__(self, spawn: Spawn, tmp_path: Path, url: str, names: tuple[str, ...] = ("a", "b"),
                 **options: Any) -> None:  # fmt: skip
        self.spawn, self.tmp_path, self.url, self.options = spawn, tmp_path, url, options
        self.addresses = {name: f"tcp://127.0.0.1:{free_port()}" for name in names}
        self.processes: dict[str, NodeProcess] = {}
        self.starts = 0
        listening = [self._spawn(name) for name in names]  # all at once: they race for the lease
        for wait in listening:
            wait()

    @property
    def connect(self) -> str:
        return ",".join(self.addresses.values())

    def start(self, name: str) -> NodeProcess:
        """Start coordinator `name` (again) and wait until it listens."""
        self._spawn(name)()
        return self.processes[name]

    def _spawn(self, name: str) -> Callable[[], str]:
        self.starts += 1
        process, listening = spawn_coordinator(
            self.spawn, self.tmp_path, f"{name}-{self.starts}", bind=self.addresses[name],
            store=self.url, failover_timeout=FAILOVER_TIMEOUT_S, lease_name=name, **self.options,
        )  # fmt: skip
        self.processes[name] = process
        return listening

    def client(self, name: str | None = None, timeout: float = 10.0) -> Client:
        """A client of one coordinator, or (no name) of all of them, following the leader."""
        where = [self.addresses[name]] if name else list(self.addresses.values())
        return Client(where if len(where) > 1 else where[0], timeout=timeout)

    def cluster_of(self, name: str) -> dict[str, Any] | None:
        """What coordinator `name` says of the cluster: its `stats` when it leads, else None."""
        with self.client(name, timeout=1.0) as client:
            try:
                return client.stats()["cluster"]
            except Exception:
                return None

    def leader(self, timeout: float = 20.0, other_than: str | None = None) -> tuple[str, int]:
        """Wait until one coordinator (not `other_than`) serves; its name and term."""

        def serving() -> tuple[str, int] | None:
            for name in self.addresses:
                if name == other_than or name not in self.processes:
                    continue
                view = self.cluster_of(name)
                if view is not None and view["role"] == "leading":
                    return name, view["term"]
            return None

        return wait_for(serving, timeout=timeout, what="a coordinator leading")

    def failover(self, kill: str, signal_number: int) -> float:
        """Signal the leader `kill`, wait until another serves; seconds it took."""
        process = self.processes[kill]
        sent = process.signal(signal_number)
        self.leader(other_than=kill)
        return time.time() - sent


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, autocommit=True) as connection:
        return connection.execute(sql, params).fetchall()
