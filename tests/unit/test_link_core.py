"""The worker's link as a pure core (actors/link): every (state, event) pair of its table, and
the races fixed so far, driven with frames in and effects out (no actors, sockets or clock)."""

from __future__ import annotations

import ast
import itertools
import random
from pathlib import Path
from typing import Any

import pytest

from actors import states
from actors.link.core import LinkCore
from actors.link.effects import Arm, Close, Effect, Open, Send, Tell, TimerKind
from actors.link.table import TRANSITIONS, LinkEvent, LinkState, LinkTransitionError, next_state
from actors.worker_mail import Directive, Jobs, Outcome, Resumed
from actors.worker_settings import WorkerSettings
from transport import codec
from transport.endpoints import Endpoints

S, E = LinkState, LinkEvent
TIMEOUT_S = 30.0
SETTINGS = WorkerSettings(concurrency=2, hostname="h", pid=7, heartbeat_timeout=TIMEOUT_S)


class Link:
    """A LinkCore and what it did: the frames it sent (decoded) and everything else."""

    def __init__(
        self, extensions: tuple[str, ...] = (), addresses: tuple[str, ...] = ("tcp://a:1",)
    ) -> None:
        self.now = 100.0
        self.endpoints = Endpoints((address, None) for address in addresses)
        self.core = LinkCore(SETTINGS, random.Random(1), self.now, self.endpoints)
        self.extensions = list(extensions)
        self.sent: list[dict[str, Any]] = []
        self.effects: list[Effect] = []
        self._ids = itertools.count(1)
        self.take(self.core.start())

    def take(self, effects: list[Effect]) -> list[Effect]:
        for effect in effects:
            if isinstance(effect, Send):
                self.sent.append(codec.decode(effect.frame))
            else:
                self.effects.append(effect)
        return effects

    def last(self, kind: str) -> dict[str, Any]:
        return [body for body in self.sent if body["type"] == kind][-1]

    def answer(self, request: dict[str, Any], **fields: Any) -> list[Effect]:
        kind = "workerregistered" if request["type"] == "hello" else "reply"
        frame = codec.encode({"type": kind, "rid": request["rid"], **fields})
        return self.take(self.core.frame(self.core.link_id, frame, self.now))

    def refuse(self, request: dict[str, Any], code: str, **fields: Any) -> list[Effect]:
        frame = codec.encode({"type": "error", "rid": request["rid"], "code": code, **fields})
        return self.take(self.core.frame(self.core.link_id, frame, self.now))

    def connect(self) -> list[Effect]:
        return self.take(self.core.connect(self.now))

    def welcome(self) -> list[Effect]:
        worker_id = f"w{next(self._ids)}"
        return self.answer(self.last("hello"), worker_id=worker_id, extensions=self.extensions)

    def register(self, resumed: tuple[str, ...] = ()) -> list[Effect]:
        return self.answer(self.last("register"), resumed_job_ids=list(resumed))

    def beat(self, after: float = 0.0, due: bool = True) -> list[Effect]:
        self.now += after
        return self.take(self.core.beat(self.now, due=due))

    def outcome(self, job_id: str, error: dict[str, Any] | None = None) -> list[Effect]:
        return self.take(self.core.outcomes((Outcome(job_id, 1, "r", error),), self.now))

    def hand(self, *job_ids: str) -> list[Effect]:
        jobs = [{"id": job_id, "type": "t", "attempt": 1} for job_id in job_ids]
        return self.answer(self.last("fetch"), jobs=jobs)


def in_state(state: LinkState) -> Link:
    link = Link()
    if state is S.DISCONNECTED:
        return link
    link.connect()
    if state is S.GREETING:
        return link
    link.welcome()
    if state is S.REGISTERING:
        return link
    link.register()
    if state is S.BACKOFF:
        link.beat(after=TIMEOUT_S + 1)
    elif state is S.LEAVING:
        link.take(link.core.leave(link.now))
    return link


def fire(link: Link, event: LinkEvent) -> None:
    """Make `event` happen to the link the way the network, the node or the worker would."""
    core = link.core
    if event is E.CONNECT:
        link.connect()
    elif event is E.WELCOMED:  # in LEAVING: a hello answered after the node left
        link.welcome()
    elif event is E.REGISTERED:
        link.register()
    elif event is E.LOST:
        if core.state is S.LEAVING:
            link.refuse(link.last("deregister"), "not_registered")
        else:
            link.beat(after=TIMEOUT_S + 1)
    elif event is E.DROPPED:
        link.take(core.dropped(core.link_id, link.now))
    elif event is E.LEAVE:
        link.take(core.leave(link.now))
    elif event is E.BEAT:
        link.beat()
    elif event is E.REPLY:
        if core.state is S.LEAVING:
            link.answer(link.last("deregister"))
        else:
            link.beat(due=False)
            link.answer(link.last("beat"), state=states.RUNNING)
    elif event is E.OUTCOMES:
        link.outcome("done-1")
    elif event is E.WORKER:
        link.take(core.worker_changed(link.now, state=states.QUIET))


