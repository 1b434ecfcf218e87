"""The issue's acceptance check: a client written only from PROTOCOL.md (raw zmq + msgpack,
nothing imported from corral) runs jobs on a cluster started from YAML with `corral run`."""

from __future__ import annotations

import textwrap

import msgpack
import pytest
import zmq

from tests.integration.conftest import cli, free_port

DEADLINE_MS = 20_000


@pytest.fixture
def yaml_cluster(tmp_path, spawn):
    port = free_port()
    config = tmp_path / "cluster.yaml"
    config.write_text(
        textwrap.dedent(
            f"""
            nodes:
              coordinator:
                kind: coordinator
                bind: tcp://127.0.0.1:{port}
                heartbeat_interval: 1
              worker:
                kind: worker
                connect: tcp://127.0.0.1:{port}
                concurrency: 4
                handlers: {{square: "nodes.demo:square"}}
            """
        )
    )
    spawn("corral run", *cli("run", str(config)))
    return f"tcp://127.0.0.1:{port}"


class RawClient:
    """PROTOCOL.md section 1-2 by hand: one-frame msgpack maps with a rid."""

    def __init__(self, address: str) -> None:
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.connect(address)
        self.rid = 0

    def request(self, kind: str, timeout_ms: int = DEADLINE_MS, **fields) -> dict:
        self.rid += 1
        self.socket.send(msgpack.packb({"type": kind, "rid": self.rid, **fields}))
        while self.socket.poll(timeout_ms):
            reply = msgpack.unpackb(self.socket.recv(), raw=False)
            if reply.get("rid") == self.rid:
                return reply
        raise AssertionError(f"no reply to {kind} within {timeout_ms} ms")

    def close(self) -> None:
        self.socket.close()
        self.context.term()


def test_a_client_written_from_the_protocol_runs_jobs_on_a_cluster_started_from_yaml(yaml_cluster):
    client = RawClient(yaml_cluster)
    try:
        assert client.request("ping")["type"] == "pong"  # waits for the coordinator to be up
        reply = client.request("enqueue", jobs=[{"type": "square", "args": [n]} for n in range(50)])
        assert reply["type"] == "reply" and len(reply["job_ids"]) == 50
        results = []
        for job_id in reply["job_ids"]:
            job = client.request("get", job_id=job_id, wait=15.0)["job"]
            assert job["state"] == "completed", job
            results.append(job["result"])
        assert results == [n * n for n in range(50)]
        stats = client.request("stats")
        assert stats["queues"]["default"]["completed"] == 50
        assert [w["state"] for w in stats["workers"]] == ["running"]
    finally:
        client.close()
