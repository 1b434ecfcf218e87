"""The coordinator's edge: decode and validate each frame once, then hand it to its owner.

Runs on the transport's I/O thread, so it never blocks: every request becomes one `tell`
(or an immediate reply for pings, errors and finished jobs).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from actors import states
from actors.base import Mailbox
from actors.context import CoordinatorContext
from actors.mail import DeleteJob, Inbound, Revive, SetPaused, Touch
from actors.waiters import JobWaiters
from transport import codec
from transport import messages as m
from transport.auth import permits
from transport.errors import BadRequest, CorralError
from transport.validation import parse_request, request_rid, request_type
from transport.validation.limits import Limits

log = logging.getLogger(__name__)


class Dispatcher:
    """Routes validated requests: sessions to the supervisor, enqueues to their queue."""

    def __init__(
        self,
        ctx: CoordinatorContext,
        waiters: JobWaiters,
        limits: Limits,
        max_message_size: int,
        roles_of: Callable[[bytes], frozenset[str]] | None = None,
        instance: str = "",
    ) -> None:
        self.ctx = ctx
        self.instance = instance  # told to a `ping {identify: true}` (PROTOCOL.md Extensions)
        self.waiters = waiters
        self.limits = limits
        self.max_message_size = max_message_size
        self.roles_of = roles_of  # peer -> roles of its CURVE key; None: security is off
        self.greeted = ctx.greeted  # connections that have said hello to this coordinator
        self.bad_requests = 0

    def __call__(self, peer: bytes, frame: bytes) -> None:
        rid: m.Rid | None = None
        try:
            if len(frame) > self.max_message_size:
                rid = codec.readable_rid(frame)
            body = codec.decode(frame, self.max_message_size, self.limits.max_depth)
            rid = request_rid(body)
            kind = request_type(body)
            if self.roles_of is not None and not permits(self.roles_of(peer), kind):
                self._refuse(peer, "unauthorized", f"this key may not send {kind}", rid)
                return
            if kind in m.WORKER_REQUEST_TYPES and peer not in self.greeted:
                self._refuse(peer, "not_registered", "say hello first", rid)
                return
            request = parse_request(kind, rid, body, len(frame), self.limits)
            self._route(peer, request)
        except CorralError as exc:
            self._refuse(peer, exc.code, exc.message, rid)
        except Exception:
            log.exception("dispatch failed")
            self._refuse(peer, "internal", "the coordinator failed", rid)

    def _refuse(self, peer: bytes, code: str, message: str, rid: m.Rid | None) -> None:
        self.bad_requests += 1
        if peer in self.greeted:
            self.ctx.supervisor.tell(Touch(peer))
        log.debug("refused %s from %r: %s", code, peer, message)
        self.ctx.outbox(peer, codec.error(code, message, rid))

    def _route(self, peer: bytes, request: m.Request) -> None:
        ctx = self.ctx
        if isinstance(request, m.Enqueue):
            self._queue(request.specs[0].queue).tell(Inbound(peer, request))
        elif isinstance(request, m.Get):
            self._get(peer, request)
        elif isinstance(request, m.Cancel):
            self._cancel(peer, request)
        elif isinstance(request, m.Retry):
            self._retry(peer, request)
        elif isinstance(request, m.Delete):  # extension
            self._delete(peer, request)
        elif isinstance(request, m.PauseQueue):  # extension
            self._queue(request.queue).tell(SetPaused(request.paused, peer, request.rid))
        elif isinstance(request, m.ScheduleRequest):  # extension
            ctx.scheduler.tell(Inbound(peer, request))
        elif isinstance(request, m.WorkflowRequest):  # extension
            ctx.flows.tell(Inbound(peer, request))
        elif isinstance(request, m.Jobs):  # extension: a store walk, kept off this thread
            ctx.listing.tell(Inbound(peer, request))
        elif isinstance(request, m.Ping):
            pong = {"type": "pong", "rid": request.rid}
            if request.identify:
                pong["instance"] = self.instance
            ctx.outbox(peer, codec.encode(pong))
            if peer in self.greeted:
                ctx.supervisor.tell(Touch(peer))
        else:
            if isinstance(request, m.Hello):
                self.greeted.add(peer)
            ctx.supervisor.tell(Inbound(peer, request))

    def _queue(self, name: str) -> Mailbox:
        """The queue's actor (started on first use); BadRequest past the queue limit."""
        try:
            return self.ctx.queues.get(name)
        except LookupError as exc:
            raise BadRequest(str(exc)) from None

    def _get(self, peer: bytes, request: m.Get) -> None:
        stored = self.ctx.store.get(request.job_id)
        if stored is None:
            self._refuse(peer, "unknown_job", f"no job {request.job_id}", request.rid)
        elif request.wait > 0 and stored["state"] not in states.TERMINAL_STATES:
            self.waiters.wait(request.job_id, peer, request.rid, request.wait)
        else:
            self.ctx.outbox(peer, codec.reply(request.rid, job=self.ctx.with_progress(stored)))

    def _retry(self, peer: bytes, request: m.Retry) -> None:
        stored = self.ctx.store.get(request.job_id)
        if stored is None:
            self._refuse(peer, "unknown_job", f"no job {request.job_id}", request.rid)
        else:
            self.ctx.queues.get(stored["queue"]).tell(Revive(request.job_id, peer, request.rid))

    def _delete(self, peer: bytes, request: m.Delete) -> None:
        """To the job's queue, where a manual retry of it would run: the queue refuses a job
        that has not ended (the store decides, under its lock)."""
        stored = self.ctx.store.get(request.job_id)
        if stored is None:
            self._refuse(peer, "unknown_job", f"no job {request.job_id}", request.rid)
        else:
            delete = DeleteJob(request.job_id, peer, request.rid)
            self._queue(stored["queue"]).tell(delete)

    def _cancel(self, peer: bytes, request: m.Cancel) -> None:
        stored = self.ctx.store.get(request.job_id)
        if stored is None:
            self._refuse(peer, "unknown_job", f"no job {request.job_id}", request.rid)
        elif stored["state"] in states.TERMINAL_STATES:
            self.ctx.outbox(peer, codec.reply(request.rid, state=stored["state"]))
        else:
            self.ctx.cancels.request(request.job_id, peer, request.rid)
