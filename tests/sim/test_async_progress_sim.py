"""Simulated clusters: `async def` handlers wait in virtual time and are cancelled mid-await, and
progress reported by handlers travels on beats to `get`, `stats` and the event stream."""

from __future__ import annotations

import asyncio
from typing import Any

from actors import events
from actors.worker import current_job

HEARTBEAT_S = 5.0


def _job() -> Any:
    job = current_job()
    assert job is not None
    return job


async def nap(seconds: float) -> float:
    await _job().asleep(seconds)
    return seconds


def make_handlers(cancelled: list[str]) -> dict[str, Any]:
    async def hang() -> None:
        try:
            await _job().asleep(3600)
        except asyncio.CancelledError:
            cancelled.append(_job().id)
            raise

    def halfway(seconds: float) -> str:
        job = _job()
        job.progress(0.5, "half done")
        job.sleep(seconds)
        job.progress(0.9, "nearly")
        job.sleep(seconds)
        return "done"

    return {"nap": nap, "hang": hang, "halfway": halfway}


def test_async_handlers_wait_in_virtual_time_and_replay_the_same_for_a_seed(make_cluster):
    def run(seed: int) -> tuple[list[str], float]:
        cluster = make_cluster(2, seed=seed, concurrency=2, handlers=make_handlers([]))
        client = cluster.client()
        jobs = [client.enqueue("nap", [60 * (n % 3 + 1)]) for n in range(8)]
        began = cluster.clock.now()
        cluster.run_until(lambda: all(client.get(j).state == "completed" for j in jobs))
        assert [client.get(j).result for j in jobs] == [60 * (n % 3 + 1) for n in range(8)]
        hosts = {w["worker_id"]: w["hostname"] for w in client.stats()["workers"]}
        return [hosts[client.get(j).raw["worker_id"]] for j in jobs], cluster.clock.now() - began

    first, virtual = run(3)
    assert virtual >= 240  # 8 naps of 60-180 s on 4 slots: waited on the virtual clock
    assert run(3) == (first, virtual)


def test_an_async_job_cancelled_mid_await_in_a_simulation_has_its_task_cancelled(make_cluster):
    cancelled: list[str] = []
    cluster = make_cluster(1, seed=4, concurrency=1, handlers=make_handlers(cancelled))
    client = cluster.client()
    job = client.enqueue("hang")
    cluster.run_until(lambda: client.get(job).state == "active")
    cluster.advance(10)

    assert client.cancel(job) == "cancelled"
    cluster.run_until(lambda: cancelled == [job.id], within=60)

    after = client.enqueue("nap", [1])
    cluster.run_until(lambda: client.get(after).state == "completed", within=60)


def test_progress_reaches_get_stats_and_the_event_stream_with_the_next_beat(make_cluster):
    cluster = make_cluster(1, seed=5, handlers=make_handlers([]))
    reported: list[tuple[str, float, str]] = []
    cluster.events.subscribe(
        lambda name, payload: name == events.JOB_PROGRESS
        and reported.append((payload["job"].id, payload["fraction"], payload["message"]))
    )
    client = cluster.client()
    job = client.enqueue("halfway", [60])

    cluster.run_until(lambda: "progress" in client.get(job).raw, within=2 * HEARTBEAT_S)
    progress = client.get(job).raw["progress"]
    assert (progress["fraction"], progress["message"], progress["attempt"]) == (0.5, "half done", 1)
    (worker,) = client.stats()["workers"]
    assert worker["progress"][job.id]["fraction"] == 0.5
    cluster.advance(3 * HEARTBEAT_S)  # more beats, the same progress: no new event
    assert reported == [(job.id, 0.5, "half done")]

    cluster.run_until(lambda: client.get(job).raw.get("progress", {}).get("fraction") == 0.9)
    cluster.run_until(lambda: client.get(job).state == "completed")
    assert "progress" not in client.get(job).raw
    cluster.advance(2 * HEARTBEAT_S)
    assert "progress" not in client.stats()["workers"][0]
    assert reported == [(job.id, 0.5, "half done"), (job.id, 0.9, "nearly")]


def test_a_recovered_job_shows_no_progress_of_its_lost_attempt(make_cluster):
    cluster = make_cluster(2, seed=6, concurrency=1, handlers=make_handlers([]))
    client = cluster.client()
    job = client.enqueue("halfway", [600])
    cluster.run_until(lambda: "progress" in client.get(job).raw, within=2 * HEARTBEAT_S)
    holder = client.get(job).raw["worker_id"]
    name = next(w["hostname"] for w in client.stats()["workers"] if w["worker_id"] == holder)

    cluster.kill_worker(name)
    cluster.run_until(lambda: client.get(job).attempt == 2, within=120)

    assert client.get(job).raw.get("progress", {}).get("attempt") in (None, 2)
    cluster.run_until(lambda: "progress" in client.get(job).raw, within=2 * HEARTBEAT_S)
    assert client.get(job).raw["progress"]["attempt"] == 2
