"""`corral status --watch` as a real process against a real coordinator process that is not
there yet, comes, goes and comes back on the same port: the watch says "unreachable" with the
address and since when, keeps watching, and shows the tables again each time it is back. And
the `stats {series: true}` extension on the wire, counting the jobs a real worker ran."""

from __future__ import annotations

import re
import signal
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

from actors import events
from nodes import Client, Coordinator, WorkerNode
from tests.conftest import wait_for
from tests.integration.conftest import Spawn, cli, free_port, node_script

WATCH_TIMEOUT_S = 20.0
UNREACHABLE = r"coordinator (\S+) unreachable since (\d\d:\d\d:\d\d) \(.*\), retrying"
FRAME = "live workers"  # the last line of a frame of tables


def test_watch_says_unreachable_keeps_watching_and_recovers_when_the_coordinator_is_back(
    spawn: Spawn, tmp_path: Path
) -> None:
    address = f"tcp://127.0.0.1:{free_port()}"
    watch = spawn(
        "status --watch",
        *cli("status", "--watch", "0.2", "--timeout", "0.5", "--connect", address),
    )

    def after(mark: int, text: str) -> bool:
        return text in watch.output[mark:]

    match = watch.wait_for_line(UNREACHABLE, WATCH_TIMEOUT_S)
    assert match.group(1) == address
    for round_ in range(2):  # the first start, then a restart on the same port
        mark = len(watch.output)
        coordinator = spawn(
            f"coordinator {round_}",
            *node_script("coordinator", str(tmp_path / f"address-{round_}"), "--bind", address),
        )
        wait_for(lambda mark=mark: after(mark, FRAME), WATCH_TIMEOUT_S, what="a frame of tables")
        assert "Last 60 s" in watch.output[mark:]  # the sparklines of the series extension
        mark = len(watch.output)
        coordinator.kill()
        wait_for(lambda mark=mark: after(mark, "unreachable"), WATCH_TIMEOUT_S, what="unreachable")
        assert watch.alive
    watch.signal(signal.SIGINT)
    assert watch.wait() == 0


def test_stats_with_series_counts_the_jobs_a_worker_ran_and_plain_stats_is_unchanged(
    coordinator: Callable[..., Coordinator], workers: Callable[..., WorkerNode]
) -> None:
    node = coordinator()
    worker = workers(node.address, queues=["default"], handlers={"square": lambda x: x * x})
    with Client(node.address) as client:
        for x in range(12):
            assert client.enqueue("square", [x]).result(timeout=10) == x * x
        assert "series" not in client.request("stats")
        assert "series" not in client.request("stats", series=False)

        def completed() -> int:
            return sum(client.stats(series=True)["series"]["completed"])

        wait_for(lambda: completed() == 12, 10, what="the second of the last job to close")
        series = client.stats(series=True)["series"]
    assert series["interval"] == 1.0
    assert len(series["completed"]) == len(series["failed"]) == 600
    assert sum(series["failed"]) == 0
    p50 = [v for v in series["latency_p50_ms"] if v is not None]
    assert p50 and all(0 < v < 10_000 for v in p50)
    assert re.fullmatch(r"\d+\.0", str(series["end"]))

    worker.stop()  # first: a worker stopping after its coordinator waits out its goodbye
    node.stop()  # a stopped coordinator's series no longer listens to the (shared) hub
    end = series["end"] + 2
    job = SimpleNamespace(state="completed", created_at=end - 1.5, completed_at=end - 1.5)
    node.events.emit(events.JOB_TERMINAL, job=job)
    assert node.series.snapshot(end)["completed"][-1] == 0
