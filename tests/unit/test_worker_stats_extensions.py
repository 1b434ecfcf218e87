"""The `stats` worker entries carry the `name` extension (the node name a worker registered
with), `directed` (a `direct` the worker has not yet confirmed in a beat) and `next_beat_by`
(when that beat is due), over the real actors on the simulated network and a manual clock."""

from __future__ import annotations

from typing import Any

import pytest

from actors.clock import ManualClock
from actors.context import CoordinatorSettings
from nodes.cli.commands import find_worker
from nodes.cluster import Cluster
from nodes.config.fields import ConfigError
from transport import codec
from transport import messages as m
from transport.errors import BadRequest
from transport.validation import parse_request
from transport.validation.limits import DEFAULT_LIMITS

INTERVAL_S = 5.0


def only_worker(cluster: Cluster) -> dict[str, Any]:
    [entry] = cluster.client().stats()["workers"]
    return entry


def test_a_worker_is_listed_with_the_name_it_registered_with_and_its_next_beat():
    clock = ManualClock(1_000.0)
    settings = CoordinatorSettings(heartbeat_interval=INTERVAL_S)
    with Cluster(workers=0, clock=clock, settings=settings) as cluster:
        cluster.add_worker("eu-worker")
        cluster.settle()
        entry = only_worker(cluster)
        assert entry["name"] == "eu-worker"
        assert entry["next_beat_by"] == entry["last_seen"] + INTERVAL_S
        assert "directed" not in entry


def test_a_direct_is_listed_as_directed_until_a_beat_reports_that_state():
    clock = ManualClock(1_000.0)
    settings = CoordinatorSettings(heartbeat_interval=INTERVAL_S)
    with Cluster(workers=0, clock=clock, settings=settings) as cluster:
        cluster.add_worker("w")
        cluster.settle()
        client = cluster.client()
        worker_id = only_worker(cluster)["worker_id"]
        client.direct(worker_id, "quiet")
        entry = only_worker(cluster)
        assert entry["directed"] == "quiet" and entry["state"] == "running"
        cluster.advance(INTERVAL_S * 2)  # a beat is told `quiet`, the next one reports it
        entry = only_worker(cluster)
        assert entry["state"] == "quiet"
        assert "directed" not in entry


@pytest.mark.parametrize(
    ("name", "accepted"),
    [(None, True), ("eu-1", True), ("", False), ("x" * 257, False), (7, False)],
)
def test_register_takes_an_optional_name_of_1_to_256_characters(name, accepted):
    body = {
        "type": "register",
        "rid": 1,
        "worker_id": "w",
        "queues": ["q"],
        "hostname": "h",
        "pid": 1,
    }
    if name is not None:
        body["name"] = name
    if accepted:
        request = parse_request("register", 1, body, len(codec.encode(body)), DEFAULT_LIMITS)
        assert isinstance(request, m.Register) and request.name == name
    else:
        with pytest.raises(BadRequest, match="'name'"):
            parse_request("register", 1, body, len(codec.encode(body)), DEFAULT_LIMITS)


# -- `corral quiet|resume|terminate WORKER` finds the worker by id, node name or id prefix ---------

WORKERS = [
    {"worker_id": "0190-aaaa-1", "name": "eu-1", "state": "running"},
    {"worker_id": "0190-aaaa-2", "name": "eu-2", "state": "quiet"},
    {"worker_id": "0190-bbbb-3", "state": "running"},
    {"worker_id": "0190-cccc-4", "name": "eu-1", "state": "terminated"},
]


@pytest.mark.parametrize(
    ("given", "found"),
    [
        ("0190-aaaa-2", "0190-aaaa-2"),  # its id
        ("eu-1", "0190-aaaa-1"),  # its node name (the terminated namesake does not count)
        ("0190-b", "0190-bbbb-3"),  # a unique prefix of its id
        ("nobody", "nobody"),  # left to the coordinator to refuse as unknown_worker
    ],
)
def test_a_worker_is_found_by_id_node_name_or_unique_id_prefix(given, found):
    assert find_worker(WORKERS, given) == found


def test_an_ambiguous_prefix_is_refused_listing_the_candidates():
    with pytest.raises(ConfigError, match=r"names 2 workers: 0190-aaaa-1 \(eu-1\), 0190-aaaa-2"):
        find_worker(WORKERS, "0190-a")
