"""A small cluster run by `corral run` from a config file: one coordinator (memory store,
0.5 s beats) and one worker of the demo's handlers, on a free loopback port. Shared by the CLI,
supervision and terminate tests."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, cli, free_port
from transport.errors import CorralError

START_TIMEOUT_S = 20.0
RUN_TIMEOUT_S = 45.0
POLL_S = 0.05  # each poll connects a Client: not every 10 ms


def write_config(
    tmp_path: Path,
    port: int,
    extra_nodes: str = "",
    grace: float = 10,
    heartbeat_timeout: float = 5,
) -> Path:
    text = f"""
    nodes:
      coordinator:
        kind: coordinator
        bind: tcp://127.0.0.1:{port}
        store: memory
        heartbeat_interval: 0.5
        heartbeat_timeout: {heartbeat_timeout}
      worker:
        kind: worker
        connect: tcp://127.0.0.1:{port}
        concurrency: 4
        shutdown_grace: {grace}
        handlers:
          square: "nodes.demo:square"
          sleep_ms: "nodes.demo:sleep_ms"
    """
    path = tmp_path / "cluster.yaml"
    path.write_text(textwrap.dedent(text) + textwrap.indent(textwrap.dedent(extra_nodes), "  "))
    return path


def live_workers(address: str) -> list[dict[str, Any]]:
    try:
        with Client(address, timeout=1.0) as client:
            workers = client.stats()["workers"]
    except CorralError:
        return []
    return [worker for worker in workers if worker["state"] != "terminated"]


def wait_for_worker(address: str) -> None:
    wait_for(lambda: live_workers(address), START_TIMEOUT_S, POLL_S, "the worker to register")


def started_run(
    tmp_path: Path, spawn: Spawn, name: str = "corral run", heartbeat_timeout: float = 5
) -> tuple[NodeProcess, str]:
    """`corral run` of `write_config`'s cluster on a free port, once its worker registered:
    the runner's process and the coordinator's address."""
    port = free_port()
    path = write_config(tmp_path, port, heartbeat_timeout=heartbeat_timeout)
    runner = spawn(name, *cli("run", str(path)))
    address = f"tcp://127.0.0.1:{port}"
    wait_for_worker(address)
    return runner, address
