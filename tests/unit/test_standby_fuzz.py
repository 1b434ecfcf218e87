"""A standby coordinator under fuzzed frames (docs/PROTOCOL.md Extensions, SECURITY.md): every
frame gets exactly one answer, `pong` to a ping, `not_leader` (naming the leader) to any
other well-formed request, `bad_request` to a malformed header, never `internal`; the shared
database is never written; and the standby still takes over when the lease lapses."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.clock import ManualClock
from actors.store.shared import MemoryDatabase
from nodes import Coordinator
from tests.conftest import wait_for
from transport import codec
from transport.inproc import InprocNetwork
from transport.validation import REQUEST_TYPES

ADDRESS = "inproc://standby"
LEADER = "tcp://leader.example:5555"
TTL = 3.0


class Standby:
    def __init__(self) -> None:
        self.clock = ManualClock()
        self.database = MemoryDatabase(self.clock)
        assert self.database.lease.try_acquire("elsewhere", LEADER, 3600.0) == 1
        self.network = InprocNetwork(auto=False)
        self.coordinator = Coordinator(
            ADDRESS,
            store=self.database,
            transport=self.network.bind(ADDRESS),
            clock=self.clock,
            failover_timeout=TTL,
            name="standby",
        ).start()
        self.answers: list[dict[str, Any]] = []
        self.link = self.network.connector(ADDRESS, node="fuzzer")(self._answer)

    def _answer(self, frame: bytes) -> None:
        self.answers.append(codec.decode(frame))

    def send(self, frame: bytes) -> list[dict[str, Any]]:
        self.answers.clear()
        self.link.send(frame)
        self.network.deliver_all()
        return list(self.answers)


@pytest.fixture(scope="module")
def standby() -> Iterator[Standby]:
    node = Standby()
    yield node
    node.coordinator.stop()
    node.network.close()


scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats()
values = st.recursive(
    scalars | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=12,
)
rids = st.integers(min_value=0, max_value=2**31) | st.text(max_size=64)


@st.composite
def frames(draw: st.DrawFn) -> bytes:
    body: dict[Any, Any] = draw(st.dictionaries(st.text(max_size=10), values, max_size=5))
    if draw(st.booleans()):
        body["type"] = draw(st.sampled_from(sorted(REQUEST_TYPES)) | values)
    if draw(st.booleans()):
        body["rid"] = draw(rids | values)
    frame = msgpack.packb(body) if draw(st.integers(0, 9)) else draw(st.binary(max_size=40))
    if draw(st.integers(0, 4)) == 0:  # a byte flipped or cut
        cut = draw(st.integers(0, len(frame)))
        frame = frame[:cut] + draw(st.binary(max_size=3))
    return frame


@given(frame=frames())
@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_every_frame_gets_one_answer_and_nothing_is_written(standby: Standby, frame: bytes) -> None:
    [answer] = standby.send(frame)
    try:
        body = codec.decode(frame)
    except Exception:
        body = None
    well_formed = (
        isinstance(body, dict)
        and codec.valid_rid(body.get("rid"))
        and isinstance(body.get("type"), str)
        and body["type"] in REQUEST_TYPES
    )
    if not well_formed:
        assert (answer["type"], answer["code"]) == ("error", "bad_request"), answer
    elif body["type"] == "ping":
        assert answer["type"] == "pong" and answer["rid"] == body["rid"]
    else:
        assert answer == {
            "type": "error",
            "rid": body["rid"],
            "code": "not_leader",
            "message": f"this coordinator is a standby; the leader is at {LEADER}",
            "leader": LEADER,
        }
    assert standby.database.rows == {} and standby.coordinator.ctx is None


def test_after_the_fuzzing_the_standby_takes_over_when_the_lease_lapses(standby: Standby) -> None:
    standby.database.lease.release("elsewhere", 1)
    leadership = standby.coordinator.leadership

    def leads() -> bool:
        standby.clock.advance(TTL / 5)  # its next poll sees the lease lapsed and takes it
        return leadership.serving(standby.clock.now())

    wait_for(leads, timeout=10, what="the standby leading")
    [reply] = standby.send(codec.encode({"type": "enqueue", "rid": 7, "job": {"type": "t"}}))
    assert reply["type"] == "reply" and reply["rid"] == 7, reply
    assert len(standby.database.rows) == 1
