"""WorkerNode start-up order, checked with a connector that records when it is called."""

from __future__ import annotations

from typing import Any

from nodes import WorkerNode
from tests.conftest import wait_for


class SilentLink:
    """A link that sends nowhere (enough to watch when the node opens it)."""

    def send(self, frame: bytes) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_worker_opens_its_link_only_once_its_worker_actor_knows_the_link():
    """The hello's reply makes the link ask the WorkerActor for a report; a WorkerActor not yet
    attached dropped that request, and the worker stayed unregistered (no jobs) for good."""
    attached_when_opened: list[bool] = []
    nodes: list[WorkerNode] = []

    def connector(on_frame: Any) -> SilentLink:
        worker = nodes[0]._worker_ref
        assert worker is not None
        attached_when_opened.append(worker.proxy().connection.get() is not None)
        return SilentLink()

    node = WorkerNode(connector=connector, handlers={"t": lambda: None})
    nodes.append(node)
    node.start()
    try:
        wait_for(lambda: attached_when_opened, what="the link was opened")
    finally:
        node.kill()
    assert attached_when_opened == [True]


def test_a_link_actor_does_not_connect_by_itself_before_it_is_told_to():
    """Deterministic half of the above: messages reach an actor in order, so a Connect told
    from on_start would be handled before this status ask is answered."""
    from actors.base import Untracked
    from actors.clock import ManualClock
    from actors.connection import ConnectionSupervisor
    from actors.worker_settings import WorkerSettings
    from tests.unit.test_supervisor_core import Recorder

    opened: list[Any] = []
    activity = Untracked()
    ref = ConnectionSupervisor.start(
        activity, opened.append, WorkerSettings(), Recorder(), ManualClock()
    )
    try:
        assert ref.proxy().status().get()["worker_id"] is None
        assert opened == []
    finally:
        ref.stop()
