"""High availability with real processes: two coordinator processes share a private
PostgreSQL cluster (tests/pg.py); workers list both. The leader is SIGKILLed or frozen with
SIGSTOP; the standby takes over, running jobs resume on their workers, a frozen leader
thawed after the takeover serves nothing and changes nothing, and a job deleted on the leader
(extension "Delete") is still gone after the standby took over."""

from __future__ import annotations

import signal

import pytest
import zmq

from tests.conftest import wait_for
from tests.integration.ha_cluster import FAILOVER_TIMEOUT_S, Pair, rows
from tests.integration.real_cluster import hold_jobs, start_worker
from transport import codec
from transport.errors import UnknownJob

# How long a takeover may take here: the lease lapses (1 s), the standby's next poll (0.2 s),
# opening the store and starting the actors, on two cores busy with every process of the test.
TAKEOVER_WITHIN_S = FAILOVER_TIMEOUT_S + 4.0
# Workers re-register within this of a takeover or their running jobs are recovered, not
# resumed: longer than real_cluster's 1.5 s, as a worker meets the standby and the dead leader
# (refused at once) before the new leader serves, then backs off 1 s after a failed round.
HEARTBEAT_TIMEOUT_S = 5.0


def test_the_standby_takes_over_a_killed_leader_and_the_running_job_resumes(
    spawn, postgres, tmp_path
):
    # Given two coordinators on one database, a worker listing both, running a held job
    pair = Pair(spawn, tmp_path, postgres.database(), heartbeat_timeout=HEARTBEAT_TIMEOUT_S)
    first, term = pair.leader()
    client = pair.client()
    worker = start_worker(spawn, pair.connect, "w1", 2)
    release = tmp_path / "release"
    [held] = hold_jobs(client, tmp_path, release)
    before = worker_of(client, held)
    # When the leader's process is SIGKILLed
    took = pair.failover(first, signal.SIGKILL)
    print(f"failover after SIGKILL: {took:.2f} s")
    assert took <= TAKEOVER_WITHIN_S
    second, new_term = pair.leader()
    assert (second, new_term) != (first, term) and new_term > term
    # over the copy of the jobs it kept while standing by, not a load of every job
    assert f"term {new_term}: taking over the standby copy" in pair.processes[second].output
    # Then the worker follows, resumes its job (attempt 1, no error), and finishes it there
    wait_for(lambda: worker_of(client, held) != before, timeout=10, what="the job resumed")
    release.touch()
    done = client.get(held, wait=20)
    assert (done.state, done.attempt, done.errors, done.result) == (
        "completed", 1, [], worker.pid,
    )  # fmt: skip
    # And new jobs run; the killed coordinator, started again, stands by
    assert client.enqueue("sleep", [0]).result(timeout=20) == worker.pid
    pair.start(first)
    wait_for(lambda: pair.cluster_of(second)["standbys"], timeout=10, what="a standby listed")


@pytest.mark.slow  # the suite's five minutes: run in the slow tier (README)
def test_a_frozen_leader_thawed_after_the_takeover_serves_nothing_and_writes_nothing(
    spawn, postgres, tmp_path
):
    url = postgres.database()
    pair = Pair(spawn, tmp_path, url, heartbeat_timeout=HEARTBEAT_TIMEOUT_S)
    first, term = pair.leader()
    client = pair.client()
    start_worker(spawn, pair.connect, "w1", 2)
    release = tmp_path / "release"
    [held] = hold_jobs(client, tmp_path, release)
    before = worker_of(client, held)

    # When the leader is frozen (SIGSTOP) long enough for the standby to take over...
    frozen = pair.processes[first]
    took = pair.failover(first, signal.SIGSTOP)
    print(f"failover after SIGSTOP: {took:.2f} s")
    second, new_term = pair.leader(other_than=first)
    assert new_term > term
    # ...the worker resumes its job there, and a request waits in the frozen one's socket
    wait_for(lambda: worker_of(client, held) != before, timeout=15, what="the job resumed")
    resumed_by = worker_of(client, held)
    context = zmq.Context()
    raw = context.socket(zmq.DEALER)
    raw.setsockopt(zmq.LINGER, 0)
    raw.connect(pair.addresses[first])
    # (its ZMTP handshake waits for the frozen process: the frame is delivered after the thaw)
    raw.send(codec.encode({"type": "enqueue", "rid": 1, "job": {"type": "while-frozen"}}))

    # Then, thawed, it refuses the request it finds (its lease ran out while it slept)...
    frozen.signal(signal.SIGCONT)
    assert raw.poll(10_000), "no answer from the thawed coordinator"
    answer = codec.decode(raw.recv())
    raw.close()
    context.term()
    assert (answer["type"], answer["code"]) == ("error", "not_leader"), answer
    # ...steps down, names the new leader...
    frozen.wait_for_line(r"leading -> standby", timeout=10)
    # ...and none of its writes landed: no job from the frozen socket, the resumed job
    # untouched (no worker_lost attempt recorded by its reaper waking up late)
    assert rows(url, "SELECT count(*) FROM jobs WHERE state <> 'completed' AND id = %s", held)
    assert worker_of(client, held) == resumed_by
    found = client.get(held)
    assert (found.state, found.attempt, found.errors) == ("active", 1, [])
    assert client.jobs(job_type="while-frozen") == []
    release.touch()
    assert client.get(held, wait=20).state == "completed"
    assert pair.cluster_of(second)["term"] == new_term  # nothing changed hands again


def test_a_job_deleted_on_the_leader_is_still_gone_after_the_standby_takes_over(
    spawn, postgres, tmp_path
):
    url = postgres.database()
    pair = Pair(spawn, tmp_path, url)
    first, _ = pair.leader()
    client = pair.client()
    gone, kept = (str(client.enqueue("sleep", [0], queue="nobody")) for _ in range(2))
    assert client.cancel(gone) == client.cancel(kept) == "cancelled"

    def standby_ready() -> bool:
        view = pair.cluster_of(first)
        return view is not None and any(s["ready"] for s in view["standbys"])

    wait_for(standby_ready, timeout=15, what="the standby's copy loaded")
    client.delete(gone)
    assert rows(url, "SELECT count(*) FROM jobs WHERE id = %s", gone) == [(0,)]
    assert rows(url, "SELECT count(*) FROM jobs_deleted WHERE id = %s", gone) == [(1,)]

    pair.failover(first, signal.SIGKILL)
    second, _ = pair.leader(other_than=first)
    assert "taking over the standby copy" in pair.processes[second].output
    with pytest.raises(UnknownJob):
        client.get(gone)
    assert client.get(kept).state == "cancelled"
    assert client.stats()["queues"]["nobody"]["cancelled"] == 1


def worker_of(client, job_id: str) -> str | None:
    return client.get(job_id).raw.get("worker_id")
