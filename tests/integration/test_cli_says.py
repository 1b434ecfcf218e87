"""`corral` says what is going on, against a real coordinator and worker over TCP: a job no
running worker can take is pointed out (on enqueue, on a `--wait` that runs out, on `get`),
`get --wait` and `enqueue --wait` agree on exit 1 for a job still waiting, workers are found by
node name, and the demo producer's progress counts failed attempts."""

from __future__ import annotations

import io

from nodes.demo import fail_sometimes, square
from nodes.producer import Producer
from tests.conftest import wait_for
from tests.integration.conftest import corral, corral_at_once

# A retry held back for a second: the progress lines meanwhile show the failed attempts
# (a follower's held `get` ends after 0.2 s with the job still retryable).
RETRY_LATER = {"retry": {"initial_interval": 1.0, "jitter": False}}


def test_a_job_no_running_worker_can_take_is_pointed_out_with_what_the_workers_handle(
    coordinator, workers
):
    node = coordinator()
    workers(node.address, name="sq-1", handlers={"square": square}, labels={"region": ["us"]})

    enqueued = corral("enqueue", "cube", "3", "--connect", node.address)
    assert enqueued.returncode == 0
    job_id = enqueued.stdout.strip()
    assert "no running worker can take it (type 'cube', queue 'default')" in enqueued.stderr
    assert "sq-1" in enqueued.stderr and "functions square" in enqueued.stderr
    assert "labels region=us" in enqueued.stderr

    routed, waited, got, looked = corral_at_once(  # none of them changes what the others see
        ("enqueue", "--route", "region=eu", "square", "3", "--connect", node.address),
        ("enqueue", "cube", "3", "--wait", "0.5", "--connect", node.address),
        ("get", job_id, "--wait", "0.5", "--connect", node.address),
        ("get", job_id, "--connect", node.address),
    )
    assert "route region=eu" in routed.stderr

    assert waited.returncode == 1
    assert "still available after 0.5 s: no running worker can take it" in waited.stderr

    assert got.returncode == 1  # the same as enqueue --wait
    assert "still available after 0.5 s: no running worker can take it" in got.stderr

    assert looked.returncode == 0
    assert "warning: job" in looked.stderr and "no running worker" in looked.stderr


def test_a_job_a_worker_can_take_enqueues_without_a_warning(coordinator, workers):
    node = coordinator()
    workers(node.address, handlers={"square": square})
    done = corral("enqueue", "square", "3", "--wait", "10", "--connect", node.address)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    assert done.stdout.splitlines()[-1] == "9"


def test_quiet_and_resume_find_a_worker_by_its_node_name(coordinator, workers, clients):
    node = coordinator(heartbeat_interval=0.5)  # the directive arrives on the next beat
    workers(node.address, name="eu-1", handlers={"square": square})
    client = clients(node.address)
    quieted = corral("quiet", "eu-1", "--connect", node.address)
    assert quieted.returncode == 0, quieted.stderr
    [entry] = client.stats()["workers"]
    assert f"worker {entry['worker_id']} (eu-1) directed to quiet" in quieted.stdout
    wait_for(lambda: client.stats()["workers"][0]["state"] == "quiet", 10, what="quiet")


def test_the_producer_progress_counts_failed_attempts(coordinator, workers):
    node = coordinator()
    workers(node.address, handlers={"fail_sometimes": fail_sometimes})
    out = io.StringIO()
    producer = Producer(
        node.address,
        job_type="fail_sometimes",
        count=20,
        args=["{i}", 5],  # 0, 5, 10 and 15 fail their first attempt
        options=RETRY_LATER,
        progress_interval=0.05,
        out=out,
    )
    assert producer.run() == 0, out.getvalue()
    lines = out.getvalue().splitlines()
    assert any("completed 16/20, 0 failed, 4 failed attempts" in line for line in lines), lines
