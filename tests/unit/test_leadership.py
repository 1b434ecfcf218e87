"""The leadership table (actors/leadership.py), walked pair by pair, and its timing rules."""

from __future__ import annotations

import pytest

from actors.leadership import (
    IGNORED,
    LOCAL_MARGIN,
    POLLS_PER_TTL,
    RENEWALS_PER_TTL,
    TRANSITIONS,
    Dismantle,
    Event,
    Leadership,
    Poll,
    Promote,
    Release,
    Renew,
    Role,
    Schedule,
    Serve,
    StepDown,
)

TTL = 3.0
E, R = Event, Role


def in_role(role: Role, term: int = 4, now: float = 100.0) -> Leadership:
    core = Leadership(TTL, role=role, term=term)
    if role in (R.PROMOTING, R.LEADING):
        core.valid_until = now + 1.0
    return core


def data_for(event: Event, core: Leadership) -> dict[str, object]:
    return {
        E.ACQUIRED: {"term": core.term + 1, "sent": 100.0},
        E.NOT_ACQUIRED: {"leader": "tcp://other:5555"},
        E.PROMOTED: {"term": core.term},
        E.PROMOTE_FAILED: {"term": core.term, "reason": "disk"},
        E.RENEWED: {"term": core.term, "sent": 100.0},
        E.REFUSED: {"term": core.term},
        E.DEPOSED: {"term": core.term},
        E.LEASE_ERROR: {"reason": "connection refused"},
        E.STALE: {"term": core.term - 1, "promoted": True},
    }.get(event, {})


PAIRS = sorted(TRANSITIONS, key=lambda pair: (pair[0].value, pair[1].value))


@pytest.mark.parametrize(("role", "event"), PAIRS, ids=lambda x: x.value)
def test_every_pair_of_the_table_moves_to_its_target(role, event):
    core = in_role(role)
    if event is E.LAPSED:
        core.valid_until = 0.0  # a tick past the local bound is how LAPSED arrives
        effects = core.handle(E.TICK, 100.0)
    else:
        effects = core.handle(event, 100.0, **data_for(event, core))
    target = TRANSITIONS[(role, event)]
    assert core.role is (role if target is IGNORED else target)
    if target is IGNORED:
        assert effects == []


def test_a_pair_missing_from_the_table_raises():
    core = in_role(R.STANDBY)
    with pytest.raises(RuntimeError, match="cannot happen"):
        core.handle(E.LAPSED, 100.0)  # only a held lease lapses


def test_the_table_covers_what_can_happen_and_nothing_twice():
    for role in Role:
        for event in (E.TICK, E.STOP, E.STALE):
            assert (role, event) in TRANSITIONS, (role, event)


def test_a_standby_polls_five_times_per_ttl_and_takes_a_lapsed_lease():
    core = Leadership(TTL)
    assert core.handle(E.TICK, 10.0) == [Poll(), Schedule(TTL / POLLS_PER_TTL)]
    assert core.handle(E.ACQUIRED, 10.1, term=7, sent=10.0) == [Promote(7)]
    assert (core.role, core.term) == (R.PROMOTING, 7)
    assert core.valid_until == pytest.approx(10.0 + TTL * LOCAL_MARGIN)  # from the send time
    assert not core.serving(10.2)  # loading: nothing is served yet
    assert core.handle(E.PROMOTED, 11.0, term=7) == [Serve(7)]
    assert core.serving(11.0)


def test_the_leader_renews_three_times_per_ttl_and_wakes_when_its_bound_runs_out():
    core = in_role(R.LEADING, term=2, now=100.0)
    core.valid_until = 100.0 + TTL * LOCAL_MARGIN
    assert core.handle(E.TICK, 100.0) == [Renew(2), Schedule(TTL / RENEWALS_PER_TTL)]
    core.valid_until = 100.4
    assert core.handle(E.TICK, 100.0) == [Renew(2), Schedule(pytest.approx(0.4))]
    core.handle(E.RENEWED, 100.1, term=2, sent=100.05)
    assert core.valid_until == pytest.approx(100.05 + TTL * LOCAL_MARGIN)


