"""ConnectionSupervisor: the worker node's link to the coordinator (Paranoid Pirate style).

It says hello, registers, beats every `heartbeat_interval`, keeps one fetch outstanding while
the WorkerActor has free slots, and reports outcomes. When no reply has arrived for
`heartbeat_timeout`, or the coordinator answers `not_registered`/`unknown_worker`, it drops
the connection, reconnects with backoff, gets a new worker_id and re-registers with
`previous_worker_id` + `active_job_ids`, so jobs still running are resumed, not run twice.
"""

from __future__ import annotations

import itertools
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from actors import states
from actors.base import Activity, CorralActor, Mailbox
from actors.clock import Clock, Timer
from actors.worker_mail import (
    BeatDue,
    BeatNow,
    Connect,
    Deregister,
    Directive,
    FrameIn,
    Jobs,
    NeedReport,
    Outcome,
    Outcomes,
    Report,
    Resumed,
    Want,
)
from actors.worker_settings import WorkerSettings
from transport import codec
from transport.base import ClientConnection, Connector
from transport.codec import MAX_MESSAGE_SIZE_BYTES
from transport.messages import OUTCOMES_EXTENSION

log = logging.getLogger(__name__)

LOSS_ERRORS = frozenset({"not_registered", "unknown_worker"})


@dataclass(frozen=True, slots=True)
class Pending:
    """A request waiting for its reply."""

    kind: str
    context: Any
    deadline: float


