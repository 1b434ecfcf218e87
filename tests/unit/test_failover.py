"""A client's requests over several coordinators (transport/failover.py): the same body goes on
to the next endpoint (the one a standby names first) on not_leader or silence, within the
call's timeout; driven with scripted requesters and a manual clock (no sockets, no sleeps)."""

from __future__ import annotations

from typing import Any

import pytest

from transport.endpoints import Endpoints
from transport.errors import NotLeader, error_for_code
from transport.failover import ATTEMPT_TIMEOUT_S, ROUND_PAUSE_S, FailoverRequester

A, B, C = "tcp://a:1", "tcp://b:1", "tcp://c:1"


class Time:
    def __init__(self) -> None:
        self.now = 0.0
        self.pauses: list[float] = []

    def pause(self, seconds: float) -> None:
        self.pauses.append(seconds)
        self.now += seconds


class Scripted:
    """A coordinator that is the leader (answers), a standby (not_leader naming `leader`), or
    silent (the whole attempt passes)."""

    def __init__(self, time: Time, role: str, leader: str | None = None) -> None:
        self.time, self.role, self.leader = time, role, leader
        self.seen: list[tuple[dict[str, Any], float]] = []
        self.closed = False

    def request(self, body: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        self.seen.append((body, timeout))
        if self.role == "leader":
            return {"type": "reply", "rid": body["rid"]}
        if self.role == "standby":
            hint = {"leader": self.leader} if self.leader else {}
            return {"type": "error", "rid": body["rid"], "code": "not_leader", **hint}
        self.time.now += timeout
        return None

    def close(self) -> None:
        self.closed = True


def requester(time: Time, **roles: Scripted) -> FailoverRequester:
    endpoints = Endpoints((f"tcp://{name}:1", each) for name, each in roles.items())
    return FailoverRequester(endpoints, lambda: time.now, time.pause)  # type: ignore[arg-type]


def test_a_standby_s_hint_is_followed_and_the_same_body_reaches_the_leader():
    time = Time()
    a, b = Scripted(time, "standby", leader=C), Scripted(time, "standby")
    c = Scripted(time, "leader")
    failover = requester(time, a=a, b=b, c=c)
    body = {"type": "enqueue", "rid": 7, "job": {"type": "t"}, "request_id": "r-1"}
    assert failover.request(body, 10.0) == {"type": "reply", "rid": 7}
    assert ([s[0] for s in a.seen], b.seen, [s[0] for s in c.seen]) == ([body], [], [body])


def test_a_silent_coordinator_costs_one_attempt_timeout_plus_the_request_s_wait():
    time = Time()
    a, b = Scripted(time, "silent"), Scripted(time, "leader")
    failover = requester(time, a=a, b=b)
    failover.request({"type": "get", "rid": 1, "job_id": "j", "wait": 5.0}, 60.0)
    assert [timeout for _, timeout in a.seen] == [ATTEMPT_TIMEOUT_S + 5.0]
    assert time.now == ATTEMPT_TIMEOUT_S + 5.0 and len(b.seen) == 1


def test_while_no_coordinator_leads_rounds_pause_until_the_call_s_timeout_then_not_leader():
    time = Time()
    a, b = Scripted(time, "standby"), Scripted(time, "standby")
    failover = requester(time, a=a, b=b)
    reply = failover.request({"type": "ping", "rid": 1}, 1.0)
    assert reply is not None and reply["code"] == "not_leader"
    assert time.pauses[0] == ROUND_PAUSE_S and len(time.pauses) == len(a.seen) == len(b.seen)
    assert time.now == pytest.approx(1.0)


def test_silence_everywhere_ends_in_no_reply_within_the_call_s_timeout():
    time = Time()
    failover = requester(time, a=Scripted(time, "silent"), b=Scripted(time, "silent"))
    assert failover.request({"type": "ping", "rid": 1}, 4.0) is None
    assert time.now == pytest.approx(4.0)


def test_closing_closes_every_endpoint_s_requester():
    time = Time()
    a, b = Scripted(time, "leader"), Scripted(time, "leader")
    failover = requester(time, a=a, b=b)
    failover.close()
    assert (a.closed, b.closed, failover.closed) == (True, True, True)
    assert failover.request({"type": "ping", "rid": 1}, 1.0) is None


def test_not_leader_raises_with_the_leader_it_names():
    error = error_for_code("not_leader", "standby", context="ping", leader=B)
    assert isinstance(error, NotLeader) and (error.code, error.leader) == ("not_leader", B)
    assert error_for_code("not_leader", "standby").leader is None  # type: ignore[attr-defined]
