"""LinkCore: the rules of a worker's link to the coordinator (Paranoid Pirate style), pure.

It says hello, registers, beats every `heartbeat_interval`, keeps one fetch outstanding while
the worker has free slots (`Slots`, the one place they are counted), and reports outcomes
(`OutcomeReports`). When no reply has arrived for `heartbeat_timeout`, or the coordinator
answers `not_registered`/`unknown_worker`, it reconnects with backoff and re-registers
(`Session`). With several coordinator endpoints (`Endpoints`: one leader, standbys answering
`not_leader`) a loss also moves on to the next endpoint (the standby's hint first), a hello
gives up after `hello_timeout`, and a dropped connection is a loss at once. No threads,
sockets or clock: every entry point takes `now` and returns the effects to perform, in order.
The lifecycle is the table in actors/link/table.py.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any

from actors import states
from actors.link.effects import Arm, Close, Effect, Open, Send, Tell, TimerKind
from actors.link.outcomes import OutcomeReports
from actors.link.requests import Requests
from actors.link.session import Session
from actors.link.slots import Slots
from actors.link.table import LinkEvent, LinkState, next_state
from actors.worker_mail import Directive, Jobs, Outcome, Resumed
from actors.worker_settings import WorkerSettings
from transport import codec
from transport.codec import MAX_MESSAGE_SIZE_BYTES
from transport.endpoints import Endpoints
from transport.messages import OUTCOMES_EXTENSION

log = logging.getLogger(__name__)

LOSS_ERRORS = frozenset({"not_registered", "unknown_worker", "not_leader"})
S, E = LinkState, LinkEvent


class LinkCore:
    """The link's state and rules; `actors.link.actor.LinkActor` performs what it returns."""

    def __init__(
        self, settings: WorkerSettings, rng: random.Random, now: float, endpoints: Endpoints[Any]
    ) -> None:
        self.settings = settings
        self.endpoints = endpoints  # the shell opens the current one; only the core moves it
        self.state = S.DISCONNECTED
        self.heartbeat_interval = settings.heartbeat_interval
        self.heartbeat_timeout = settings.heartbeat_timeout
        self.link_id = 0
        self.session = Session(settings, rng)
        self.last_reply = now
        self.now = now
        self.slots = Slots(settings.concurrency)
        self.fetching = False
        self.beat_replies = 0
        self.out: list[Effect] = []
        self.requests = Requests()
        self.reports = OutcomeReports(
            self._report_request, lambda: self.state == S.REGISTERED, self.requests.pending
        )
        self._replies: dict[str, Callable[[dict[str, Any], Any], None]] = {
            "beat": self._on_beat_reply,
            "fetch": self._on_fetch_reply,
            "outcome": lambda body, job_id: self.reports.settle(job_id, body),
            "outcomes": self.reports.on_reply,
            "deregister": lambda body, context: None,
        }

    # -- events (each returns the effects to perform) -----------------------------------------

    def start(self) -> list[Effect]:
        """The actor started: beat on the settings' interval until the coordinator says."""
        self.out.append(Arm(TimerKind.BEAT, self.heartbeat_interval))
        return self._drain()

    def connect(self, now: float) -> list[Effect]:
        """Open a new connection and say hello (told by the node once, then by the backoff)."""
        self.now = now
        if self._enter(E.CONNECT):
            self._drop_session()
            self.link_id += 1
            self.out.append(Open(self.link_id))
            self.last_reply = now
            hello = {"v": 1, "role": "worker", "hostname": self.settings.hostname}
            patience = 0.0
            if len(self.endpoints) > 1:
                # Nobody listening there (a dead coordinator's address): try the next one
                # after hello_timeout, not heartbeat_timeout; the beat looks for it then.
                patience = self.settings.hello_timeout - self.heartbeat_timeout
                self.out.append(Arm(TimerKind.BEAT, self.settings.hello_timeout))
            self._request("hello", {**hello, "pid": self.settings.pid}, patience=patience)
        return self._drain()

    def dropped(self, link_id: int, now: float) -> list[Effect]:
        """The transport saw connection `link_id` drop (its coordinator died or froze): with
        other endpoints to try, that is a loss now rather than after heartbeat_timeout."""
        self.now = now
        if link_id == self.link_id and self._enter(E.DROPPED):
            self._reconnect("connection dropped")
        return self._drain()

    def frame(self, link_id: int, frame: bytes, now: float) -> list[Effect]:
        """A frame from the coordinator on connection `link_id`."""
        self.now = now
        if link_id != self.link_id:
            return self._drain()  # a late frame from a connection we already dropped
        try:
            body = codec.decode(frame)
        except Exception as exc:
            log.warning("undecodable frame from the coordinator dropped: %s", exc)
            return self._drain()
        self.last_reply = now
        entry = self.requests.pending.pop(body.get("rid"), None)  # type: ignore[arg-type]
        if entry is not None:
            self._answered(entry.kind, body, entry.context)
        return self._drain()

    def beat(
        self, now: float, *, due: bool, progress: dict[str, tuple[float, str]] | None = None
    ) -> list[Effect]:
        """The beat timer (`due`: also look for silence and expired requests) or the node's
        BeatNow (a graceful stop reports `terminate` at once). `progress`: the handlers' latest
        reports (actors/progress.py), carried for the jobs still held (extension "Progress")."""
        self.now = now
        if due:
            self.out.append(Arm(TimerKind.BEAT, self.heartbeat_interval))
        if not self._enter(E.BEAT):
            return self._drain()
        if due and now - self.last_reply > self.heartbeat_timeout:
            self._lost(f"no reply for {self.heartbeat_timeout} s")
            return self._drain()
        if due and not self._expire_requests():
            return self._drain()
        if self.session.worker_id is None and now - self.last_reply >= self.heartbeat_interval:
            self.session.unanswered(now - self.last_reply, self.endpoints.address)
        elif self.session.worker_id is not None:
            state = self.slots.worker_state
            held = self._held()
            body = {"worker_id": self.session.worker_id, "state": state, "active_job_ids": held}
            if progress:
                reports = {job_id: progress[job_id] for job_id in held if job_id in progress}
                if reports:
                    body["progress"] = {
                        job_id: {"fraction": fraction, "message": message}
                        for job_id, (fraction, message) in reports.items()
                    }
            self._request("beat", body, state)
        return self._drain()

    def outcomes(self, items: tuple[Outcome, ...], now: float) -> list[Effect]:
        """The worker finished jobs: they stop holding a slot and wait to be settled."""
        self.now = now
        self._enter(E.OUTCOMES)
        for outcome in items:
            self.slots.finished(outcome.job_id)
        self.reports.add(items)
        self._maybe_fetch()
        return self._drain()

    def worker_changed(
        self, now: float, state: str | None = None, released: str | None = None
    ) -> list[Effect]:
        """The worker pushed its new `state`, or an abandoned handler `released` its slot."""
        self.now = now
        self._enter(E.WORKER)
        if state is not None:
            self.slots.worker_state = state
        if released is not None:
            self.slots.released(released)
        self._maybe_fetch()
        return self._drain()

    def leave(self, now: float) -> list[Effect]:
        """End the session politely (graceful stop); nothing reconnects afterwards."""
        self.now = now
        if self.state == S.REGISTERED and self.session.worker_id:
            self._request("deregister", {"worker_id": self.session.worker_id})
        self._enter(E.LEAVE)
        return self._drain()

    def status(self) -> dict[str, Any]:
        return {
            "worker_id": self.session.worker_id,
            "link": self.state.value,
            "registered": self.state == S.REGISTERED,
            "sessions": self.session.sessions,
            "unreported": len(self.reports.unreported),
            "pending": len(self.requests.pending),
            "fetching": self.fetching,
            "beat_replies": self.beat_replies,
            "free": self.slots.free(),
        }

    # -- lifecycle ----------------------------------------------------------------------------

    def _enter(self, event: LinkEvent) -> bool:
        """Take `event` by the table: False when the state ignores it."""
        following = next_state(self.state, event)
        if following is None:
            return False
        self.state = following
        return True

    def _drain(self) -> list[Effect]:
        out, self.out = self.out, []
        return out

    def _drop_session(self) -> None:
        self.fetching = False
        self.requests.pending.clear()

    def _lost(self, reason: str, hint: str | None = None) -> None:
        """Drop the connection and reconnect after a backoff (to the next endpoint, or the one
        a standby's `hint` names)."""
        if self._enter(E.LOST):
            self._reconnect(reason, hint)

    def _reconnect(self, reason: str, hint: str | None = None) -> None:
        self.out.append(Close())
        self._drop_session()
        failed = self.endpoints.address
        if len(self.endpoints) > 1:
            self.endpoints.advance(hint)
        delay = self.session.lost(reason, failed, self.endpoints.address, len(self.endpoints))
        self.out.append(Arm(TimerKind.CONNECT, delay))

    def _request(
        self,
        kind: str,
        body: dict[str, Any],
        context: Any = None,
        patience: float = 0.0,
        size_limit: int | None = None,
    ) -> bool:
        """Send a request; its reply is expected within heartbeat_timeout (+ `patience`).
        False, and nothing sent, when the frame would exceed `size_limit`."""
        deadline = self.now + self.heartbeat_timeout + patience
        frame = self.requests.frame(kind, body, context, deadline, size_limit)
        if frame is not None:
            self.out.append(Send(frame))
        return frame is not None

    def _report_request(
        self, kind: str, body: dict[str, Any], context: Any, size_limit: int | None
    ) -> bool:
        body = {"worker_id": self.session.worker_id, **body}
        return self._request(kind, body, context, 0.0, size_limit)

    def _expire_requests(self) -> bool:
        """Requests whose reply never came (a lossy link): retry what must not be lost.
        False when the session was lost for it."""
        for pending in self.requests.expired(self.now):
            if pending.kind == "fetch":
                self.fetching = False
                self._maybe_fetch()
            elif pending.kind in ("hello", "register"):
                self._lost(f"no reply to {pending.kind}")
                return False
        self.reports.report()
        return True

    def _answered(self, kind: str, body: dict[str, Any], context: Any) -> None:
        error = body.get("type") == "error"
        if error and body.get("code") in LOSS_ERRORS:
            hint = body.get("leader")  # a standby's: where the leader is
            reason = f"{kind} answered {body.get('code')}"
            self.session.standby_seen |= body.get("code") == "not_leader"
            self._lost(reason, hint if isinstance(hint, str) else None)
        elif error and kind in ("hello", "register"):
            log.error("%s refused: %s %s", kind, body.get("code"), body.get("message"))
        elif kind == "hello":
            if self._enter(E.WELCOMED):
                self._on_welcomed(body)
        elif kind == "register":
            if self._enter(E.REGISTERED):
                self._on_registered(body)
        elif not self._enter(E.REPLY):
            return
        elif error and kind in ("outcome", "outcomes"):
            self.reports.refused(kind, body, context)
        elif error:  # a fetch (the next one asks again) or a deregister
            self.fetching = self.fetching and kind != "fetch"
            log.warning("%s refused: %s %s", kind, body.get("code"), body.get("message"))
        else:
            self._replies[kind](body, context)

    def _on_welcomed(self, body: dict[str, Any]) -> None:
        self.session.welcomed(body["worker_id"])
        self.reports.batch = OUTCOMES_EXTENSION in (body.get("extensions") or ())
        self.reports.max_message_size = int(body.get("max_message_size", MAX_MESSAGE_SIZE_BYTES))
        self.heartbeat_interval = float(body.get("heartbeat_interval", self.heartbeat_interval))
        self.heartbeat_timeout = float(body.get("heartbeat_timeout", self.heartbeat_timeout))
        self.out.append(Arm(TimerKind.BEAT, self.heartbeat_interval))  # the coordinator's
        self._request("register", self.session.register_body(self._held()))

    def _on_registered(self, body: dict[str, Any]) -> None:
        resumed = frozenset(body.get("resumed_job_ids", []))
        reconnected = self.session.reconnected
        if reconnected:
            self.reports.keep_only(resumed)
            self.slots.keep_only(resumed)
        self.reports.report()
        self.out.append(Tell(Resumed(resumed, reconnected)))
        self.session.registered(resumed)
        self._maybe_fetch()

    # -- beats and jobs -----------------------------------------------------------------------

    def _held(self) -> list[str]:
        """The jobs this worker holds: running, or finished with the outcome not yet settled."""
        return [*self.slots.handed, *self.reports.unreported]

    def _on_beat_reply(self, body: dict[str, Any], reported: Any) -> None:
        self.beat_replies += 1
        state = body.get("state", states.RUNNING)
        cancel = tuple(body.get("cancel_job_ids", ()))
        for job_id in cancel:
            self.reports.unreported.pop(job_id, None)
        self.slots.abandon(cancel)
        # The reply's state is a directive, but one that only echoes what this beat reported
        # is no news: the worker may have changed its own state since the beat left (quieted
        # by SIGTSTP while the beat was on the wire), and obeying the echo would undo that.
        directed = None if state == reported else state
        if directed is not None:
            self.slots.worker_state = directed  # until the worker pushes the state it took
        self.out.append(Tell(Directive(directed, cancel)))

    def _maybe_fetch(self) -> None:
        free = self.slots.free()
        if self.state == S.REGISTERED and not self.fetching and free > 0:
            self.fetching = True
            wait = self.settings.fetch_wait
            body = {"worker_id": self.session.worker_id, "count": free, "wait": wait}
            self._request("fetch", body, patience=wait)

    def _on_fetch_reply(self, body: dict[str, Any], _: Any) -> None:
        self.fetching = False
        jobs = body.get("jobs", [])
        if jobs:
            self.slots.hand(job["id"] for job in jobs)
            self.out.append(Tell(Jobs(jobs)))
        self._maybe_fetch()
