"""A handler that raises a BaseException that is not an Exception (`sys.exit(3)`, a
KeyboardInterrupt) fails its attempt like any other error, and the worker serves on.

Before the fix such an exception killed the pool thread: the job stayed `active` forever (every
beat listed it), and a worker with concurrency 1 never ran another job. Here a real coordinator
(in this process, on TCP loopback) serves a worker node in its own process, started from
tests/integration/node_script.py.
"""

from __future__ import annotations

import pytest

from tests.integration.conftest import node_script

JOB_TIMEOUT_S = 15.0
FAST_RETRY = {"initial_interval": 0.05, "jitter": False}


@pytest.mark.parametrize(
    ("kind", "args", "error_type"),
    [("exit", [3], "SystemExit"), ("interrupt", [], "KeyboardInterrupt")],
)
def test_a_handler_raising_a_base_exception_fails_its_attempt_and_the_worker_serves_on(
    coordinator, spawn, clients, kind, args, error_type
):
    # Given a worker process with one slot, and a coordinator that retries a job once
    node = coordinator(heartbeat_interval=0.2)
    worker = spawn("worker", *node_script("worker", node.address, "--concurrency", "1"))
    client = clients(node.address)
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
    assert worker.alive, "the worker process exited"
