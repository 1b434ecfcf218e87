"""`corral terminate WORKER_ID` ends a real worker process: it drains, deregisters, exits 0."""

from __future__ import annotations

from pathlib import Path

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import Spawn, cli, corral, free_port
from tests.integration.small_cluster import (
    POLL_S,
    RUN_TIMEOUT_S,
    START_TIMEOUT_S,
    live_workers,
    started_run,
    wait_for_worker,
    write_config,
)

EXIT_TIMEOUT_S = 20.0  # a beat (0.5 s) brings the directive; the job left runs 1.5 s


def test_a_worker_told_to_terminate_finishes_its_job_deregisters_and_exits_0(
    tmp_path: Path, spawn: Spawn
) -> None:
    port = free_port()
    path = write_config(tmp_path, port)
    address = f"tcp://127.0.0.1:{port}"
    spawn("coordinator", *cli("run", str(path), "--node", "coordinator"))
    worker = spawn("worker", *cli("run", str(path), "--node", "worker"))
    wait_for_worker(address)
    worker_id = live_workers(address)[0]["worker_id"]
    with Client(address) as client:
        job_id = client.enqueue("sleep_ms", [1500])
        wait_for(lambda: client.get(job_id).state == "active", START_TIMEOUT_S, POLL_S, "active")

        told = corral("terminate", worker_id, "--connect", address)
        code = worker.wait(EXIT_TIMEOUT_S)
        job = client.get(job_id, wait=5)
        workers = client.stats()["workers"]

    assert told.returncode == 0, told.stderr
    assert code == 0, worker.output
    assert "terminated by the coordinator" in worker.output
    assert (job.state, job.result, job.attempt, job.errors) == ("completed", 1500, 1, [])
    assert [w["state"] for w in workers] == ["terminated"]  # deregistered, not timed out


def test_under_corral_run_a_terminated_worker_is_not_restarted_and_the_cluster_stays_up(
    tmp_path: Path, spawn: Spawn
) -> None:
    runner, address = started_run(tmp_path, spawn)
    worker_id = live_workers(address)[0]["worker_id"]

    assert corral("terminate", worker_id, "--connect", address).returncode == 0
    runner.wait_for_line(r"runner +\| worker 'worker' terminated by the coordinator")
    runner.wait_for_line(r"no workers left", RUN_TIMEOUT_S)

    assert runner.alive and live_workers(address) == []  # the cluster waits for new workers
    with Client(address, timeout=2.0) as client:
        client.ping()  # the coordinator still answers
    assert runner.output.count("started worker") == 1