def ready_for(state: LinkState, event: LinkEvent) -> Link:
    """A link in `state` where `event` can happen."""
    if event is E.WELCOMED and state is S.LEAVING:
        link = in_state(S.GREETING)
        link.take(link.core.leave(link.now))
        return link
    if event is E.REGISTERED and state is S.LEAVING:
        link = in_state(S.REGISTERING)
        link.take(link.core.leave(link.now))
        return link
    return in_state(state)


ALL_PAIRS = list(itertools.product(LinkState, LinkEvent))


@pytest.mark.parametrize(("state", "event"), ALL_PAIRS, ids=lambda x: x.value)
def test_every_state_and_event_does_what_the_table_says(state, event):
    if (state, event) not in TRANSITIONS:
        # A pair missing from the table cannot happen, and raises when it does
        with pytest.raises(LinkTransitionError):
            next_state(state, event)
        return
    link = ready_for(state, event)
    assert link.core.state is state
    fire(link, event)
    expected = TRANSITIONS[(state, event)]
    assert link.core.state is (state if expected is None else expected)


def test_the_link_waits_for_the_node_before_it_connects():
    # Given a started link never told to connect (the worker could not report yet)
    link = Link()
    # When beats fall due long past the heartbeat timeout
    link.beat(after=TIMEOUT_S * 3)
    # Then it opened nothing and sent nothing: it only keeps its beat timer
    assert link.sent == [] and not any(isinstance(e, Open) for e in link.effects)
    assert link.core.state is S.DISCONNECTED


def test_connect_opens_a_new_connection_and_says_hello():
    link = Link()
    effects = link.connect()
    assert isinstance(effects[0], Open)
    assert link.sent == [
        {"type": "hello", "rid": 1, "v": 1, "role": "worker", "hostname": "h", "pid": 7}
    ]


def test_a_hello_answered_after_the_node_left_registers_nothing():
    link = ready_for(S.LEAVING, E.WELCOMED)
    link.welcome()
    assert [body["type"] for body in link.sent] == ["hello"]


def test_registering_after_hello_needs_no_report_from_the_worker():
    link = in_state(S.GREETING)
    effects = link.welcome()
    assert link.last("register")["worker_id"] == "w1"
    assert not any(isinstance(e, Tell) for e in effects)
    assert Arm(TimerKind.BEAT, SETTINGS.heartbeat_interval) in effects


def test_a_beat_reply_that_only_echoes_what_that_beat_reported_is_no_directive():
    # Given a registered link whose beat reported `running`
    link = in_state(S.REGISTERED)
    link.beat(due=False)
    beat = link.last("beat")
    assert beat["state"] == states.RUNNING
    # When the worker is quieted while the beat is on the wire, and the reply echoes `running`
    link.take(link.core.worker_changed(link.now, state=states.QUIET))
    effects = link.answer(beat, state=states.RUNNING, cancel_job_ids=[])
    # Then the worker is told no state, and the link neither fetches nor reports `running`
    assert [e.message for e in effects if isinstance(e, Tell)] == [Directive(None, ())]
    assert link.core.slots.free() == 0
    link.beat(due=False)
    assert link.last("beat")["state"] == states.QUIET


def test_a_beat_reply_with_another_state_directs_the_worker_and_stops_fetching_at_once():
    link = in_state(S.REGISTERED)
    link.beat(due=False)
    effects = link.answer(link.last("beat"), state=states.QUIET, cancel_job_ids=[])
    assert [e.message for e in effects if isinstance(e, Tell)] == [Directive(states.QUIET, ())]
    assert link.core.slots.free() == 0