class ConnectionSupervisor(CorralActor):
    """Owns the link; the WorkerActor owns the jobs."""

    def __init__(
        self,
        activity: Activity,
        connector: Connector,
        settings: WorkerSettings,
        worker: Mailbox,
        clock: Clock,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(activity)
        self.connector = connector
        self.settings = settings
        self.worker = worker
        self.clock = clock
        self.rng = rng or random.Random()
        self.heartbeat_interval = settings.heartbeat_interval
        self.heartbeat_timeout = settings.heartbeat_timeout
        self.link: ClientConnection | None = None
        self.link_id = 0
        self.worker_id: str | None = None
        self.previous_worker_id: str | None = None
        self.registered_as: str | None = None  # the last worker_id whose register succeeded
        self.registered = False
        self.sessions = 0  # how many times a worker_id was issued to us
        self.failures = 0  # consecutive failed connection attempts, for backoff
        self.last_reply = clock.now()
        self.pending: dict[int, Pending] = {}
        self.unreported: dict[str, Outcome] = {}
        self.batch_outcomes = False  # the coordinator takes `outcomes` (announced at hello)
        self.max_message_size = MAX_MESSAGE_SIZE_BYTES  # the coordinator's, once announced
        self.want = 0
        self.fetching = False
        self.deregistered = False
        self.beat_replies = 0
        self._rids = itertools.count(1)
        self._beat_timer: Timer | None = None
        self._connect_timer: Timer | None = None
        self._replies: dict[str, Callable[[dict[str, Any], Any], None]] = {
            "hello": self._on_registered,
            "register": self._on_register_reply,
            "beat": self._on_beat_reply,
            "fetch": self._on_fetch_reply,
            "outcome": lambda body, job_id: self._settle(job_id, body),
            "outcomes": self._on_outcomes_reply,
            "deregister": lambda body, context: None,
        }

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            Connect: self._connect,
            FrameIn: self._frame_in,
            BeatDue: self._beat_due,
            BeatNow: self._beat_now,
            Report: self._on_report,
            Want: self._on_want,
            Outcomes: self._on_outcomes,
            Deregister: self._deregister,
        }

    def on_start(self) -> None:
        # No Connect here: the node tells it once the WorkerActor knows this link, or the
        # worker's first report could reach a WorkerActor with nowhere to send it.
        self._schedule_beat()

    def on_stop(self) -> None:
        for timer in (self._beat_timer, self._connect_timer):
            if timer is not None:
                timer.cancel()
        self._close_link()

    # -- link management ----------------------------------------------------------------------

    def _connect(self, _: Connect) -> None:
        self._connect_timer = None
        if self.deregistered:
            return
        self._close_link()
        self.link_id += 1
        link_id, mailbox = self.link_id, self.mailbox()
        self.link = self.connector(lambda frame: mailbox.tell(FrameIn(link_id, frame)))
        self.last_reply = self.clock.now()
        self._request(
            "hello",
            {
                "v": 1,
                "role": "worker",
                "hostname": self.settings.hostname,
                "pid": self.settings.pid,
            },
        )

    def _close_link(self) -> None:
        if self.link is not None:
            self.link.close()
            self.link = None
        self.worker_id = None  # no beat may carry an old id on the next connection
        self.registered = False
        self.fetching = False
        self.pending.clear()

    def _lost(self, reason: str) -> None:
        """Drop the link and reconnect after a backoff (1 s doubling to 32 s, jittered)."""
        if self._connect_timer is not None or self.deregistered:
            return
        log.warning(
            "worker %s: coordinator lost (%s); reconnecting",
            self.worker_id,
            reason,
            extra={"event": "reconnect", "worker_id": self.worker_id, "reason": reason},
        )
        self._close_link()
        delay = 0.0
        if self.failures:
            base = min(
                self.settings.reconnect_initial * 2 ** (self.failures - 1),
                self.settings.reconnect_max,
            )
            delay = base * self.rng.uniform(0.5, 1.0)
        self.failures += 1
        mailbox = self.mailbox()
        self._connect_timer = self.clock.call_later(delay, lambda: mailbox.tell(Connect()))

    def _request(
        self,
        kind: str,
        body: dict[str, Any],
        context: Any = None,
        patience: float = 0.0,
        size_limit: int | None = None,
    ) -> bool:
        """Send a request; its reply is expected within heartbeat_timeout (+ `patience`).

        False, and nothing sent, when the frame would exceed `size_limit` (True without a
        link: nothing is sent, and the outcomes wait for the next registration).
        """
        if self.link is None:
            return True
        rid = next(self._rids)
        frame = codec.encode({"type": kind, "rid": rid, **body})
        if size_limit is not None and len(frame) > size_limit:
            return False
        deadline = self.clock.now() + self.heartbeat_timeout + patience
        self.pending[rid] = Pending(kind if kind in self._replies else "outcome", context, deadline)
        self.link.send(frame)
        return True

    def _expire_requests(self) -> None:
        """Requests whose reply never came (a lossy link): retry what must not be lost."""
        now = self.clock.now()
        for rid, pending in list(self.pending.items()):
            if pending.deadline > now:
                continue
            del self.pending[rid]
            if pending.kind == "fetch":
                self.fetching = False
                self._maybe_fetch()
            elif pending.kind in ("hello", "register"):
                self._lost(f"no reply to {pending.kind}")
                return
        self._report_unsettled()

    def _report_unsettled(self) -> None:
        """Report every unsettled outcome that no request in flight carries: new ones, and
        those whose reply was lost or said `internal` (an outcome is dropped only once settled).

        With the `outcomes` extension at most one such frame is unanswered at a time, the way
        one fetch is: outcomes that finish meanwhile go together once it is answered. A lone job
        is reported at once, and a busy worker batches by itself, with no timer.
        """
        if not self.registered:
            return
        in_flight: set[str] = set()
        frame_unanswered = False
        for pending in self.pending.values():
            if pending.kind == "outcome":
                in_flight.add(pending.context)
            elif pending.kind == "outcomes":
                in_flight.update(pending.context)
                frame_unanswered = True
        if frame_unanswered and self.batch_outcomes:
            return
        stray = [o for job_id, o in self.unreported.items() if job_id not in in_flight]
        if stray:
            self._send_outcomes(stray)

    def _frame_in(self, message: FrameIn) -> None:
        if message.link != self.link_id:
            return  # a late frame from a connection we already dropped
        try:
            body = codec.decode(message.frame)
        except Exception as exc:
            log.warning("undecodable frame from the coordinator dropped: %s", exc)
            return
        self.last_reply = self.clock.now()
        entry = self.pending.pop(body.get("rid"), None)  # type: ignore[arg-type]
        if entry is None:
            return
        kind, context = entry.kind, entry.context
        if body.get("type") == "error":
            self._on_error(kind, body, context)
        else:
            self._replies[kind](body, context)

    def _on_error(self, kind: str, body: dict[str, Any], context: Any) -> None:
        code = body.get("code")
        if code in LOSS_ERRORS:
            self._lost(f"{kind} answered {code}")
        elif kind == "outcome":
            self._settle(context, body)
        elif kind == "outcomes" and code == "too_large":
            self._split([self.unreported[i] for i in context if i in self.unreported])
        elif kind == "outcomes" and code == "internal":
            pass  # nothing changed and it may pass: reported again with the next beat
        elif kind == "outcomes":
            # Refused as a whole (bad_request, ...): this coordinator does not take them after
            # all, so speak ack/fail for the rest of the session. Their answers settle every
            # job, so none is re-sent forever.
            log.warning("outcomes refused (%s %s); reporting one by one", code, body.get("message"))
            self.batch_outcomes = False
            self._report_unsettled()
        elif kind == "fetch":
            self.fetching = False
            log.warning("fetch refused: %s %s", code, body.get("message"))
        else:
            log.error("%s refused: %s %s", kind, code, body.get("message"))

    # -- session ------------------------------------------------------------------------------

    def _on_registered(self, body: dict[str, Any], _: Any) -> None:
        # Resume from the last session that completed its register: a session that only got
        # an id (the coordinator went away before our register) never held any job.
        self.previous_worker_id = self.registered_as
        self.worker_id = body["worker_id"]
        self.sessions += 1
        self.batch_outcomes = OUTCOMES_EXTENSION in (body.get("extensions") or ())
        self.max_message_size = int(body.get("max_message_size", MAX_MESSAGE_SIZE_BYTES))
        self.heartbeat_interval = float(body.get("heartbeat_interval", self.heartbeat_interval))
        self.heartbeat_timeout = float(body.get("heartbeat_timeout", self.heartbeat_timeout))
        if self._beat_timer is not None:  # beat on the coordinator's interval from now on
            self._beat_timer.cancel()
        self._schedule_beat()
        self.worker.tell(NeedReport("register"))

    def _on_report(self, report: Report) -> None:
        if self.link is None or self.worker_id is None:
            return
        # Jobs whose outcome is not acknowledged yet are still ours to list.
        unreported = tuple(
            job_id for job_id in self.unreported if job_id not in report.active_job_ids
        )
        report = Report(report.purpose, report.state, report.active_job_ids + unreported)
        if report.purpose == "beat":
            body = {
                "worker_id": self.worker_id,
                "state": report.state,
                "active_job_ids": list(report.active_job_ids),
            }
            self._request("beat", body, report.state)
            return
        settings = self.settings
        body = {
            "worker_id": self.worker_id,
            "queues": list(settings.queues),
            "concurrency": settings.concurrency,
            "functions": list(settings.functions),
            "labels": settings.labels,
            "hostname": settings.hostname,
            "pid": settings.pid,
        }
        if self.previous_worker_id:
            body["previous_worker_id"] = self.previous_worker_id
            body["active_job_ids"] = list(report.active_job_ids)
        self._request("register", body)

    def _on_register_reply(self, body: dict[str, Any], _: Any) -> None:
        self.registered = True
        self.failures = 0
        resumed = frozenset(body.get("resumed_job_ids", []))
        reconnected = self.previous_worker_id is not None
        for job_id in list(self.unreported):
            if reconnected and job_id not in resumed:
                del self.unreported[job_id]
        self._report_unsettled()
        self.worker.tell(Resumed(resumed, reconnected))
        self.registered_as = self.worker_id
        log.info(
            "registered as %s (previous %s, resumed %d jobs)",
            self.worker_id,
            self.previous_worker_id or "none",
            len(resumed),
            extra={
                "event": "registered",
                "worker_id": self.worker_id,
                "previous_worker_id": self.previous_worker_id,
                "resumed_job_ids": sorted(resumed),
            },
        )
        self._maybe_fetch()

    def _beat_due(self, _: BeatDue) -> None:
        self._schedule_beat()
        if self.clock.now() - self.last_reply > self.heartbeat_timeout:
            self._lost(f"no reply for {self.heartbeat_timeout} s")
            return
        self._expire_requests()
        if self.worker_id is not None and self.link is not None:
            self.worker.tell(NeedReport("beat"))

    def _beat_now(self, _: BeatNow) -> None:
        if self.worker_id is not None and self.link is not None:
            self.worker.tell(NeedReport("beat"))

    def _schedule_beat(self) -> None:
        mailbox = self.mailbox()
        self._beat_timer = self.clock.call_later(
            self.heartbeat_interval, lambda: mailbox.tell(BeatDue())
        )

    def _on_beat_reply(self, body: dict[str, Any], reported: Any) -> None:
        self.beat_replies += 1
        state = body.get("state", states.RUNNING)
        cancel = tuple(body.get("cancel_job_ids", ()))
        for job_id in cancel:
            self.unreported.pop(job_id, None)
        if state != states.RUNNING:
            self.want = 0  # the worker asks again once it runs again
        # The reply's state is a directive, but one that only echoes what this beat reported
        # is no news: the worker may have changed its own state since the beat left (quieted
        # by SIGTSTP while the beat was on the wire), and obeying the echo would undo that.
        self.worker.tell(Directive(None if state == reported else state, cancel))

    # -- jobs ---------------------------------------------------------------------------------

    def _on_want(self, message: Want) -> None:
        self.want = message.count
        self._maybe_fetch()

    def _maybe_fetch(self) -> None:
        if self.registered and not self.fetching and self.want > 0:
            self.fetching = True
            body = {
                "worker_id": self.worker_id,
                "count": self.want,
                "wait": self.settings.fetch_wait,
            }
            self._request("fetch", body, patience=self.settings.fetch_wait)

    def _on_fetch_reply(self, body: dict[str, Any], _: Any) -> None:
        self.fetching = False
        jobs = body.get("jobs", [])
        self.want = max(0, self.want - len(jobs))  # the worker sends a fresh Want once started
        if jobs:
            self.worker.tell(Jobs(jobs))
        self._maybe_fetch()

    def _on_outcomes(self, message: Outcomes) -> None:
        for outcome in message.items:
            self.unreported[outcome.job_id] = outcome
        self._report_unsettled()
        if message.want is not None:
            self._on_want(Want(message.want))

    def _send_outcomes(self, outcomes: Sequence[Outcome]) -> None:
        """One `outcomes` frame when the coordinator takes them (halved until each fits its
        max_message_size), else one `ack`/`fail` per job (the base protocol)."""
        if not self.batch_outcomes:
            for outcome in outcomes:
                self._send_outcome(outcome)
            return
        body = {"worker_id": self.worker_id, "outcomes": [_outcome_item(o) for o in outcomes]}
        job_ids = tuple(outcome.job_id for outcome in outcomes)
        if not self._request("outcomes", body, job_ids, size_limit=self.max_message_size):
            self._split(outcomes)

    def _split(self, outcomes: Sequence[Outcome]) -> None:
        """Outcomes too large for one frame: send each half on its own; a single one that
        cannot fit ends its job as ResultTooLarge."""
        if len(outcomes) > 1:
            half = len(outcomes) // 2
            self._send_outcomes(outcomes[:half])
            self._send_outcomes(outcomes[half:])
        elif outcomes:
            self._too_large(outcomes[0], f"larger than max_message_size {self.max_message_size}")

    def _send_outcome(self, outcome: Outcome) -> None:
        body: dict[str, Any] = {"worker_id": self.worker_id, **_outcome_item(outcome)}
        self._request("fail" if outcome.error else "ack", body, outcome.job_id)

    def _on_outcomes_reply(self, body: dict[str, Any], job_ids: Any) -> None:
        results = body.get("results")
        if not isinstance(results, list) or len(results) != len(job_ids):
            log.error("outcomes reply with %r results for %d jobs", results, len(job_ids))
            return  # still unreported: sent again with the next beat
        for job_id, result in zip(job_ids, results, strict=True):
            self._settle(job_id, result if isinstance(result, dict) else {})
        self._report_unsettled()  # what finished while this frame was out

    def _settle(self, job_id: str, answer: dict[str, Any]) -> None:
        """The coordinator answered one outcome: done, or refused with `code`."""
        outcome = self.unreported.get(job_id)
        if outcome is not None and answer.get("code") == "too_large":
            self._too_large(outcome, answer.get("message", ""))
        else:
            self.unreported.pop(job_id, None)  # accepted, or not_owner / unknown_job

    def _too_large(self, outcome: Outcome, message: str) -> None:
        """The coordinator cannot take this result: end the job with the reason rather than
        letting its lease run out."""
        error = {"type": "ResultTooLarge", "message": message, "retryable": False}
        self._on_outcomes(Outcomes((Outcome(outcome.job_id, outcome.attempt, error=error),)))

    def _deregister(self, _: Deregister) -> None:
        if self.registered and self.worker_id:
            self._request("deregister", {"worker_id": self.worker_id})
        self.deregistered = True

    # -- read by the node (ask at the edge) ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        return {
            "worker_id": self.worker_id,
            "registered": self.registered,
            "sessions": self.sessions,
            "unreported": len(self.unreported),
            "pending": len(self.pending),
            "fetching": self.fetching,
            "beat_replies": self.beat_replies,
            "want": self.want,
        }


def _outcome_item(outcome: Outcome) -> dict[str, Any]:
    """The fields of an `ack` or `fail` about one job (also one item of `outcomes`)."""
    item: dict[str, Any] = {"job_id": outcome.job_id, "attempt": outcome.attempt}
    if outcome.error is None:
        item["result"] = outcome.result
    else:
        item["error"] = outcome.error
    return item
