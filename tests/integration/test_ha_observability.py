"""Seeing leadership: two coordinators in this process share a private PostgreSQL database;
the metrics of each say who leads and under which term, `corral status` through either one
names the leader and the standby, and the leader's stats carry `cluster`."""

from __future__ import annotations

import urllib.request
from collections.abc import Iterator

import pytest

from nodes import Client, Coordinator
from nodes.observe.metrics import MetricsExporter
from tests.conftest import wait_for
from tests.integration.conftest import corral

TTL_S = 1.0


@pytest.fixture
def pair(postgres) -> Iterator[tuple[Coordinator, Coordinator]]:
    url = postgres.database()
    started = []
    for name in ("a", "b"):
        node = Coordinator(
            "tcp://127.0.0.1:*", store=url, failover_timeout=TTL_S, name=name,
            addons=[MetricsExporter("127.0.0.1:0")],
        )  # fmt: skip
        started.append(node.start())
    yield started[0], started[1]
    for node in reversed(started):
        node.stop()


def scrape(node: Coordinator) -> set[str]:
    [exporter] = [a for a in node.addons if isinstance(a, MetricsExporter)]
    with urllib.request.urlopen(exporter.url, timeout=5) as response:
        return set(response.read().decode().splitlines())


def test_metrics_and_status_name_the_leader_its_term_and_the_standby(pair) -> None:
    a, b = pair  # a started first, alone: it leads when start() returns
    assert a.cluster()["role"] == "leading" and b.cluster()["role"] == "standby"
    wait_for(lambda: b.cluster()["leader"] is not None, timeout=10, what="b seeing a lead")
    wait_for(lambda: a.cluster()["standbys"], timeout=10, what="a seeing b stand by")
    # b loads its copy of the jobs at once (none here): it then says it is ready
    wait_for(
        lambda: [s["ready"] for s in a.cluster()["standbys"]] == [True],
        timeout=10,
        what="b ready to take over",
    )
    assert {
        'corral_leader{coordinator="a",leader="a"} 1.0',
        "corral_leadership_term 1.0",
        "corral_standbys 1.0",
        "corral_stats_up 1.0",
    } <= scrape(a)
    assert {'corral_leader{coordinator="b",leader="a"} 0.0', "corral_stats_up 0.0"} <= scrape(b)

    with Client([b.address, a.address]) as client:  # the standby first: the client moves on
        view = client.stats()["cluster"]
    assert (view["name"], view["term"], view["leader"]["endpoint"]) == ("a", 1, a.address)
    assert [s["name"] for s in view["standbys"]] == ["b"]
    shown = corral("status", "--connect", f"{b.address},{a.address}")
    assert shown.returncode == 0, shown.stderr
    assert f"Leader a ({a.address}), term 1; standbys: b ({b.address})" in shown.stdout

    # When a stops, b takes over: its metrics say so
    a.stop()
    wait_for(lambda: b.cluster()["role"] == "leading", timeout=10, what="b leading")
    assert 'corral_leader{coordinator="b",leader="b"} 1.0' in scrape(b)
    assert "corral_leadership_term 2.0" in scrape(b)
