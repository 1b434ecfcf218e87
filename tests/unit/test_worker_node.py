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
    from actors.link.actor import LinkActor
    from actors.worker_settings import WorkerSettings
    from tests.unit.test_supervisor_core import Recorder
    from transport.endpoints import Endpoints

    opened: list[Any] = []
    activity = Untracked()
    endpoints = Endpoints([("tcp://a:1", opened.append)])
    ref = LinkActor.start(activity, endpoints, WorkerSettings(), Recorder(), ManualClock())
    try:
        assert ref.proxy().status().get()["worker_id"] is None
        assert opened == []
    finally:
        ref.stop()


class ScriptedCoordinator:
    """A link answering as a coordinator would, except that it holds the worker's first fetch
    and answers it (with one job) only just before the beat that reports `terminate`: the job
    was handed out as the worker began to stop, and its reply was still on the wire."""

    def __init__(self, on_frame: Any) -> None:
        from transport import codec

        self.codec = codec
        self.on_frame = on_frame
        self.held_fetch: int | None = None
        self.sent: list[dict[str, Any]] = []

    def reply(self, rid: int, **fields: Any) -> None:
        self.on_frame(self.codec.encode({"type": "reply", "rid": rid, **fields}))

    def send(self, frame: bytes) -> None:
        body = self.codec.decode(frame)
        self.sent.append(body)
        kind, rid = body["type"], body["rid"]
        if kind == "hello":
            self.on_frame(
                self.codec.encode({"type": "workerregistered", "rid": rid, "worker_id": "w1"})
            )
        elif kind == "fetch" and self.held_fetch is None:
            self.held_fetch = rid
        elif kind == "fetch":
            pass  # later fetches stay parked
        elif kind == "beat" and body["state"] == "terminate" and self.held_fetch is not None:
            job = {"id": "job-1", "type": "t", "attempt": 1, "args": [], "queue": "default"}
            self.reply(self.held_fetch, jobs=[job])
            self.reply(rid, state="terminate", cancel_job_ids=[])
        elif kind == "beat":
            self.reply(rid, state=body["state"], cancel_job_ids=[])
        else:  # register, ack, deregister
            self.reply(rid)

    def close(self) -> None:
        pass


def test_a_stopping_worker_runs_a_job_whose_fetch_reply_was_still_on_the_wire():
    links: list[ScriptedCoordinator] = []

    def connector(on_frame: Any) -> ScriptedCoordinator:
        links.append(ScriptedCoordinator(on_frame))
        return links[-1]

    node = WorkerNode(connector=connector, handlers={"t": lambda: 42}, concurrency=1)
    node.start()
    try:
        wait_for(lambda: links and links[0].held_fetch is not None, what="a fetch on the wire")
        node.stop(timeout=5.0)
    finally:
        node.kill()
    kinds = [(body["type"], body.get("job_id")) for body in links[0].sent]
    assert ("ack", "job-1") in kinds, kinds
    assert kinds.index(("ack", "job-1")) < kinds.index(("deregister", None))


class EchoingCoordinator:
    """A link answering as a coordinator with no directive would: each beat's reply echoes the
    state that beat reported. It holds the first beat's reply until `release()`."""

    def __init__(self, on_frame: Any) -> None:
        from transport import codec

        self.codec = codec
        self.on_frame = on_frame
        self.held_beat: dict[str, Any] | None = None
        self.beats: list[str] = []

    def send(self, frame: bytes) -> None:
        body = self.codec.decode(frame)
        kind, rid = body["type"], body["rid"]
        if kind == "hello":
            reply = {"type": "workerregistered", "rid": rid, "worker_id": "w1"}
            self.on_frame(self.codec.encode(reply))
        elif kind == "beat":
            self.beats.append(body["state"])
            if self.held_beat is None:
                self.held_beat = body
            else:
                self._answer_beat(body)
        elif kind != "fetch":  # fetches stay parked
            self.on_frame(self.codec.encode({"type": "reply", "rid": rid}))

    def _answer_beat(self, beat: dict[str, Any]) -> None:
        reply = {"type": "reply", "rid": beat["rid"], "state": beat["state"], "cancel_job_ids": []}
        self.on_frame(self.codec.encode(reply))

    def release(self) -> None:
        assert self.held_beat is not None
        self._answer_beat(self.held_beat)

    def close(self) -> None:
        pass


def test_a_beat_reply_that_echoes_a_state_reported_before_a_quiet_does_not_undo_the_quiet():
    """SIGTSTP while a beat reporting `running` was on the wire: the reply says `running`,
    which is only what that beat reported, not an operator's directive."""
    from actors.worker_mail import BeatNow

    links: list[EchoingCoordinator] = []

    def connector(on_frame: Any) -> EchoingCoordinator:
        links.append(EchoingCoordinator(on_frame))
        return links[-1]

    node = WorkerNode(connector=connector, handlers={"t": lambda: None})
    node.start()
    try:
        wait_for(lambda: node.status()["registered"], what="registered")
        node._connection.tell(BeatNow())
        wait_for(lambda: links[0].held_beat is not None, what="a beat on the wire")
        node.quiet()
        links[0].release()  # "running": the echo of the beat sent before the quiet
        node._connection.tell(BeatNow())
        wait_for(lambda: len(links[0].beats) == 2, what="the next beat")
        assert node.status()["state"] == "quiet"
    finally:
        node.kill()
    assert links[0].beats == ["running", "quiet"]