def test_free_slots_are_counted_from_jobs_handed_outcomes_and_abandoned_handlers():
    # Given a registered link of 2 slots that fetched for both
    link = in_state(S.REGISTERED)
    assert link.last("fetch")["count"] == 2
    # When one job is handed over, the next fetch asks for the one slot left
    effects = link.hand("a")
    assert [e.message for e in effects if isinstance(e, Tell)] == [Jobs([link_job("a")])]
    assert link.last("fetch")["count"] == 1
    link.hand("b")
    assert link.core.slots.free() == 0 and link.core.fetching is False
    # When the coordinator cancels `a`, its handler still holds its thread
    link.beat(due=False)
    link.answer(link.last("beat"), state=states.RUNNING, cancel_job_ids=["a"])
    assert link.core.slots.free() == 0
    assert link.last("beat")["active_job_ids"] == ["a", "b"]  # the beat before the cancel
    # Until the worker says the abandoned handler returned
    link.take(link.core.worker_changed(link.now, released="a"))
    assert link.core.slots.free() == 1 and link.last("fetch")["count"] == 1
    # And a finished job frees its slot, its outcome listed until it is settled
    link.outcome("b")
    link.beat(due=False)
    assert link.last("beat")["active_job_ids"] == ["b"]


def link_job(job_id: str) -> dict[str, Any]:
    return {"id": job_id, "type": "t", "attempt": 1}


def test_a_lost_link_backs_off_and_re_registers_with_the_jobs_it_holds():
    # Given a registered link holding job `a` and the unsettled outcome of `b`
    link = in_state(S.REGISTERED)
    link.hand("a", "b")
    link.outcome("b")  # its ack unanswered
    # When the coordinator answers a beat `not_registered`
    link.beat(due=False)
    effects = link.refuse(link.last("beat"), "not_registered")
    # Then the connection closes and a reconnect is timed at once (first failure)
    assert effects == [Close(), Arm(TimerKind.CONNECT, 0.0)]
    assert link.core.state is S.BACKOFF
    # And the new session registers as the old one's successor, listing both jobs
    link.connect()
    link.welcome()
    register = link.last("register")
    assert (register["worker_id"], register["previous_worker_id"]) == ("w2", "w1")
    assert register["active_job_ids"] == ["a", "b"]
    # When only `a` is resumed, `b`'s outcome is dropped and the worker keeps only `a`
    effects = link.register(resumed=("a",))
    assert Tell(Resumed(frozenset({"a"}), True)) in effects
    assert link.core.reports.unreported == {}


def test_consecutive_failures_back_off_doubling_with_jitter():
    link = in_state(S.GREETING)
    delays = []
    for _ in range(4):
        link.beat(after=TIMEOUT_S + 1)
        delays.append([e.delay for e in link.effects if isinstance(e, Arm)][-1])
        link.connect()
    assert delays[0] == 0.0
    for failures, delay in enumerate(delays[1:], start=1):
        base = SETTINGS.reconnect_initial * 2 ** (failures - 1)
        assert base * 0.5 <= delay <= base


def test_a_late_frame_from_a_dropped_connection_is_ignored():
    link = in_state(S.REGISTERED)
    link.beat(due=False)
    beat = link.last("beat")
    link.beat(after=TIMEOUT_S + 1)
    link.connect()
    frame = codec.encode({"type": "workerregistered", "rid": beat["rid"], "worker_id": "x"})
    assert link.take(link.core.frame(link.core.link_id - 1, frame, link.now)) == []
    assert link.core.state is S.GREETING


def test_at_most_one_outcomes_frame_is_unanswered():
    # Given a coordinator that takes batches
    link = Link(extensions=("outcomes",))
    link.connect()
    link.welcome()
    link.register()
    link.hand("a", "b")
    # When `a` finishes, then `b` while `a`'s frame is out
    link.outcome("a")
    link.outcome("b")
    frames = [body for body in link.sent if body["type"] == "outcomes"]
    assert [[item["job_id"] for item in f["outcomes"]] for f in frames] == [["a"]]
    # Then `b` goes once the first frame is answered
    link.answer(frames[0], results=[{}])
    frames = [body for body in link.sent if body["type"] == "outcomes"]
    assert [[item["job_id"] for item in f["outcomes"]] for f in frames] == [["a"], ["b"]]


def test_outcomes_are_kept_while_disconnected_and_reported_once_registered():
    link = Link()
    link.outcome("a")
    assert link.sent == []
    link.connect()
    link.welcome()
    link.register()
    assert link.last("ack")["job_id"] == "a"


def test_leaving_deregisters_and_never_reconnects():
    link = in_state(S.REGISTERED)
    link.take(link.core.leave(link.now))
    assert link.last("deregister")["worker_id"] == "w1"
    link.refuse(link.last("deregister"), "not_registered")
    link.beat(after=TIMEOUT_S * 3)
    assert link.core.state is S.LEAVING
    assert not any(isinstance(e, Arm) and e.timer is TimerKind.CONNECT for e in link.effects)


PURE_MODULES = ("core", "table", "effects", "outcomes", "requests", "session", "slots")
IMPURE = ("pykka", "threading", "time", "socket", "zmq", "actors.clock", "actors.base")


