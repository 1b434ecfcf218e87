"""QueueActor: the thin pykka shell around one QueueCore. Enqueues land here.

Parked fetches leave a standing claim (`Stand`) with each of their queues, so a job that
arrives for an idle worker goes out in one hop (queue -> supervisor) instead of three
(availability notice, claim, claimed).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors import events, lifecycle, pauses, states
from actors.admission import admit
from actors.base import CorralActor
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import (
    CancelJob,
    Claim,
    Claimed,
    DeleteJob,
    Hold,
    Inbound,
    LimitFreed,
    Promote,
    Restore,
    Revive,
    RoutingUpdate,
    SetPaused,
    Stand,
    Withdraw,
)
from actors.queue import QueueCore
from actors.routing import WorkerProfile
from actors.store import record
from actors.store.base import Replay
from transport import codec
from transport.errors import BadRequest, DuplicateJob
from transport.messages import Enqueue

log = logging.getLogger(__name__)
RESTORE_BATCH_JOBS = 10_000  # jobs a Restore message holds at once: ~50 ms of the queue


class QueueActor(CorralActor):
    """Owns one queue's waiting jobs; hands them out for claims from the WorkerSupervisor."""

    def __init__(
        self,
        activity: Any,
        ctx: CoordinatorContext,
        name: str,
        workers: tuple[WorkerProfile, ...] = (),
    ) -> None:
        super().__init__(activity)
        self.ctx = ctx
        self.core = QueueCore(name, ctx.limiter)
        self.core.update_workers(workers)  # the live profiles when it started; then RoutingUpdate
        self.core.paused = pauses.key(name) in ctx.store.settings()  # a pause outlives a restart
        self.standing: dict[str, Stand] = {}  # worker_id -> its parked fetch's standing claim

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        return {
            Inbound: self._enqueue,
            Hold: self._hold,
            Restore: self._restore,
            Claim: self._claim,
            Promote: self._promote,
            LimitFreed: self._limit_freed,
            CancelJob: self._cancel,
            RoutingUpdate: self._routing,
            Revive: self._revive,
            DeleteJob: self._delete,
            SetPaused: self._set_paused,
            Stand: self._stand,
            Withdraw: self._withdraw,
        }

    def after_message(self) -> None:
        if self.core.expired:  # discarded by a claim, a promotion or a round: expires_at came
            self._discard_expired()
        self.ctx.unroutable[self.core.name] = self.core.unroutable()  # read by stats
        self.ctx.limited[self.core.name] = self.core.limited()

    def _discard_expired(self) -> None:
        ctx = self.ctx
        for job in self.core.take_expired():
            ctx.store.save(job)
            ctx.events.emit(events.JOB_TERMINAL, job=job)

    def _now_if_expiring(self) -> float | None:
        """The time, when some job held here has an expires_at (else no clock read: most
        queues)."""
        return self.ctx.clock.now() if self.core.next_expiry() is not None else None

    def on_handler_error(self, message: Any) -> None:
        if isinstance(message, Inbound):
            frame = codec.error("internal", "the queue failed", message.request.rid)
            self.ctx.outbox(message.peer, frame)
        elif isinstance(message, CancelJob):
            self.ctx.cancels.failed(message.job_id, "the queue failed")
        elif isinstance(message, Revive | DeleteJob):
            self.ctx.outbox(message.peer, codec.error("internal", "the queue failed", message.rid))

    def _enqueue(self, inbound: Inbound) -> None:
        request: Enqueue = inbound.request  # type: ignore[assignment]
        ctx = self.ctx
        try:
            outcome = admit(ctx, request.specs, request.request_id, (self.core.name, self._hold))
        except LookupError as exc:
            ctx.outbox(inbound.peer, codec.error("bad_request", str(exc), request.rid))
            return
        except DuplicateJob as exc:
            ctx.outbox(inbound.peer, codec.error(exc.code, str(exc), request.rid))
            return
        if isinstance(outcome, Replay):
            frame = _replayed(request, outcome)
        elif request.batch:
            frame = codec.reply(request.rid, job_ids=outcome.ids, states=outcome.states)
        else:
            frame = codec.reply(
                request.rid,
                job_id=outcome.ids[0],
                state=outcome.states[0],
                duplicate=outcome.duplicate[0],
            )
        ctx.outbox(inbound.peer, frame)

    def _hold(self, message: Hold) -> None:
        cancels = self.ctx.cancels
        asked = cancels.asked if cancels else None  # a cancel that raced the job here
        ready = False
        for job in message.jobs:
            if asked is not None and asked(job.id):
                cancels.settle(job, self.ctx.clock.now())
            else:
                ready = self.core.add(job) or ready
        first = self.core.next_expiry()
        if first is not None:  # a job past its expires_at already is discarded at once
            now = self.ctx.clock.now()
            if first <= now:
                self.core.expire(now)
        if ready:
            self._serve_standing()

    def _restore(self, message: Restore) -> None:
        """Hold the next RESTORE_BATCH_JOBS of the records and send the rest to the back of
        the mailbox: the fetches and enqueues that came meanwhile are served between batches
        instead of after every job is back (seconds, for a million)."""
        records, start, first_seq = message.records, message.start, message.first_seq
        stop = min(start + RESTORE_BATCH_JOBS, len(records))
        if stop < len(records):  # posted: never handled inline, on a sender's thread
            self.mailbox().post(Restore(records, first_seq, stop))
        self._hold(Hold([record.job(records[i], first_seq + i) for i in range(start, stop)]))

    def _set_paused(self, message: SetPaused) -> None:
        """Pause or resume; the reply leaves once the change is durable. Resumed, the queue
        serves the fetches parked on it at once."""
        core, ctx = self.core, self.ctx
        if core.paused != message.paused:
            core.paused = message.paused
            ctx.store.put_setting(pauses.key(core.name), pauses.PAUSED if core.paused else None)
            ctx.events.emit(events.QUEUE_PAUSED, queue=core.name, paused=core.paused)
        frame = codec.reply(message.rid, queue=core.name, paused=core.paused)
        ctx.store.after_commit(lambda: ctx.outbox(message.peer, frame))
        if not core.paused:
            self._serve_standing()

    def _claim(self, message: Claim) -> None:
        jobs = self.core.claim(message.worker, message.count, self._now_if_expiring())
        self.ctx.supervisor.tell(
            Claimed(message.token, message.worker.worker_id, self.core.name, jobs)
        )

    def _stand(self, message: Stand) -> None:
        self.standing[message.worker.worker_id] = message
        if self.core.has_ready():
            self._serve(message)

    def _withdraw(self, message: Withdraw) -> None:
        stand = self.standing.get(message.worker_id)
        if stand is not None and stand.token == message.token:
            del self.standing[message.worker_id]

    def _serve_standing(self) -> None:
        """Hand waiting jobs to parked fetches: fewest active first, then longest parked."""
        for stand in sorted(self.standing.values(), key=lambda s: s.rank):
            if not self.core.has_ready():
                return
            self._serve(stand)

    def _serve(self, stand: Stand) -> None:
        jobs = self.core.claim(stand.worker, stand.count, self._now_if_expiring())
        if jobs:
            worker_id = stand.worker.worker_id
            del self.standing[worker_id]
            self.ctx.supervisor.tell(
                Claimed(stand.token, worker_id, self.core.name, jobs, standing=True)
            )

    def _promote(self, message: Promote) -> None:
        self.core.expire(message.now)  # first: an expired job is discarded, never promoted
        promoted = self.core.promote(message.now)
        for job in promoted:
            self.ctx.store.save(job)
        if self.core.refresh() or promoted:  # refresh: rate limits have gained tokens
            self._serve_standing()

    def _limit_freed(self, message: LimitFreed) -> None:
        if self.core.release(message.bucket):
            self._serve_standing()

    def _cancel(self, message: CancelJob) -> None:
        job = self.core.remove(message.job_id)
        if job is None:
            self.ctx.cancels.missed(message.job_id)  # on its way here, or gone
        else:
            self.ctx.cancels.settle(job, self.ctx.clock.now())

    def _revive(self, message: Revive) -> None:
        """Retry a discarded job by hand (lifecycle.revive)."""
        ctx = self.ctx
        stored = ctx.store.get(message.job_id)
        if stored is None or stored["state"] != states.DISCARDED:
            state = stored["state"] if stored else "unknown"
            ctx.outbox(
                message.peer,
                codec.error(
                    "bad_request",
                    f"only a discarded job can be retried (this one is {state})",
                    message.rid,
                ),
            )
            return
        job = Job.from_wire(stored, next(ctx.seq))
        holder = ctx.store.unique_holder(job.unique_key) if job.unique_key else None
        if holder is not None:
            ctx.outbox(
                message.peer,
                codec.error("bad_request", f"unique_key is held by job {holder}", message.rid),
            )
            return
        lifecycle.revive(job)
        ctx.store.save(job)
        self._hold(Hold([job]))  # may hand it to a parked fetch at once: reply what we did
        ctx.outbox(message.peer, codec.reply(message.rid, state=states.AVAILABLE))

    def _delete(self, message: DeleteJob) -> None:
        """Forget an ended job for good (extension "Delete"). Nothing here holds it (a queue
        holds waiting jobs only), nor does any other actor once it ended: the store's copy is
        all there is. The reply leaves once its row is gone from disk."""
        ctx, job_id = self.ctx, message.job_id
        try:
            deleted = ctx.store.delete(job_id)
        except BadRequest as exc:  # not ended
            ctx.outbox(message.peer, codec.error(exc.code, exc.message, message.rid))
            return
        if not deleted:  # deleted or pruned since the dispatcher looked
            ctx.outbox(message.peer, codec.error("unknown_job", f"no job {job_id}", message.rid))
            return
        log.info("job %s deleted by hand", job_id)
        frame = codec.reply(message.rid, deleted=True)
        ctx.store.after_commit(lambda: ctx.outbox(message.peer, frame))

    def _routing(self, message: RoutingUpdate) -> None:
        self.core.update_workers(message.workers)
        self._serve_standing()  # jobs no worker could take may now be routable


def _replayed(request: Enqueue, replay: Replay) -> bytes:
    """The reply to an enqueue whose request id made jobs already: the first reply's shape (the
    shape this request asked for), their current states, `replayed: true`."""
    ids = [wire["id"] for wire in replay.jobs]
    job_states = [wire["state"] for wire in replay.jobs]
    if request.batch:
        return codec.reply(request.rid, job_ids=ids, states=job_states, replayed=True)
    return codec.reply(
        request.rid, job_id=ids[0], state=job_states[0], duplicate=False, replayed=True
    )
