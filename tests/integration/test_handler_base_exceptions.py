"""A handler that raises a BaseException that is not an Exception (`sys.exit(3)`, a
KeyboardInterrupt) fails its attempt like any other error, and the worker serves on.

Before the fix such an exception killed the pool thread: the job stayed `active` forever (every
beat listed it), and a worker with concurrency 1 never ran another job. Here a real coordinator
(in this process, on TCP loopback) serves a worker node in its own process, started from
tests/integration/node_script.py.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from nodes.client import Client

REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).resolve().with_name("node_script.py")
PROCESS_EXIT_TIMEOUT_S = 10.0
JOB_TIMEOUT_S = 15.0
FAST_RETRY = {"initial_interval": 0.05, "jitter": False}


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen[bytes]]]:
    """Factory: a node_script worker (concurrency 1) connected to `address`; killed at teardown
    and its log printed (pytest shows it when the test fails)."""
    started: list[subprocess.Popen[bytes]] = []
    log_path = tmp_path / "worker.log"

    def start(address: str) -> subprocess.Popen[bytes]:
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                [sys.executable, str(NODE_SCRIPT), "worker", address, "--concurrency", "1"],
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        with contextlib.suppress(Exception):
            process.kill()
            process.wait(PROCESS_EXIT_TIMEOUT_S)
    if log_path.exists():
        print(log_path.read_text(encoding="utf-8", errors="replace")[-6000:])


@pytest.mark.parametrize(
    ("kind", "args", "error_type"),
    [("exit", [3], "SystemExit"), ("interrupt", [], "KeyboardInterrupt")],
)
def test_a_handler_raising_a_base_exception_fails_its_attempt_and_the_worker_serves_on(
    coordinator, worker_process, kind, args, error_type
):
    # Given a worker process with one slot, and a coordinator that retries a job once
    node = coordinator(heartbeat_interval=0.2)
    worker = worker_process(node.address)
    client = Client(node.address, timeout=5.0)
    try:
        # When its handler raises `error_type` on both attempts
        job = client.enqueue(kind, args, max_attempts=2, retry=FAST_RETRY)

        # Then each attempt fails with the exception's class name and the job is discarded
        done = client.get(job, wait=JOB_TIMEOUT_S)
        assert done.state == "discarded", done
        assert [(e["type"], e["attempt"]) for e in done.errors] == [
            (error_type, 1),
            (error_type, 2),
        ]
        # And the same worker, its only slot free again, runs the next job
        after = client.get(client.enqueue("sleep", [0]), wait=JOB_TIMEOUT_S)
        assert (after.state, after.result) == ("completed", worker.pid), after
        assert worker.poll() is None, "the worker process exited"
    finally:
        client.close()