@pytest.mark.parametrize("module", PURE_MODULES)
def test_the_core_touches_no_actor_thread_socket_or_clock(module):
    path = Path(__file__).resolve().parents[2] / "actors" / "link" / f"{module}.py"
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    assert not [n for n in names if any(n == i or n.startswith(i + ".") for i in IMPURE)]


def test_no_beat_carries_an_old_id_and_the_successor_names_the_last_registered_session():
    # Given a link registered as w1 that is lost, then gets w2 but is lost before registering
    link = in_state(S.REGISTERED)
    link.beat(after=TIMEOUT_S + 1)
    link.connect()
    link.beat(due=False)  # before workerregistered: no id to beat with
    assert [body["type"] for body in link.sent].count("beat") == 0
    link.welcome()
    link.beat(after=TIMEOUT_S + 1)
    # When w3 registers
    link.connect()
    link.welcome()
    # Then it succeeds w1 (w2 never held a job)
    assert (link.last("register")["worker_id"], link.last("register")["previous_worker_id"]) == (
        "w3",
        "w1",
    )


def test_expired_fetches_and_acks_are_sent_again_and_an_expired_register_reconnects():
    # Given a registered link whose fetch and ack go unanswered
    link = in_state(S.REGISTERED)
    link.hand("a")
    link.outcome("a")
    fetch, ack = link.last("fetch"), link.last("ack")
    # When their replies are overdue (other frames still arrive: no silence)
    link.now += TIMEOUT_S + SETTINGS.fetch_wait + 1
    link.core.last_reply = link.now
    link.beat()
    # Then both are sent again under new rids
    assert link.last("fetch")["rid"] != fetch["rid"]
    assert (link.last("ack")["job_id"], link.last("ack")["rid"] != ack["rid"]) == ("a", True)
    # And a register that is never answered starts a new connection
    link = in_state(S.REGISTERING)
    link.now += TIMEOUT_S + 1
    link.core.last_reply = link.now
    link.beat()
    assert link.core.state is S.BACKOFF


def test_a_fetch_answered_after_the_node_left_still_hands_its_jobs_to_the_worker():
    """Graceful stop: a job handed out as the worker began to stop must run, not be lost."""
    link = in_state(S.REGISTERED)
    fetch = link.last("fetch")
    link.take(link.core.leave(link.now))
    effects = link.answer(fetch, jobs=[link_job("a")])
    assert [e.message for e in effects if isinstance(e, Tell)] == [Jobs([link_job("a")])]
    assert [body["type"] for body in link.sent].count("fetch") == 1


def test_outcomes_refused_as_a_whole_are_reported_one_by_one_for_the_rest_of_the_session():
    link = Link(extensions=("outcomes",))
    link.connect()
    link.welcome()
    link.register()
    link.hand("a")
    link.outcome("a")
    link.refuse(link.last("outcomes"), "bad_request")
    assert link.last("ack")["job_id"] == "a"
    link.answer(link.last("ack"))
    assert link.core.reports.unreported == {}


def test_a_result_too_large_for_any_frame_ends_its_job_as_result_too_large():
    link = Link(extensions=("outcomes",))
    link.connect()
    link.answer(link.last("hello"), worker_id="w1", extensions=["outcomes"], max_message_size=300)
    link.register()
    link.hand("a")
    link.take(link.core.outcomes((Outcome("a", 1, "x" * 1000),), link.now))
    [item] = link.last("outcomes")["outcomes"]
    assert (item["job_id"], item["error"]["type"]) == ("a", "ResultTooLarge")


# -- several coordinator endpoints: one leader, standbys answering not_leader -----------------

A, B, C = "tcp://a:1", "tcp://b:1", "tcp://c:1"


def connect_delay(effects: list[Effect]) -> float:
    [delay] = [e.delay for e in effects if isinstance(e, Arm) and e.timer is TimerKind.CONNECT]
    return delay


@pytest.mark.parametrize("state", [S.GREETING, S.REGISTERING, S.REGISTERED])
def test_not_leader_moves_at_once_to_the_endpoint_the_standby_names(state):
    # Given a link to A, B and C, in `state` on A
    link = Link(addresses=(A, B, C))
    link.connect()
    if state is not S.GREETING:
        link.welcome()
    if state is S.REGISTERED:
        link.register()
    request = link.sent[-1]
    # When A answers not_leader and names C
    effects = link.refuse(request, "not_leader", leader=C)
    # Then the connection closes and the next one, to C, is opened at once
    assert effects[0] == Close() and connect_delay(effects) == 0.0
    assert (link.core.state, link.endpoints.address) == (S.BACKOFF, C)
    link.connect()
    assert link.sent[-1]["type"] == "hello"


