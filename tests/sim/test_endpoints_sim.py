"""Peers given several coordinator endpoints find the leader, over the in-process network with
a manual clock: a stand-in standby answers `ping` and refuses everything else with
`not_leader`, naming the leader (the full failover simulation lives with the coordinator's)."""

from __future__ import annotations

from typing import Any

from nodes.client import Client
from nodes.cluster import COORDINATOR_ADDRESS, Cluster
from nodes.worker_node import WorkerNode
from transport import codec
from transport.endpoints import Endpoints
from transport.inproc import InprocServer

STANDBY_ADDRESS = "inproc://standby"


class FakeStandby:
    """Binds `STANDBY_ADDRESS`: pong to `ping`, `not_leader` naming the leader to the rest."""

    def __init__(self, cluster: Cluster) -> None:
        self.seen: list[str] = []
        self.server: InprocServer = cluster.network.bind(STANDBY_ADDRESS)
        self.server.start(self._on_frame)

    def _on_frame(self, peer: bytes, frame: bytes) -> None:
        body = codec.decode(frame)
        self.seen.append(body["type"])
        if body["type"] == "ping":
            reply: dict[str, Any] = {"type": "pong", "rid": body["rid"]}
        else:
            reply = {"type": "error", "rid": body["rid"], "code": "not_leader"}
            reply.update(message="a standby", leader=COORDINATOR_ADDRESS)
        self.server.send(peer, codec.encode(reply))


def endpoints(cluster: Cluster, node: str) -> Endpoints[Any]:
    """The standby first, then the leader: the worse order, so the peer has to move."""
    return Endpoints.of(
        (STANDBY_ADDRESS, COORDINATOR_ADDRESS),
        lambda address: cluster.network.connector(address, node=node),
    )


def test_a_worker_and_a_client_listing_a_standby_first_land_on_the_leader(make_cluster, history):
    # Given a cluster with no worker, and a standby beside its coordinator
    cluster = make_cluster(0, seed=3)
    standby = FakeStandby(cluster)
    # When a worker and a client are given [standby, leader]
    worker = WorkerNode(
        (STANDBY_ADDRESS, COORDINATOR_ADDRESS),
        handlers=cluster.handlers,
        connector=endpoints(cluster, "w"),
        clock=cluster.clock,
        rng=cluster._child_rng(),
        activity=cluster.activity,
        pump=cluster.step,
        executor=cluster.turns.executor() if cluster.turns is not None else None,
        hostname="w",
    ).start()
    cluster.workers["w"] = worker
    client = Client(connector=endpoints(cluster, "c"), pump=cluster.step)
    client.ping()  # a standby answers ping: this one says nothing of the leader
    jobs = client.enqueue_many([{"type": "square", "args": [n]} for n in range(5)])
    # Then the jobs run on that worker, registered with the leader
    cluster.run_until(lambda: all(client.get(job).state == "completed" for job in jobs), 600)
    assert [client.get(job).result for job in jobs] == [n * n for n in range(5)]
    assert [w["hostname"] for w in client.stats()["workers"]] == ["w"]
    # And both met the standby first: the worker's hello, the client's enqueue
    assert standby.seen.count("hello") == 1 and "register" not in standby.seen
    assert standby.seen.count("enqueue") == 1
    history.check(cluster, jobs)
    client.close()