def test_a_leader_that_cannot_renew_stops_serving_at_its_local_bound_and_releases():
    core = in_role(R.LEADING, term=2, now=100.0)
    assert core.handle(E.LEASE_ERROR, 100.5, reason="timeout") == []
    assert core.serving(100.9)
    assert not core.serving(101.0)  # frames are refused from the bound on, before any tick
    effects = core.handle(E.TICK, 101.0)
    assert effects[0] == StepDown(2, "the lease could not be renewed in time")
    assert Release(2) in effects and core.role is R.STANDBY
    assert core.held is None


def test_a_leader_told_another_term_began_steps_down_without_releasing():
    core = in_role(R.LEADING, term=2)
    effects = core.handle(E.REFUSED, 100.0, term=2)
    assert effects == [StepDown(2, "another coordinator took the lease"), Schedule(TTL / 5)]


def test_a_fenced_store_deposes_the_leader_and_a_late_fence_of_an_old_term_changes_nothing():
    core = in_role(R.LEADING, term=2)
    assert core.handle(E.DEPOSED, 100.0, term=2)[0].reason.startswith("the store refused")
    assert core.role is R.STANDBY
    core.handle(E.ACQUIRED, 101.0, term=5, sent=101.0)
    core.handle(E.PROMOTED, 101.5, term=5)
    assert core.handle(E.DEPOSED, 102.0, term=2) == []  # term 2's store, long gone
    assert core.role is R.LEADING and core.term == 5


def test_a_promotion_that_finishes_after_the_step_down_is_dismantled():
    core = in_role(R.PROMOTING, term=3)
    core.handle(E.REFUSED, 100.0, term=3)
    assert core.handle(E.PROMOTED, 100.5, term=3) == [Dismantle(3)]
    assert core.role is R.STANDBY


def test_stopping_while_promoting_releases_and_dismantles_the_promotion_when_it_ends():
    core = in_role(R.PROMOTING, term=3)
    assert core.handle(E.STOP, 100.0) == [StepDown(3, "stopping"), Release(3)]
    assert core.role is R.STOPPED
    assert core.handle(E.PROMOTED, 100.5, term=3) == [Dismantle(3)]
    assert core.handle(E.TICK, 101.0) == []


def test_a_standby_stopping_has_nothing_to_hand_back():
    core = Leadership(TTL)
    assert core.handle(E.STOP, 1.0) == []
    assert core.role is R.STOPPED


def test_a_failed_promotion_releases_the_lease_for_another_coordinator():
    core = in_role(R.PROMOTING, term=3)
    effects = core.handle(E.PROMOTE_FAILED, 100.0, term=3, reason="cannot read the store")
    assert effects[0] == StepDown(3, "could not open the store: cannot read the store")
    assert Release(3) in effects


def test_role_changes_are_recorded_with_their_reason_for_the_log():
    core = Leadership(TTL)
    core.handle(E.ACQUIRED, 1.0, term=1, sent=1.0)
    core.handle(E.PROMOTED, 1.2, term=1)
    assert [(a.value, b.value) for a, b, _, _ in core.changes] == [
        ("standby", "promoting"),
        ("promoting", "leading"),
    ]
    assert core.changes[0][3] == "took the lease (term 1)"


def test_a_keeper_says_once_why_the_lease_is_unreachable_and_when_it_is_back(caplog):
    from actors.clock import ManualClock
    from actors.store.lease import MemoryLease
    from actors.store.sqlite import StoreError
    from nodes.leadership.keeper import LeaseKeeper

    class Flaky(MemoryLease):
        down = True

        def heartbeat(self, name: str, endpoint: str, role: str) -> None:
            if self.down:
                raise StoreError("cannot connect to the store postgresql://db: refused")
            super().heartbeat(name, endpoint, role)

    class Host:
        def __getattr__(self, name: str):
            return lambda *args: None

    clock = ManualClock()
    lease = Flaky(clock)
    keeper = LeaseKeeper(lease, Host(), name="a", endpoint="tcp://a", ttl=TTL, clock=clock)
    with caplog.at_level("INFO", logger="nodes.leadership.keeper"):
        for _ in range(3):
            keeper._poll()
        lease.down = False
        keeper._poll()
    assert [r.getMessage() for r in caplog.records] == [
        "leadership: cannot connect to the store postgresql://db: refused; retrying",
        "leadership: the lease is reachable again",
    ]
    assert keeper.core.role is R.PROMOTING  # the poll that worked took the free lease
