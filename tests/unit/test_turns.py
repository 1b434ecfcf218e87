"""Handler threads taking turns (actors/turns.py): one runs at a time, in the FIFO's order; a
sleeper gives the turn back and rejoins at the back when woken; a waiting handler is no
Activity; a handler that raises anything still passes the turn on."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from actors.base import Activity
from actors.pool import Wakeup
from actors.turns import Turns

WAIT_S = 5.0


@pytest.fixture
def activity() -> Activity:
    return Activity()


@pytest.fixture
def turns(activity: Activity) -> Turns:
    return Turns(activity)


def quiesce(turns: Turns, activity: Activity) -> None:
    """What Cluster.settle waits for before the next step."""
    assert turns.wait_free(WAIT_S) and activity.wait_idle(WAIT_S)


def run_all(turns: Turns, activity: Activity) -> None:
    quiesce(turns, activity)
    while turns.grant_next():
        quiesce(turns, activity)


def submit(turns: Turns, activity: Activity, executor, task: Callable[[], None]) -> None:
    """As WorkerActor does: the handler counts as activity from submission to its end."""

    def counted() -> None:
        try:
            task()
        finally:
            activity.end()

    activity.begin()
    executor.submit(counted)


def test_handlers_wait_uncounted_then_run_one_at_a_time_in_submission_order(turns, activity):
    executor = turns.executor()
    ran: list[str] = []
    running = threading.Semaphore(1)  # taken by a second handler running at once: it fails

    def handler(name: str) -> Callable[[], None]:
        def run() -> None:
            assert running.acquire(blocking=False), "two handlers ran at once"
            ran.append(name)
            running.release()

        return run

    for name in "abcde":
        submit(turns, activity, executor, handler(name))
    assert turns.waiting == 5 and activity.busy == 0  # waiting is not work in progress
    assert ran == []

    assert turns.grant_next()
    quiesce(turns, activity)
    assert ran == ["a"] and turns.waiting == 4
    run_all(turns, activity)
    assert ran == list("abcde")
    assert not turns.grant_next()


def test_a_sleeper_gives_the_turn_back_and_rejoins_at_the_back_in_wake_order(turns, activity):
    executor, other = turns.executor(), turns.executor()  # two workers share one rotation
    ran: list[str] = []
    wakeups: dict[str, Wakeup] = {}

    def sleeper(name: str) -> Callable[[], None]:
        def run() -> None:  # what JobContext.sleep does around its Wakeup
            ran.append(f"{name} sleeps")
            wakeup = wakeups[name] = executor.event()
            wakeup.clear()
            activity.end()
            wakeup.wait()
            ran.append(f"{name} woke")

        return run

    submit(turns, activity, executor, sleeper("a"))
    submit(turns, activity, other, sleeper("b"))
    submit(turns, activity, executor, lambda: ran.append("c"))
    assert turns.grant_next()
    quiesce(turns, activity)
    assert turns.grant_next()
    quiesce(turns, activity)
    assert ran == ["a sleeps", "b sleeps"] and turns.waiting == 1  # both asleep, c waits

    for name in ("b", "a"):  # woken as a timer or a cancel would: counted, then set
        activity.begin()
        wakeups[name].set()
    wakeups["a"].set()  # a second wake of one sleep changes nothing
    assert turns.waiting == 3 and activity.busy == 0
    run_all(turns, activity)
    assert ran == ["a sleeps", "b sleeps", "c", "b woke", "a woke"]


@pytest.mark.parametrize("error", [ZeroDivisionError, SystemExit, KeyboardInterrupt])
def test_a_handler_that_raises_anything_passes_the_turn_on(turns, activity, error):
    executor = turns.executor()
    ran: list[str] = []

    def fail() -> None:
        ran.append("raised")
        raise error

    submit(turns, activity, executor, fail)
    submit(turns, activity, executor, lambda: ran.append("next"))
    run_all(turns, activity)
    assert ran == ["raised", "next"]
    executor.shutdown()


def test_a_turn_is_never_granted_while_one_is_held(turns, activity):
    executor = turns.executor()
    release = threading.Event()
    submit(turns, activity, executor, lambda: release.wait(WAIT_S))
    submit(turns, activity, executor, lambda: None)
    assert turns.grant_next()
    try:
        with pytest.raises(RuntimeError):
            turns.grant_next()
    finally:
        release.set()
    run_all(turns, activity)
    assert turns.waiting == 0


def test_once_closed_every_waiting_handler_runs_on_and_no_turn_is_granted(turns, activity):
    executor = turns.executor()
    ran = threading.Semaphore(0)
    wakeup: list[Wakeup] = []

    def sleeper() -> None:
        wakeup.append(executor.event())
        activity.end()
        wakeup[0].wait()  # never woken: closing lets it go on
        ran.release()

    submit(turns, activity, executor, sleeper)
    submit(turns, activity, executor, ran.release)
    assert turns.grant_next()
    quiesce(turns, activity)
    turns.close()
    assert ran.acquire(timeout=WAIT_S) and ran.acquire(timeout=WAIT_S)
    assert not turns.grant_next()