def test_not_leader_while_registered_re_registers_with_the_leader_and_keeps_the_jobs():
    # Given a worker registered on A holding job `a` and the unsettled outcome of `b`
    link = Link(addresses=(A, B))
    link.connect()
    link.welcome()
    link.register()
    link.hand("a", "b")
    link.outcome("b")
    # When A stepped down (answers a beat not_leader) and B is the leader
    link.beat(due=False)
    link.refuse(link.last("beat"), "not_leader", leader=B)
    link.connect()
    link.welcome()
    # Then it registers on B as w1's successor, holding both jobs, so they are resumed
    register = link.last("register")
    assert (register["previous_worker_id"], register["active_job_ids"]) == ("w1", ["a", "b"])
    assert link.endpoints.address == B


def test_without_a_usable_hint_the_endpoints_are_tried_in_order_and_wrap_around():
    link = Link(addresses=(A, B, C))
    tried = [link.endpoints.address]
    for hint in (None, "tcp://unknown:1", None, A):  # not one of ours, then the current one
        link.connect()
        link.refuse(link.last("hello"), "not_leader", **({"leader": hint} if hint else {}))
        tried.append(link.endpoints.address)
    assert tried == [A, B, C, A, B]


def test_failures_back_off_only_after_a_whole_round_of_endpoints_failed():
    # Given three endpoints where no hello is ever answered
    link = Link(addresses=(A, B, C))
    delays = []
    for _ in range(7):
        effects = link.connect()
        # Then each hello gives up after hello_timeout, not heartbeat_timeout
        assert Arm(TimerKind.BEAT, SETTINGS.hello_timeout) in effects
        delays.append(connect_delay(link.beat(after=SETTINGS.hello_timeout)))
    # And the next endpoint is tried at once until a round failed, then 1 s, 2 s (jittered)
    assert delays[:3] == [0.0, 0.0, 0.0] and delays[4:6] == [0.0, 0.0]
    assert 0.5 <= delays[3] <= 1.0 and 1.0 <= delays[6] <= 2.0
    # When one registers, the next loss moves on at once again
    link.connect()
    link.welcome()
    link.register()
    assert connect_delay(link.take(link.core.dropped(link.core.link_id, link.now))) == 0.0


def test_rounds_in_which_a_standby_answered_keep_the_first_delay_while_a_takeover_runs():
    # Given two endpoints: A silent (its leader died), B a standby answering not_leader
    link = Link(addresses=(A, B))
    delays = []
    for _ in range(8):
        link.connect()
        if link.endpoints.address == A:
            delays.append(connect_delay(link.beat(after=SETTINGS.hello_timeout)))
        else:
            delays.append(connect_delay(link.refuse(link.last("hello"), "not_leader")))
    # Then each round that met the standby waits about the first delay, never doubling it
    # (a takeover is under way: the worker must be back within the resume window)
    # (the delay comes after each whole round, before its first endpoint is tried again)
    assert delays[0] == 0.0 and delays[1::2] == [0.0] * 4
    assert all(0.5 <= d <= 1.0 for d in delays[2::2]), delays
    # And rounds where nobody answered double it as before
    silent = Link(addresses=(A, B))
    for _ in range(5):
        silent.connect()
        last = connect_delay(silent.beat(after=SETTINGS.hello_timeout))
    assert 1.0 <= last <= 2.0  # the second round's delay: twice the first


def test_a_single_endpoint_waits_heartbeat_timeout_for_its_hello_as_before():
    link = in_state(S.GREETING)
    assert not [e for e in link.effects if e == Arm(TimerKind.BEAT, SETTINGS.hello_timeout)]
    link.beat(after=SETTINGS.hello_timeout + 0.1)
    assert link.core.state is S.GREETING


def test_a_dropped_connection_is_a_loss_at_once_and_a_late_drop_of_an_old_one_is_not():
    # Given a link registered on A
    link = Link(addresses=(A, B))
    link.connect()
    link.welcome()
    link.register()
    old = link.core.link_id
    # When the transport sees A's connection drop (its coordinator was killed)
    link.take(link.core.dropped(old, link.now))
    # Then the link moves on to B at once
    assert (link.core.state, link.endpoints.address) == (S.BACKOFF, B)
    # And once connected to B, a late drop report of A's connection changes nothing
    link.connect()
    assert link.take(link.core.dropped(old, link.now)) == []
    assert link.core.state is S.GREETING
