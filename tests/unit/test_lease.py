"""The lease (actors.store.lease) over memory and over PostgreSQL, one suite for both: who may
take it and when, renewing and stepping down, the term every taking bumps, the member rows,
exactly one winner among standbys racing, and (PostgreSQL) a call on a frozen or unreachable
server failing within its bound."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from actors.clock import ManualClock
from actors.store.lease import MEMBER_EXPIRY_S, Lease, MemoryLease
from actors.store.postgres_lease import CALL_BOUND_S, PostgresLease
from actors.store.sqlite import StoreError
from tests.conftest import wait_for

TTL_S = 0.5  # short: PostgreSQL's lease lapses in real time
BOUND_MARGIN_S = 1.0  # a loaded machine's scheduling on top of CALL_BOUND_S


class Leases:
    """Opens leases on one database (every coordinator its own, as in production; in memory
    one shared instance) and lets time pass on the lease's one clock."""

    def __init__(self, kind: str, url: str = "") -> None:
        self.kind, self.url = kind, url
        self.clock = ManualClock()
        self.memory = MemoryLease(self.clock)
        self.opened: list[Any] = []

    def open(self) -> Lease:
        if self.kind == "memory":
            return self.memory
        lease = PostgresLease(self.url)
        self.opened.append(lease)
        return lease

    def lapse(self, lease: Lease) -> None:
        """Let time pass until the lease lapsed."""
        if self.kind == "memory":
            self.clock.advance(TTL_S)
        else:
            wait_for(lambda: lease.read().expires_in <= 0, 10 * TTL_S, what="the lease lapses")

    def age_members(self, seconds: float) -> None:
        """Make every member row look `seconds` older."""
        if self.kind == "memory":
            self.clock.advance(seconds)
        else:
            with psycopg.connect(self.url, autocommit=True) as connection:
                connection.execute(
                    "UPDATE corral_members SET seen_at = seen_at - make_interval(secs => %s)",
                    [seconds],
                )


@pytest.fixture(params=["memory", "postgresql"])
def leases(request) -> Iterator[Leases]:
    url = request.getfixturevalue("postgres").database() if request.param == "postgresql" else ""
    kinds = Leases(request.param, url)
    yield kinds
    for lease in kinds.opened:
        lease.close()


def test_a_lease_never_held_has_term_zero_no_holder_and_is_lapsed(leases):
    view = leases.open().read()
    assert (view.term, view.holder, view.endpoint, view.members) == (0, None, None, ())
    assert view.expires_in <= 0


def test_the_first_to_acquire_holds_the_lease_and_others_get_nothing_until_it_lapses(leases):
    a, b = leases.open(), leases.open()
    assert a.try_acquire("a", "tcp://a:5555", TTL_S) == 1
    assert b.try_acquire("b", "tcp://b:5555", TTL_S) is None
    assert a.try_acquire("a", "tcp://a:5555", TTL_S) is None  # held, even by itself
    view = b.read()
    assert (view.term, view.holder, view.endpoint) == (1, "a", "tcp://a:5555")
    assert 0 < view.expires_in <= TTL_S


def test_renewing_extends_the_lease_only_for_its_holder_in_its_current_term(leases):
    a, b = leases.open(), leases.open()
    term = a.try_acquire("a", "tcp://a", TTL_S)
    assert term == 1
    assert a.renew("a", term, 60.0)
    assert 0.5 * 60.0 < a.read().expires_in <= 60.0
    assert not b.renew("b", term, 60.0)  # not the holder
    assert not a.renew("a", term + 1, 60.0)  # not the current term


def test_a_lapsed_lease_goes_to_whoever_asks_first_in_a_new_term_and_the_old_term_is_over(
    leases,
):
    a, b = leases.open(), leases.open()
    assert a.try_acquire("a", "tcp://a", TTL_S) == 1
    leases.lapse(a)
    assert b.try_acquire("b", "tcp://b", TTL_S) == 2
    assert not a.renew("a", 1, TTL_S)  # the deposed holder learns it
    assert b.read().holder == "b"
    leases.lapse(b)
    assert b.try_acquire("b", "tcp://b", TTL_S) == 3  # taking it back is a new term too


def test_a_released_lease_lapses_at_once_and_a_stale_release_changes_nothing(leases):
    a, b = leases.open(), leases.open()
    assert a.try_acquire("a", "tcp://a", 60.0) == 1
    a.release("a", 1)
    assert b.read().expires_in <= 0
    assert b.try_acquire("b", "tcp://b", 60.0) == 2
    a.release("a", 1)  # a's term is over: b keeps its lease
    b.release("a", 2)  # and only b may give it up
    assert a.try_acquire("a", "tcp://a", 60.0) is None
    assert b.read().expires_in > 30.0


def test_members_are_listed_by_name_with_their_role_and_dropped_after_a_minute_unseen(leases):
    a, b = leases.open(), leases.open()
    a.heartbeat("a", "tcp://a", "standby")
    b.heartbeat("b", "tcp://b", "standby")
    a.heartbeat("a", "tcp://a", "leader")
    members = b.read().members
    assert [(m.name, m.endpoint, m.role) for m in members] == [
        ("a", "tcp://a", "leader"),
        ("b", "tcp://b", "standby"),
    ]
    assert all(0 <= m.seen_ago < 5.0 for m in members)
    leases.age_members(MEMBER_EXPIRY_S - 10)
    b.heartbeat("b", "tcp://b", "standby")
    leases.age_members(20)
    assert [m.name for m in a.read().members] == ["b"]  # a was unseen for over a minute
    a.heartbeat("a", "tcp://a", "standby")
    assert [m.name for m in a.read().members] == ["a", "b"]


