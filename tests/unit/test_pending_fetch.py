"""A pending fetch's lifecycle (actors/pending_fetch.py): every (state, event) pair of its table,
and the supervisor core walking a fetch through claiming, parked, expired and answered."""

from __future__ import annotations

import pytest

from actors import pending_fetch as pf
from actors.mail import Claimed, FetchExpired, Stand, Withdraw
from actors.states import IllegalTransition
from tests.unit.test_supervisor_core import NOW, PEER, claims, make_core, register, told
from transport import messages as m

PAIRS = [(state, event) for state in pf.STATES for event in pf.EVENTS]


@pytest.mark.parametrize(("state", "event"), PAIRS, ids=[f"{s}-{e}" for s, e in PAIRS])
def test_every_state_and_event_of_a_fetch_moves_by_the_table_or_raises(state, event):
    fetch = pf.PendingFetch(token=1, rid=1, wanted=1, queues=("a",), wait=5.0, state=state)
    target = pf.TABLE.get((state, event))
    if target is None:
        with pytest.raises(IllegalTransition):
            fetch.move(event)
        assert fetch.state == state
    else:
        fetch.move(event)
        assert fetch.state == target


def test_an_answered_or_dropped_fetch_never_moves_again_and_an_expired_one_only_ends():
    assert not [key for key in pf.TABLE if key[0] in (pf.ANSWERED, pf.DROPPED)]
    assert {event for state, event in pf.TABLE if state == pf.EXPIRED} == {pf.ANSWER, pf.DROP}


def test_a_claim_is_out_exactly_while_claiming_or_expired():
    for state in pf.STATES:
        fetch = pf.PendingFetch(token=1, rid=1, wanted=1, queues=("a",), wait=5.0, state=state)
        assert fetch.claim_out == (state in (pf.CLAIMING, pf.EXPIRED))


def _fetching_worker(wait: float):
    core, port, sent = make_core()
    core.handle(NOW, PEER, m.Hello(1, "worker", "host", 1))
    worker_id = sent[-1]["worker_id"]
    core.handle(NOW, PEER, register(worker_id, ("a", "b"), 1))
    core.handle(NOW, PEER, m.Fetch(3, worker_id, 1, None, wait))
    return core, port, sent, worker_id


def test_a_fetch_walks_claiming_then_parked_then_expired_and_answered_empty():
    core, port, sent, worker_id = _fetching_worker(wait=5.0)
    fetch = core.sessions.live[worker_id].fetch
    assert fetch is not None and fetch.state == pf.CLAIMING
    token = claims(port, "a")[-1].token
    core.claimed(NOW, Claimed(token, worker_id, "a", []))
    assert fetch.state == pf.CLAIMING and claims(port, "b")[-1].token == token
    core.claimed(NOW, Claimed(token, worker_id, "b", []))
    assert fetch.state == pf.PARKED and told(port, "a", Stand)
    [(delay, expired, _)] = port.timers
    assert delay == 5.0

    core.fetch_expired(NOW + 5, expired)

    assert fetch.state == pf.ANSWERED and core.sessions.live[worker_id].fetch is None
    assert [reply["jobs"] for reply in sent if reply.get("rid") == 3] == [[]]
    assert told(port, "a", Withdraw) and told(port, "b", Withdraw)


def test_a_fetch_whose_wait_runs_out_with_a_claim_out_is_answered_when_the_claim_returns():
    core, port, sent, worker_id = _fetching_worker(wait=5.0)
    fetch = core.sessions.live[worker_id].fetch
    assert fetch is not None
    token = claims(port, "a")[-1].token
    core.claimed(NOW, Claimed(token, worker_id, "a", []))
    core.claimed(NOW, Claimed(token, worker_id, "b", []))  # parked
    core.handle(NOW + 1, PEER, m.Direct(4, worker_id, "quiet"))
    core.handle(NOW + 1, PEER, m.Beat(5, worker_id, "running", ()))  # quiet
    core.handle(NOW + 2, PEER, m.Direct(6, worker_id, "running"))
    core.handle(NOW + 2, PEER, m.Beat(7, worker_id, "quiet", ()))  # running again: claims again
    assert fetch.state == pf.CLAIMING
    token = claims(port, "a")[-1].token

    core.fetch_expired(NOW + 5, FetchExpired(worker_id, fetch.token))
    assert fetch.state == pf.EXPIRED and not [r for r in sent if r.get("rid") == 3]

    core.claimed(NOW + 5, Claimed(token, worker_id, "a", []))  # no claim goes to b now
    assert fetch.state == pf.ANSWERED and len(claims(port, "b")) == 1
    assert [reply["jobs"] for reply in sent if reply.get("rid") == 3] == [[]]


def test_a_stale_timer_of_an_earlier_fetch_changes_nothing():
    core, port, _, worker_id = _fetching_worker(wait=0.0)
    token = claims(port, "a")[-1].token
    core.claimed(NOW, Claimed(token, worker_id, "a", []))
    core.claimed(NOW, Claimed(token, worker_id, "b", []))  # wait 0: answered at once
    core.handle(NOW, PEER, m.Fetch(8, worker_id, 1, None, 5.0))
    fetch = core.sessions.live[worker_id].fetch
    assert fetch is not None and fetch.token != token

    core.fetch_expired(NOW + 5, FetchExpired(worker_id, token))

    assert fetch.state == pf.CLAIMING and core.sessions.live[worker_id].fetch is fetch
