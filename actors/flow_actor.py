"""FlowActor: the thin pykka shell around FlowCore (actors/flows.py), the owner of every
deferred job.

Jobs reach it from an enqueue or a workflow (`Defer`, after they are stored), from a restart
(the deferred jobs the store holds), and leave it released to their queue, with their
parents' results as their last argument, or cancelled. It hears that a parent ended from the
coordinator's events (`FlowWatch`, which forwards only the jobs some deferred job waits for:
one dict lookup per job ending).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from actors import events, lifecycle, states
from actors.admission import store_and_hand_out
from actors.base import CorralActor, Mailbox
from actors.context import CoordinatorContext
from actors.flows import Abandoned, FlowCore, Released
from actors.jobs import Job
from actors.mail import CancelJob, Defer, Hold, Inbound, ParentEnded
from actors.store.base import Replay
from actors.workflow_view import workflow_view
from transport import codec
from transport import messages as m
from transport.codec import encode
from transport.validation.workflows import with_parents

log = logging.getLogger(__name__)


class FlowActor(CorralActor):
    """Owns the deferred jobs; releases or cancels them as their parents end."""

    def __init__(self, activity: Any, ctx: CoordinatorContext, core: FlowCore) -> None:
        super().__init__(activity)
        self.ctx = ctx
        self.core = core

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            Defer: self._defer,
            ParentEnded: self._ended,
            CancelJob: self._cancel,
            Inbound: self._inbound,
        }

    def on_handler_error(self, message: Any) -> None:
        if isinstance(message, CancelJob):
            self.ctx.cancels.failed(message.job_id, "the workflow owner failed")
        elif isinstance(message, Inbound):
            frame = codec.error("internal", "the workflow owner failed", message.request.rid)
            self.ctx.outbox(message.peer, frame)

    # -- requests -----------------------------------------------------------------------------

    def _inbound(self, inbound: Inbound) -> None:
        request, peer = inbound.request, inbound.peer
        if isinstance(request, m.WorkflowSubmit):
            frame = self._submit(request)
        elif isinstance(request, m.WorkflowGet):
            jobs = self.ctx.store.made_by(request.workflow_id)
            view = workflow_view(request.workflow_id, jobs, request.limit)
            frame = (
                codec.reply(request.rid, **view)
                if view["total"]
                else _no_workflow(request.workflow_id, request.rid)
            )
        else:
            assert isinstance(request, m.WorkflowCancel)
            frame = self._cancel_all(request)
        self.ctx.outbox(peer, frame)

    def _submit(self, request: m.WorkflowSubmit) -> bytes:
        """Make every step at once (one store batch): the first ones go to their queues, the
        others are deferred until their parents end. The workflow's id is its request id."""
        ctx = self.ctx
        workflow_id = request.request_id or uuid.uuid4().hex
        now = ctx.clock.now()
        ids = [ctx.ids.new() for _ in request.steps]
        jobs = [
            Job.from_spec(
                with_parents(step, ids, request.on_failure), job_id, now, next(ctx.seq), workflow_id
            )
            for step, job_id in zip(request.steps, ids, strict=True)
        ]
        try:
            outcome = store_and_hand_out(ctx, jobs)
        except LookupError as exc:
            return codec.error("bad_request", str(exc), request.rid)
        if isinstance(outcome, Replay):
            made = [job["id"] for job in outcome.jobs]
            made_states = [job["state"] for job in outcome.jobs]
            return codec.reply(
                request.rid,
                workflow_id=workflow_id,
                job_ids=made,
                states=made_states,
                replayed=True,
            )
        return codec.reply(
            request.rid, workflow_id=workflow_id, job_ids=outcome.ids, states=outcome.states
        )

    def _cancel_all(self, request: m.WorkflowCancel) -> bytes:
        """Cancel every step not ended, the last made first: a dependent is cancelled before
        its parent ends, so `on_failure: continue` never releases it meanwhile."""
        steps = [
            job
            for job in self.ctx.store.made_by(request.workflow_id)
            if job.get("workflow_id") == request.workflow_id
        ]
        if not steps:
            return _no_workflow(request.workflow_id, request.rid)
        open_steps = [job["id"] for job in steps if job["state"] not in states.TERMINAL_STATES]
        for job_id in reversed(open_steps):
            self.ctx.cancels.request(job_id, None, request.rid)
        return codec.reply(request.rid, workflow_id=request.workflow_id, cancelling=len(open_steps))

    # -- deferred jobs ------------------------------------------------------------------------

    def _defer(self, message: Defer) -> None:
        core, store = self.core, self.ctx.store
        for job in message.jobs:
            if job.expires_at is not None and self._expired(job):
                continue  # enqueued past its expires_at: discarded at once, nothing to wait for
            ended: dict[str, str] = {}
            for parent_id in core.watch(job):  # watched first: an end meanwhile is heard
                stored = store.get(parent_id)
                if stored is None:  # pruned while the coordinator was down: it had ended
                    log.warning("job %s waits for job %s, which is gone", job.id, parent_id)
                    ended[parent_id] = states.COMPLETED
                elif stored["state"] in states.TERMINAL_STATES:
                    ended[parent_id] = stored["state"]
            self._apply(core.defer(job, ended))

    def _ended(self, message: ParentEnded) -> None:
        self._apply(self.core.ended(message.job_id, message.state, message.result))

    def _cancel(self, message: CancelJob) -> None:
        job = self.core.remove(message.job_id)
        if job is None:
            self.ctx.cancels.missed(message.job_id)  # released on its way to its queue, or gone
        else:
            self.ctx.cancels.settle(job, self.ctx.clock.now())

    def _apply(self, effects: list[Released | Abandoned]) -> None:
        for effect in effects:
            if isinstance(effect, Released):
                self._release(effect.job, effect.results)
            elif effect.parent_state == states.COMPLETED:  # on_failure: only, none failed
                why = "every job it waits for completed: it runs only when one fails"
                self._give_up(effect.job, "not_needed", why)
            else:
                parent = f"job {effect.parent_id} ended {effect.parent_state}"
                self._give_up(effect.job, "parent_failed", parent)

    def _release(self, job: Job, heard: dict[str, Any]) -> None:
        ctx = self.ctx
        assert job.flow is not None
        if job.expires_at is not None and self._expired(job):
            return  # its parents ended after its expires_at: it never runs
        results = None
        if job.flow.pass_results:
            results = tuple(
                heard[parent_id] if parent_id in heard else self._result(parent_id)
                for parent_id in job.flow.depends_on
            )
            size = len(encode([*job.args, list(results)]))
            if size > ctx.max_job_size:
                why = f"its parents' results make its args {size} bytes, over max_job_size"
                self._give_up(job, "too_large", why)
                return
        lifecycle.release(job, ctx.clock.now(), results)
        ctx.store.save(job)
        ctx.queues.get(job.queue).tell(Hold([job]))  # the queue settles a cancel asked meanwhile

    def _result(self, parent_id: str) -> Any:
        stored = self.ctx.store.get(parent_id)
        return stored.get("result") if stored is not None else None

    def _expired(self, job: Job) -> bool:
        """Discard the job if its expires_at has come (docs/PROTOCOL.md extension "Expiry"),
        as the queue would; a client's cancel asked first is the answer instead. True when it
        is gone."""
        ctx = self.ctx
        now = ctx.clock.now()
        if not job.expired(now):
            return False
        if ctx.cancels.asked(job.id):
            ctx.cancels.settle(job, now)
            return True
        lifecycle.expire(job, now)
        ctx.store.save(job)
        ctx.events.emit(events.JOB_TERMINAL, job=job)  # its own dependents hear of it
        return True

    def _give_up(self, job: Job, kind: str, message: str) -> None:
        ctx = self.ctx
        now = ctx.clock.now()
        if ctx.cancels.asked(job.id):  # a client's cancel came first: it is the answer
            ctx.cancels.settle(job, now)
            return
        lifecycle.abandon(job, now, kind, message)
        ctx.store.save(job)
        ctx.events.emit(events.JOB_TERMINAL, job=job)  # its own dependents hear of it


class FlowWatch:
    """The coordinator's event observer that tells the FlowActor of parents ending."""

    def __init__(self, core: FlowCore, flows: Mailbox) -> None:
        self._children = core.children  # read from other threads: one `in` per job ending
        self._flows = flows

    def observe(self, name: str, payload: dict[str, Any]) -> None:
        if name == events.JOB_TERMINAL:
            job = payload["job"]
            if job.id in self._children:
                self._flows.tell(ParentEnded(job.id, job.state, job.result))


def _no_workflow(workflow_id: str, rid: m.Rid) -> bytes:
    return codec.error("unknown_job", f"no workflow {workflow_id}", rid)
