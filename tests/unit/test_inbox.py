"""The actor inbox (actors/inbox.py): a tell to an idle actor runs on the sender's thread, and
the actor rules hold whoever runs it: one message at a time, each sender's in order."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pykka
import pytest

from actors import base, inbox
from actors.base import Activity, CorralActor, Mailbox

WAIT_S = 5.0


@dataclass(frozen=True)
class Note:
    sender: str
    n: int


@dataclass(frozen=True)
class Hold:
    """Handled by waiting until `release` is set (with a deadline)."""

    started: threading.Event
    release: threading.Event


@dataclass(frozen=True)
class Relay:
    """Tell `to` the message `inner` from inside this handler."""

    to: Mailbox
    inner: Any


@dataclass(frozen=True)
class Echo:
    """Tell `back` a Note from inside this handler."""

    back: Mailbox


@dataclass(frozen=True)
class Crash:
    """Handled by raising `error` (a BaseException that is not an Exception, say)."""

    error: BaseException


@dataclass(frozen=True)
class Repeat:
    """Tell itself `times` Notes from inside this handler."""

    times: int


class Recorder(CorralActor):
    """Records what it handled, on which thread, and whether two handlers ever overlapped."""

    def __init__(self, activity: Activity, name: str) -> None:
        super().__init__(activity)
        self.name = name
        self.log: list[tuple[str, Any, str]] = []  # (actor, message, thread name)
        self.overlaps = 0
        self._busy = False
        self._lock = threading.Lock()

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {Note: self._record, Hold: self._hold, Relay: self._relay, Echo: self._echo,
                Repeat: self._repeat, Crash: self._crash}  # fmt: skip

    def _record(self, message: Any) -> None:
        with self._lock:
            if self._busy:
                self.overlaps += 1
            self._busy = True
        self.log.append((self.name, message, threading.current_thread().name))
        with self._lock:
            self._busy = False

    def _hold(self, message: Hold) -> None:
        message.started.set()
        message.release.wait(WAIT_S)
        self._record(message)

    def _relay(self, message: Relay) -> None:
        message.to.tell(message.inner)
        self._record(message)

    def _echo(self, message: Echo) -> None:
        message.back.tell(Note(self.name, 0))
        self._record(message)

    def _repeat(self, message: Repeat) -> None:
        mailbox = self.mailbox()
        for n in range(message.times):
            mailbox.tell(Note(self.name, n))

    def _crash(self, message: Crash) -> None:
        raise message.error

    def handled(self) -> list[Any]:
        return [message for _, message, _ in self.log]

    def thread_name(self) -> str:
        return threading.current_thread().name


class OwnThreadRecorder(Recorder):
    inline_tells = False


@pytest.fixture
def activity() -> Activity:
    return Activity()  # counts every tell, so wait_idle() means everything was handled


@pytest.fixture
def spawn(activity: Activity) -> Iterator[Callable[..., tuple[Mailbox, Recorder]]]:
    started: list[Mailbox] = []

    def make(name: str, kind: type[Recorder] = Recorder) -> tuple[Mailbox, Recorder]:
        ref = kind.start(activity, name)
        started.append(base.Mailbox(ref, activity))
        actor = ref._actor_weakref()  # the test reads what the actor recorded
        assert actor is not None
        return started[-1], actor

    yield make
    for mailbox in started:
        mailbox.stop()


def idle(activity: Activity) -> None:
    assert activity.wait_idle(WAIT_S), "the actors did not finish in time"


def test_a_tell_to_an_idle_actor_runs_before_tell_returns_on_the_senders_thread(spawn):
    mailbox, actor = spawn("a")
    mailbox.tell(Note("test", 1))
    assert actor.log == [("a", Note("test", 1), threading.current_thread().name)]


def test_tells_to_a_busy_actor_wait_and_are_handled_in_order_by_another_thread(spawn, activity):
    mailbox, actor = spawn("a")
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: mailbox.tell(Hold(started, release)))
    holder.start()
    assert started.wait(WAIT_S)
    for n in range(3):
        mailbox.tell(Note("test", n))  # returns at once: the actor is busy
    assert actor.handled() == []
    release.set()
    holder.join(WAIT_S)
    idle(activity)
    assert actor.handled()[1:] == [Note("test", 0), Note("test", 1), Note("test", 2)]
    assert threading.current_thread().name not in {thread for _, _, thread in actor.log}


def test_each_senders_tells_are_handled_in_its_order_and_never_two_at_a_time(spawn, activity):
    mailbox, actor = spawn("a")
    senders = [f"s{i}" for i in range(4)]

    def send(sender: str) -> None:
        for n in range(300):
            mailbox.tell(Note(sender, n))

    threads = [threading.Thread(target=send, args=(sender,)) for sender in senders]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    idle(activity)
    assert actor.overlaps == 0
    for sender in senders:
        assert [m.n for m in actor.handled() if m.sender == sender] == list(range(300))


def test_a_tell_back_from_inside_a_handler_runs_after_that_handler_on_the_same_thread(spawn):
    a_mailbox, a = spawn("a")
    b_mailbox, b = spawn("b")
    relay = Relay(b_mailbox, Echo(a_mailbox))
    a_mailbox.tell(relay)  # a tells b, which tells a back while a is still busy
    here = threading.current_thread().name
    assert b.log == [("b", Echo(a_mailbox), here)]
    assert a.log == [("a", relay, here), ("a", Note("b", 0), here)]


def test_a_holder_hands_what_it_cannot_drain_to_the_actors_own_thread_in_order(spawn, activity):
    mailbox, actor = spawn("a")
    times = inbox.DRAIN_LIMIT * 2
    mailbox.tell(Repeat(times))
    idle(activity)
    assert [m.n for m in actor.handled()] == list(range(times))
    threads = {thread for _, _, thread in actor.log}
    assert threading.current_thread().name in threads and len(threads) == 2


def test_an_ask_is_handled_on_the_actors_own_thread(spawn):
    mailbox, _ = spawn("a")
    mailbox.tell(Note("test", 1))
    thread = mailbox._ref.proxy().thread_name().get(timeout=WAIT_S)
    assert thread != threading.current_thread().name
    assert thread.startswith("Recorder")  # pykka names an actor's thread after its class


def test_a_posted_message_is_handled_on_the_actors_own_thread_even_when_it_is_idle(spawn, activity):
    mailbox, actor = spawn("a")
    mailbox.post(Note("test", 1))
    idle(activity)
    assert actor.handled() == [Note("test", 1)]
    assert actor.log[0][2] != threading.current_thread().name


def test_an_actor_that_opts_out_handles_every_tell_on_its_own_thread(spawn, activity):
    mailbox, actor = spawn("a", OwnThreadRecorder)
    mailbox.tell(Note("test", 1))
    idle(activity)
    assert actor.handled() == [Note("test", 1)]
    assert actor.log[0][2] != threading.current_thread().name


def test_no_tell_runs_before_the_actor_has_started(spawn, activity):
    gate = threading.Event()

    class SlowStart(Recorder):
        def on_start(self) -> None:
            gate.wait(WAIT_S)

    mailbox, actor = spawn("a", SlowStart)
    mailbox.tell(Note("test", 1))
    assert actor.handled() == []  # queued: the run lock is held until on_start is done
    gate.set()
    idle(activity)
    assert actor.handled() == [Note("test", 1)]


def test_a_tell_to_a_stopped_actor_is_dropped_and_settles_its_count(spawn, activity):
    mailbox, actor = spawn("a")
    mailbox.stop()
    mailbox.tell(Note("test", 1))
    idle(activity)
    assert actor.handled() == []


def stopped(mailbox: Mailbox) -> bool:
    """Whether the actor stops within the deadline (its thread is gone, its ref dead)."""
    return mailbox._ref.actor_stopped.wait(WAIT_S) and not mailbox.alive


# -- pykka's own answers to a BaseException in a handler and to asks left at stop ------------


def test_a_base_exception_in_an_inline_tell_stops_the_actor_and_all_actors_not_the_sender(spawn):
    mailbox, actor = spawn("a")
    other, _ = spawn("b")
    mailbox.tell(Crash(SystemExit(3)))  # handled on this thread; the sender carries on
    assert stopped(mailbox), "pykka stops an actor whose handler raised a BaseException"
    assert stopped(other), "and, as pykka does, every other actor"
    mailbox.tell(Note("test", 1))
    assert actor.handled() == []


def test_a_base_exception_on_the_actors_own_thread_stops_it_and_all_actors(spawn, activity):
    mailbox, actor = spawn("a")
    other, _ = spawn("b")
    mailbox.post(Crash(KeyboardInterrupt()))
    mailbox.post(Note("test", 1))  # queued behind the crash: never handled
    assert stopped(mailbox) and stopped(other)
    idle(activity)
    assert actor.handled() == []


def test_an_ask_whose_handler_raises_a_base_exception_gets_it_instead_of_hanging(spawn):
    mailbox, _ = spawn("a")
    future = mailbox._ref.ask(Crash(SystemExit(3)), block=False)
    with pytest.raises(SystemExit):
        future.get(timeout=WAIT_S)
    assert stopped(mailbox)


def test_asks_still_queued_when_the_actor_stops_get_actor_dead_error_not_none(spawn, activity):
    mailbox, _ = spawn("a")
    started, release = threading.Event(), threading.Event()
    holder = threading.Thread(target=lambda: mailbox.tell(Hold(started, release)))
    holder.start()
    assert started.wait(WAIT_S)
    stop = mailbox._ref.stop(block=False)
    left = mailbox._ref.ask(Note("test", 1), block=False)  # queued behind the stop
    mailbox.tell(Note("test", 2))
    release.set()
    holder.join(WAIT_S)
    assert stop.get(timeout=WAIT_S) is True
    with pytest.raises(pykka.ActorDeadError):
        left.get(timeout=WAIT_S)
    idle(activity)  # the queued tell's count is settled too


# -- the inbox alone, with the actor's thread played by the test -----------------------------


def bare_inbox() -> tuple[inbox.InlineInbox, list[Any]]:
    handled: list[Any] = []
    box = inbox.InlineInbox()
    box.bind(lambda envelope: handled.append(envelope.message), lambda: False)
    box.run_lock.release()  # as the actor's thread does once on_start has run
    return box, handled


def test_a_tell_never_overtakes_one_queued_before_it_even_when_the_actor_is_free():
    box, handled = bare_inbox()
    with box.run_lock:  # the actor's thread is busy: "first" waits in the queue
        box.put(inbox.Letter("first"))
    box.put(inbox.Letter("second"))  # the lock is free now, but "first" is still queued
    assert handled == []
    box.run_queued()  # the actor's thread wakes and takes both, in order
    assert handled == ["first", "second"]


def test_a_holder_leaves_an_ask_and_what_follows_it_to_the_actors_thread():
    box, handled = bare_inbox()
    ask = inbox.Letter("ask")
    ask.reply_to = object()  # an ask's envelope carries the future its answer goes to
    with box.run_lock:
        box.put(ask)
    box.put(inbox.Letter("tell"))
    assert handled == []
    box.run_queued()
    assert handled == ["ask", "tell"]
