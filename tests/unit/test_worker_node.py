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
