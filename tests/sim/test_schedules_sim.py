"""Schedules in simulation, on the manual clock: every due slot makes exactly one job, across
a coordinator restart over SQLite and a failover to a standby; slow runs are not piled up."""

from __future__ import annotations

from pathlib import Path

from actors.store.sqlite import SqliteStore

EVERY_S = 60.0


def made(cluster, name: str) -> list[dict]:
    """The jobs schedule `name` made, oldest first, as stored."""
    jobs = cluster.store.list(limit=1000)
    mine = [job for job in jobs if job.get("meta", {}).get("schedule") == name]
    return sorted(mine, key=lambda job: job["meta"]["slot"])


def slots_of(cluster, name: str) -> list[float]:
    return [job["meta"]["slot"] for job in made(cluster, name)]


def test_every_due_slot_makes_one_job_that_runs(make_cluster, history):
    cluster = make_cluster(1, seed=11, concurrency=2)
    client = cluster.client()
    put = client.put_schedule("squares", "square", [3], every=EVERY_S)
    first = put["next_runs"][0]
    assert put["next_runs"] == [first, first + EVERY_S, first + 2 * EVERY_S]
    cluster.advance(10 * EVERY_S + 1)
    slots = slots_of(cluster, "squares")
    assert slots == [first + n * EVERY_S for n in range(10)]
    jobs = [job["id"] for job in made(cluster, "squares")]
    cluster.run_until(lambda: all(client.get(j).state == "completed" for j in jobs))
    assert {client.get(j).result for j in jobs} == {9}
    [listed] = client.schedules()
    assert listed["fired"] == 10 and listed["last_job_id"] == jobs[-1]
    history.check(cluster, jobs)


def test_a_paused_schedule_makes_nothing_and_a_removed_one_is_gone(make_cluster):
    cluster = make_cluster(1, seed=12)
    client = cluster.client()
    client.put_schedule("s", "square", [1], every=EVERY_S)
    assert client.pause_schedule("s")["paused"] is True
    cluster.advance(5 * EVERY_S)
    assert slots_of(cluster, "s") == []
    client.resume_schedule("s")
    cluster.advance(EVERY_S + 1)
    assert len(slots_of(cluster, "s")) == 1
    client.remove_schedule("s")
    assert client.schedules() == []
    cluster.advance(3 * EVERY_S)
    assert len(slots_of(cluster, "s")) == 1


def test_a_slow_run_is_not_piled_up_under_overlap_skip(make_cluster):
    cluster = make_cluster(1, seed=13, concurrency=4)
    client = cluster.client()
    client.put_schedule("slow", "sleep", [150], every=EVERY_S)
    cluster.advance(6 * EVERY_S + 1)
    jobs = made(cluster, "slow")
    assert len(jobs) == 2  # one every 150 s or so: the slots in between were skipped
    assert client.schedules()[0]["skipped"] == 4


def test_no_slot_is_made_twice_or_lost_across_a_restart_over_sqlite(
    make_cluster, tmp_path: Path
):
    path = str(tmp_path / "corral.db")
    store = SqliteStore(path)
    cluster = make_cluster(1, seed=14, concurrency=2, store=store)
    store.track(cluster.activity)
    client = cluster.client()
    first = client.put_schedule("s", "square", [2], every=EVERY_S)["next_runs"][0]
    cluster.advance(3 * EVERY_S + 1)
    cluster.kill_coordinator()
    cluster.restart_coordinator(store=SqliteStore(path, activity=cluster.activity))
    cluster.advance(3 * EVERY_S)
    assert slots_of(cluster, "s") == [first + n * EVERY_S for n in range(6)]


def test_no_slot_is_made_twice_across_a_failover(make_cluster):
    cluster = make_cluster(1, seed=15, concurrency=2, coordinators=2, failover_timeout=3.0)
    client = cluster.client()
    first = client.put_schedule("s", "square", [2], every=EVERY_S)["next_runs"][0]
    cluster.advance(2 * EVERY_S + 1)
    leader = cluster.leader()
    cluster.kill_coordinator(leader.bind)
    cluster.run_until(lambda: cluster.leader() not in (None, leader), within=60)
    cluster.advance(3 * EVERY_S)
    slots = slots_of(cluster, "s")
    assert slots == sorted(set(slots)) and slots[:2] == [first, first + EVERY_S]
    assert len(slots) == 5  # none lost: the failover took seconds, within the misfire grace
