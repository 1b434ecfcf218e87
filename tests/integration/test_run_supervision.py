"""`corral run FILE` as a supervisor: real runner processes, real node children, real SIGKILLs.

- a second run of a file already running fails fast and never joins the first cluster;
- a handler (or `expect`) that does not import is a config error before anything starts;
- a worker child that dies is started again after the backoff; a coordinator child that dies
  ends the run with exit 1 and its reason.
"""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import pytest

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, cli, corral, free_port
from tests.integration.small_cluster import (
    POLL_S,
    live_workers,
    started_run,
    wait_for_worker,
    write_config,
)

FAIL_FAST_S = 15.0  # a second run must give up well before COORDINATOR_READY_TIMEOUT_S + start
RESTARTED_WITHIN_S = 15.0  # the first backoff is 1 s; a worker process starts in ~1-3 s
DEAD_WORKER_TIMEOUT_S = 2.0


def started_pid(runner: NodeProcess, kind: str, name: str) -> int:
    found = re.findall(rf"started {kind} '{name}' \(pid (\d+)\)", runner.output)
    return int(found[-1])


def all_worker_ids(address: str) -> set[str]:
    with Client(address, timeout=2.0) as client:
        return {worker["worker_id"] for worker in client.stats()["workers"]}


def test_a_second_run_of_a_running_file_fails_fast_and_never_joins_the_first_cluster(
    tmp_path: Path, spawn: Spawn
) -> None:
    port = free_port()
    path = write_config(tmp_path, port)
    address = f"tcp://127.0.0.1:{port}"
    first = spawn("first corral run", *cli("run", str(path)))
    wait_for_worker(address)
    before = all_worker_ids(address)

    second = spawn("second corral run", *cli("run", str(path)))
    code = second.wait(FAIL_FAST_S)

    assert code == 1, second.output
    reason = (
        f"coordinator 'coordinator': cannot bind tcp://127.0.0.1:{port}: "
        "address already in use (another corral run?)"
    )
    assert f"error: {reason}" in second.output, second.output
    assert "started worker" not in second.output
    assert all_worker_ids(address) == before  # no worker of the second run ever registered
    assert first.alive


@pytest.mark.parametrize(
    ("reference", "problem"),
    [
        ("myapp.tasks:square", "ModuleNotFoundError: No module named 'myapp'"),
        ("nodes.demo:sqaure", "AttributeError: module 'nodes.demo' has no attribute 'sqaure'"),
    ],
)
def test_a_handler_that_does_not_import_stops_the_run_before_any_node_starts(
    tmp_path: Path, reference: str, problem: str
) -> None:
    path = write_config(tmp_path, free_port())
    path.write_text(path.read_text().replace('"nodes.demo:square"', f'"{reference}"'))

    done = corral("run", str(path))

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""  # nothing started
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: {path}: node 'worker': key 'handlers.square': cannot import")
    assert problem in line


def test_a_producer_expect_that_does_not_import_stops_the_run_before_any_node_starts(
    tmp_path: Path,
) -> None:
    port = free_port()
    producer = f"""
    producer:
      kind: producer
      connect: tcp://127.0.0.1:{port}
      type: square
      expect: "nodes.demo:no_such_function"
    """
    done = corral("run", str(write_config(tmp_path, port, producer)))

    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    assert "node 'producer': key 'expect': cannot import" in done.stderr
    assert len(done.stderr.splitlines()) == 1


def test_a_sigkilled_worker_is_restarted_and_a_new_worker_registers(
    tmp_path: Path, spawn: Spawn
) -> None:
    # The job enqueued last may first go to the killed worker's parked fetch, and run only once
    # that session is declared dead: a short heartbeat_timeout (4 beats) keeps that wait short.
    runner, address = started_run(tmp_path, spawn, heartbeat_timeout=DEAD_WORKER_TIMEOUT_S)
    [first] = [worker["worker_id"] for worker in live_workers(address)]

    os.kill(started_pid(runner, "worker", "worker"), signal.SIGKILL)  # as the OOM killer does

    def new_worker() -> bool:
        return any(w["worker_id"] != first for w in live_workers(address))

    wait_for(new_worker, RESTARTED_WITHIN_S, POLL_S, "a restarted worker to register")
    assert "worker 'worker' died (killed by SIGKILL): restarting in 1 s" in runner.output
    assert runner.output.count("started worker 'worker'") == 2
    with Client(address) as client:
        assert client.enqueue("square", [7]).result(timeout=10) == 49
    assert runner.alive


def test_a_coordinator_that_dies_ends_the_run_with_exit_1_and_its_reason(
    tmp_path: Path, spawn: Spawn
) -> None:
    runner, address = started_run(tmp_path, spawn)

    os.kill(started_pid(runner, "coordinator", "coordinator"), signal.SIGKILL)
    code = runner.wait(FAIL_FAST_S + 20)  # the worker's stop waits 5 s for an answer

    assert code == 1, runner.output
    reason = f"coordinator 'coordinator' on {address} exited unexpectedly (killed by SIGKILL)"
    assert f"error: {reason}" in runner.output
    assert runner.output.count("started worker") == 1
