"""`corral` as a user runs it: real processes over TCP loopback, real signals.

Every wait is on a condition with a deadline (a line in a process' output, a coordinator
answer); every process started here is killed by the fixture's finalizer.
"""

from __future__ import annotations

import json
import os
import re
import signal
from collections.abc import Callable
from pathlib import Path

import pytest

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, cli, corral, corral_at_once, free_port
from tests.integration.small_cluster import (
    POLL_S,
    RUN_TIMEOUT_S,
    START_TIMEOUT_S,
    live_workers,
    wait_for_worker,
    write_config,
)

# -- corral run FILE --------------------------------------------------------------------------


def test_run_starts_a_whole_cluster_whose_producer_verifies_every_result_and_exits_0(
    tmp_path: Path, spawn: Spawn
) -> None:
    port = free_port()
    path = write_config(
        tmp_path,
        port,
        f"""
        worker-2:
          kind: worker
          connect: tcp://127.0.0.1:{port}
          concurrency: 4
          handlers: {{square: "nodes.demo:square"}}
        producer:
          kind: producer
          connect: tcp://127.0.0.1:{port}
          type: square
          count: 1000
          batch_size: 300
          args: ["{{i}}"]
          expect: "nodes.demo:square"
        """,
    )

    runner = spawn("corral run", *cli("run", str(path)))
    code = runner.wait(RUN_TIMEOUT_S)

    output = runner.output
    assert code == 0, output
    assert "2 workers registered" in output
    assert re.search(r"producer +\| summary: 1000 square jobs: 1000 completed, 0 discarded", output)
    assert "producer    | results: 1000/1000 correct" in output
    assert "every producer finished: stopping the cluster" in output
    for pid in runner.child_pids():
        wait_for(lambda pid=pid: not _alive(pid), 10, POLL_S, f"node process {pid} to be gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


# -- client commands against a running cluster ------------------------------------------------


def test_client_commands_talk_to_a_running_cluster(
    tmp_path: Path, spawn: Spawn
) -> None:
    port = free_port()
    path = write_config(tmp_path, port)
    address = f"tcp://127.0.0.1:{port}"
    runner = spawn("corral run", *cli("run", str(path)))
    wait_for_worker(address)

    enqueued = corral("enqueue", "square", "7", "--wait", "--connect", address)
    assert enqueued.returncode == 0, enqueued.stderr
    job_id, result = enqueued.stdout.split()
    assert result == "49"

    status, table, got, missing = corral_at_once(  # reads only: nothing changes meanwhile
        ("status", "--json", "--config", str(path)),
        ("status", "--connect", address),
        ("get", job_id, "--connect", address),
        ("get", "no-such-job", "--connect", address),
    )
    assert status.returncode == 0, status.stderr
    [worker] = json.loads(status.stdout)["workers"]
    assert worker["state"] == "running"
    assert worker["functions"] == ["sleep_ms", "square"]
    assert json.loads(status.stdout)["queues"]["default"]["completed"] == 1

    assert worker["worker_id"] in table.stdout
    assert re.search(r"default +0 +0 +0 +0 +1 +0 +0", table.stdout), table.stdout

    assert got.returncode == 0, got.stderr
    assert json.loads(got.stdout)["state"] == "completed"
    assert json.loads(got.stdout)["result"] == 49

    assert missing.returncode == 1
    assert missing.stderr.startswith("error: unknown_job: ")

    scheduled = corral("enqueue", "square", "3", "--in", "3600", "--connect", address)
    later_id = scheduled.stdout.strip()
    cancelled = corral("cancel", later_id, "--connect", address)
    assert (cancelled.returncode, cancelled.stdout.strip()) == (0, "cancelled")

    quiet = corral("quiet", worker["worker_id"], "--connect", address)
    assert quiet.returncode == 0, quiet.stderr
    wait_for(
        lambda: [w for w in live_workers(address) if w["state"] == "quiet"],
        START_TIMEOUT_S,
        POLL_S,
        "the worker to go quiet on its next beat",
    )

    runner.process.send_signal(signal.SIGTERM)
    assert runner.wait(RUN_TIMEOUT_S) == 0, runner.output
    assert "SIGTERM: stopping the cluster" in runner.output


def test_a_client_command_without_a_coordinator_says_so_and_exits_2() -> None:
    result = corral("status", "--connect", f"tcp://127.0.0.1:{free_port()}", "--timeout", "0.3")

    assert result.returncode == 2
    assert "no answer from the coordinator" in result.stderr


def test_keys_generate_writes_three_key_pairs(tmp_path: Path) -> None:
    result = corral("keys", "generate", str(tmp_path / "keys"))

    assert result.returncode == 0, result.stderr
    for name in ("coordinator", "worker", "client"):
        assert (tmp_path / "keys" / f"{name}.key").exists()
        assert (tmp_path / "keys" / f"{name}.key_secret").stat().st_mode & 0o077 == 0
    assert corral("keys", "generate", str(tmp_path / "keys")).returncode == 2  # no overwrite


# -- one node per process: signals ------------------------------------------------------------


@pytest.fixture
def single_nodes(tmp_path: Path, spawn: Spawn) -> tuple[str, NodeProcess]:
    """A coordinator and a worker, each `corral run FILE --node NAME` in its own process."""
    port = free_port()
    path = write_config(tmp_path, port)
    address = f"tcp://127.0.0.1:{port}"
    spawn("coordinator", *cli("run", str(path), "--node", "coordinator"))
    worker = spawn("worker", *cli("run", str(path), "--node", "worker"))
    wait_for_worker(address)
    return address, worker


def test_sigterm_lets_a_running_job_finish_then_the_worker_exits_0(
    single_nodes: tuple[str, NodeProcess],
) -> None:
    address, worker = single_nodes
    with Client(address) as client:
        job_id = client.enqueue("sleep_ms", [1500])
        wait_for(lambda: client.get(job_id).state == "active", START_TIMEOUT_S, POLL_S, "active")

        worker.process.send_signal(signal.SIGTERM)
        code = worker.wait(RUN_TIMEOUT_S)
        job = client.get(job_id, wait=5)

    assert code == 0, worker.output
    assert (job.state, job.result, job.attempt, job.errors) == ("completed", 1500, 1, [])
    assert live_workers(address) == []  # deregistered, not left to time out


def test_sigtstp_quiets_a_worker_and_sigcont_resumes_it(
    single_nodes: tuple[str, NodeProcess],
) -> None:
    address, worker = single_nodes

    def worker_state(state: str) -> Callable[[], bool]:
        return lambda: [w for w in live_workers(address) if w["state"] == state] != []

    worker.process.send_signal(signal.SIGTSTP)
    wait_for(worker_state("quiet"), START_TIMEOUT_S, POLL_S, "the worker to report quiet")
    worker.process.send_signal(signal.SIGCONT)
    wait_for(worker_state("running"), START_TIMEOUT_S, POLL_S, "the worker to run again")
    with Client(address) as client:
        assert client.enqueue("square", [4]).result(timeout=10) == 16