def test_of_eight_standbys_racing_for_a_lapsed_lease_exactly_one_wins_each_time(leases):
    racers = [leases.open() for _ in range(8)]
    for round_ in range(1, 6):
        start = threading.Barrier(len(racers))
        won: list[int | None] = [None] * len(racers)

        def race(n: int, start: threading.Barrier, won: list[int | None]) -> None:
            start.wait(10)
            won[n] = racers[n].try_acquire(f"c{n}", f"tcp://c{n}", 60.0)

        threads = [
            threading.Thread(target=race, args=(n, start, won)) for n in range(len(racers))
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        winners = [n for n, term in enumerate(won) if term is not None]
        assert len(winners) == 1, won
        assert won[winners[0]] == round_
        assert racers[0].read().holder == f"c{winners[0]}"
        racers[winners[0]].release(f"c{winners[0]}", round_)


# -- the lease's promise, over any schedule -------------------------------------------------------

COORDINATORS = ("a", "b", "c")


class LeaseModel(RuleBasedStateMachine):
    """Coordinators acquire, renew, release and wait in any order. Each believes it leads
    until the deadline its last successful acquire or renew gave it (by the lease's clock):
    never do two believe it at once, and terms only grow."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = ManualClock()
        self.lease = MemoryLease(self.clock)
        self.belief: dict[str, tuple[int, float]] = {}  # who -> (term, leads until)
        self.terms: list[int] = []

    @rule(who=st.sampled_from(COORDINATORS), ttl=st.floats(0.1, 10.0))
    def acquire(self, who: str, ttl: float) -> None:
        term = self.lease.try_acquire(who, f"tcp://{who}", ttl)
        if term is not None:
            assert not self.terms or term == self.terms[-1] + 1
            self.terms.append(term)
            self.belief[who] = (term, self.clock.now() + ttl)

    @rule(who=st.sampled_from(COORDINATORS), ttl=st.floats(0.1, 10.0))
    def renew(self, who: str, ttl: float) -> None:
        if who in self.belief:
            term = self.belief[who][0]
            if self.lease.renew(who, term, ttl):
                self.belief[who] = (term, self.clock.now() + ttl)
            else:
                assert term != self.terms[-1]
                del self.belief[who]

    @rule(who=st.sampled_from(COORDINATORS))
    def release(self, who: str) -> None:
        if who in self.belief:
            self.lease.release(who, self.belief.pop(who)[0])

    @rule(seconds=st.floats(0.0, 6.0))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def at_most_one_coordinator_believes_it_leads(self) -> None:
        now = self.clock.now()
        leading = [who for who, (_, until) in self.belief.items() if until > now]
        assert len(leading) <= 1, leading

    @invariant()
    def the_lease_shows_the_last_term_granted(self) -> None:
        assert self.lease.read().term == (self.terms[-1] if self.terms else 0)


LeaseModel.TestCase.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)
test_no_two_coordinators_ever_believe_they_lead_at_once = LeaseModel.TestCase


# -- PostgreSQL: calls end within their bound -----------------------------------------------------


def cluster_pids(postmaster: int) -> list[int]:
    """The postmaster and every process it started (its backends hold our connections)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == postmaster:
            children.append(int(stat.parent.name))
    return [postmaster, *children]


@contextmanager
def frozen(postmaster: int) -> Iterator[None]:
    """The whole cluster stopped by SIGSTOP, as a paused VM or a hung server would be."""
    pids = cluster_pids(postmaster)
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)


def timed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except StoreError as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_call_on_a_frozen_server_fails_within_its_bound_and_the_next_one_reconnects(postgres):
    lease = PostgresLease(postgres.database())
    try:
        term = lease.try_acquire("a", "tcp://a", 60.0)
        assert term == 1
        assert postgres.pid is not None
        with frozen(postgres.pid):
            took, error = timed(lambda: lease.renew("a", term, 60.0))  # on the open connection
            assert error is not None and took < CALL_BOUND_S + BOUND_MARGIN_S, took
            assert "the lease in the store postgresql://" in str(error)
            took, error = timed(lambda: lease.renew("a", term, 60.0))  # connecting anew
            assert error is not None and took < CALL_BOUND_S + BOUND_MARGIN_S, took
            assert "cannot connect to the store postgresql://" in str(error)
        assert lease.renew("a", term, 60.0)  # thawed: a new connection, the same lease
    finally:
        lease.close()


def test_an_unreachable_server_fails_at_once_naming_the_database_without_its_password(postgres):
    url = f"postgresql://corral:s3cret@127.0.0.1:{postgres.port + 1}/nowhere"
    took, error = timed(lambda: PostgresLease(url))
    assert error is not None and took < CALL_BOUND_S + BOUND_MARGIN_S
    assert "postgresql://corral:***@127.0.0.1" in str(error) and "s3cret" not in str(error)
