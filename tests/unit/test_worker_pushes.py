"""The WorkerActor pushes what the link needs when it changes: its state (also after every
directive that names one, so the link's provisional copy is corrected) and the return of an
abandoned handler (`Released`); it is never asked for a report."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

from actors import states
from actors.base import Untracked
from actors.clock import SystemClock
from actors.worker import WorkerActor
from actors.worker_mail import Directive, Jobs, Outcomes, Released, WorkerState
from tests.conftest import wait_for


class Link:
    def __init__(self) -> None:
        self.told: list[Any] = []

    def tell(self, message: Any) -> None:
        self.told.append(message)


@pytest.fixture
def worker() -> Iterator[tuple[Any, Link, threading.Event]]:
    release = threading.Event()
    handlers = {"wait": lambda: release.wait(5.0), "now": lambda: 1}
    ref = WorkerActor.start(Untracked(), handlers, 2, SystemClock())
    link = Link()
    ref.proxy().attach(link).get()
    yield ref, link, release
    release.set()
    ref.stop()


def test_a_state_change_is_pushed_once_and_an_unchanged_one_not(worker):
    ref, link, _ = worker
    assert ref.proxy().set_state(states.QUIET).get() == states.QUIET
    ref.proxy().set_state(states.QUIET).get()
    assert link.told == [WorkerState(states.QUIET)]


def test_a_directive_naming_a_state_is_answered_with_the_state_taken_even_if_unchanged(worker):
    ref, link, _ = worker
    ref.proxy().set_state(states.TERMINATE).get()
    ref.tell(Directive(states.RUNNING))  # terminate is sticky
    ref.tell(Directive(None))  # an echo: nothing to answer
    ref.proxy().running().get()
    assert link.told == [WorkerState(states.TERMINATE), WorkerState(states.TERMINATE)]


def test_an_abandoned_handler_that_returns_releases_its_slot_and_reports_no_outcome(worker):
    ref, link, release = worker
    ref.tell(Jobs([{"id": "a", "type": "wait", "attempt": 1, "args": []}]))
    ref.tell(Directive(None, ("a",)))
    release.set()
    wait_for(lambda: link.told, what="the worker told the link")
    assert link.told == [Released("a")]


def test_a_finished_job_is_reported_without_a_free_slot_count(worker):
    ref, link, _ = worker
    ref.tell(Jobs([{"id": "b", "type": "now", "attempt": 1, "args": []}]))
    wait_for(lambda: link.told, what="the outcome")
    [outcomes] = link.told
    assert isinstance(outcomes, Outcomes)
    assert [(o.job_id, o.result) for o in outcomes.items] == [("b", 1)]


def test_on_terminate_is_called_once_when_a_directive_terminates_never_on_a_local_stop():
    calls: list[str] = []
    told = WorkerActor.start(
        Untracked(), {}, 1, SystemClock(), on_terminate=lambda: calls.append("told")
    )
    stopped = WorkerActor.start(
        Untracked(), {}, 1, SystemClock(), on_terminate=lambda: calls.append("stopped")
    )
    try:
        told.tell(Directive(states.QUIET))
        told.tell(Directive(states.TERMINATE))
        told.tell(Directive(states.TERMINATE))  # already terminating: not again
        told.proxy().running().get()
        stopped.proxy().set_state(states.TERMINATE).get()  # the node's own graceful stop
        assert calls == ["told"]
    finally:
        told.stop()
        stopped.stop()
