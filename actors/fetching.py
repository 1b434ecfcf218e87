"""Fetch matching, the part of the WorkerSupervisor that hands jobs to waiting fetches.

A fetch asks its queues one claim at a time, in the worker's order; a fetch that found nothing
parks until its wait ends, and parked fetches are offered a queue's new jobs one claim at a time,
fewest active first, then longest waiting. Split from worker_supervisor.py to keep each module
one concept; the state it uses is owned by SupervisorCore.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from actors import events, states
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import Claim, Claimed, FetchExpired, Hold, JobsAvailable
from actors.sessions import PendingFetch, Session
from transport import messages as m
from transport.errors import BadRequest, NotRegistered


class FetchMatching:
    """Mixed into SupervisorCore."""

    ctx: CoordinatorContext
    sessions: dict[str, Session]
    reservations: dict[str, Session]
    parked: dict[str, dict[str, None]]  # queue -> parked worker ids, oldest first
    waking: dict[str, list[str]]  # queue -> parked workers still to offer jobs to
    offers: dict[str, int]  # queue -> token of the fetch its jobs are offered to
    rewake: set[str]
    epochs: dict[str, int]  # queue -> how many availability notices it sent
    _tokens: itertools.count[int]

    # Provided by SupervisorCore:
    _session: Callable[[bytes, str], Session]
    _send: Callable[..., None]
    _timeout: Callable[[Job], float]

    def fetch(self, peer: bytes, request: m.Fetch) -> None:
        session = self._session(peer, request.worker_id)
        if not session.registered:
            raise NotRegistered("register before fetching")
        queues = request.queues or session.queues
        unknown = [q for q in queues if q not in session.queues]
        if unknown:
            raise BadRequest(f"queues {unknown} are not registered for this worker")
        if session.fetch is not None:
            self._answer_fetch(session)
        fetch = PendingFetch(
            token=next(self._tokens),
            rid=request.rid,
            wanted=request.count,
            queues=tuple(queues),
            wait=min(request.wait, self.ctx.settings.heartbeat_timeout),
        )
        session.fetch = fetch
        if session.state == states.RUNNING:
            self._start_claims(session, fetch)
        elif fetch.wait > 0:
            self._park(session, fetch)  # quiet: nothing until running again or the wait ends
        else:
            self._answer_fetch(session)

    def _start_claims(self, session: Session, fetch: PendingFetch) -> None:
        fetch.next_queue = 0
        self._claim_next(session, fetch)

    def _claim_next(self, session: Session, fetch: PendingFetch) -> None:
        """Ask the next queue in the worker's order, or settle the fetch when none is left."""
        want = min(fetch.wanted - len(fetch.jobs), session.free_slots)
        if want > 0 and fetch.next_queue < len(fetch.queues) and not fetch.expired:
            queue = fetch.queues[fetch.next_queue]
            fetch.next_queue += 1
            fetch.claim_in_flight = True
            self.ctx.queues.get(queue).tell(Claim(fetch.token, session.profile, want))  # type: ignore[arg-type]
        elif fetch.jobs or fetch.wait <= 0 or fetch.expired:
            self._answer_fetch(session)
        elif want > 0 and any(self.epochs.get(q, 0) != fetch.seen.get(q, 0) for q in fetch.queues):
            # Jobs arrived in a queue after we had asked it (news we could not act on while
            # still asking the later queues): ask again rather than park past them.
            self._start_claims(session, fetch)
        else:
            self._park(session, fetch)

    def claimed(self, message: Claimed) -> None:
        session = self.sessions.get(message.worker_id)
        fetch = session.fetch if session is not None else None
        offer = self.offers.get(message.queue) == message.token
        if offer:
            del self.offers[message.queue]
        if session is None or fetch is None or fetch.token != message.token:
            if message.jobs:
                self.ctx.queues.get(message.queue).tell(Hold(message.jobs))
        else:
            fetch.claim_in_flight = False
            fetch.seen[message.queue] = self.epochs.get(message.queue, 0)
            self._activate(session, fetch, message.jobs)
            if not offer:
                self._claim_next(session, fetch)
            elif fetch.jobs or fetch.expired:
                self._answer_fetch(session)
        if offer:
            self._wake_next(message.queue)

    def _activate(self, session: Session, fetch: PendingFetch, jobs: list[Job]) -> None:
        now = self.ctx.clock.now()
        for job in jobs:
            job.move(states.ACTIVE)
            job.attempt += 1
            job.worker_id = session.worker_id
            job.started_at = now
            job.deadline = now + self._timeout(job)
            session.active[job.id] = job
            self.reservations[job.id] = session
            self.ctx.store.save(job)
            fetch.jobs.append(job)
            self.ctx.events.emit(events.JOB_STARTED, job=job)

    def _park(self, session: Session, fetch: PendingFetch) -> None:
        if fetch.parked_since is None:
            fetch.parked_since = self.ctx.clock.now()
            mailbox = self.ctx.supervisor
            worker_id, token = session.worker_id, fetch.token
            fetch.timer = self.ctx.clock.call_later(
                fetch.wait, lambda: mailbox.tell(FetchExpired(worker_id, token))
            )
            for queue in fetch.queues:
                self.parked.setdefault(queue, {})[session.worker_id] = None

    def _drop_fetch(self, session: Session) -> PendingFetch | None:
        fetch, session.fetch = session.fetch, None
        if fetch is not None:
            if fetch.timer is not None:
                fetch.timer.cancel()
            for queue in fetch.queues:
                self.parked.get(queue, {}).pop(session.worker_id, None)
        return fetch

    def _answer_fetch(self, session: Session) -> None:
        fetch = self._drop_fetch(session)
        if fetch is not None:
            self._send(session.peer, fetch.rid, jobs=[job.to_wire() for job in fetch.jobs])
            parked = fetch.parked_since
            waited = 0.0 if parked is None else self.ctx.clock.now() - parked
            self.ctx.events.emit(
                events.FETCH_ANSWERED,
                worker_id=session.worker_id,
                jobs=len(fetch.jobs),
                waited=waited,
            )

    def fetch_expired(self, message: FetchExpired) -> None:
        session = self.sessions.get(message.worker_id)
        if session is None or session.fetch is None or session.fetch.token != message.token:
            return
        if session.fetch.claim_in_flight:
            session.fetch.expired = True  # answered when the claim comes back
        else:
            self._answer_fetch(session)

    def jobs_available(self, message: JobsAvailable) -> None:
        """Offer the queue to its parked fetches: fewest active first, then longest waiting.

        One offer (a claim) is out per queue at a time; availability news that arrives during
        a round of offers starts another round when this one ends.
        """
        queue = message.queue
        self.epochs[queue] = self.epochs.get(queue, 0) + 1
        if queue in self.waking:
            self.rewake.add(queue)
            return
        parked = [self.sessions[w] for w in self.parked.get(queue, ()) if w in self.sessions]
        if not parked:
            return
        parked.sort(key=lambda s: (len(s.active), s.fetch.parked_since if s.fetch else 0.0))
        self.waking[queue] = [s.worker_id for s in parked]
        self._wake_next(queue)

    def _wake_next(self, queue: str) -> None:
        pending = self.waking.get(queue, [])
        while pending:
            session = self.sessions.get(pending.pop(0))
            fetch = session.fetch if session is not None else None
            if session is None or fetch is None or fetch.parked_since is None:
                continue
            want = min(fetch.wanted - len(fetch.jobs), session.free_slots)
            if fetch.claim_in_flight or want <= 0 or session.state != states.RUNNING:
                continue
            fetch.claim_in_flight = True
            self.offers[queue] = fetch.token
            self.ctx.queues.get(queue).tell(Claim(fetch.token, session.profile, want))  # type: ignore[arg-type]
            return
        self.waking.pop(queue, None)
        if queue in self.rewake:
            self.rewake.discard(queue)
            self.jobs_available(JobsAvailable(queue))

    def _slot_freed(self, session: Session) -> None:
        fetch = session.fetch
        if fetch is not None and fetch.parked_since is not None and not fetch.claim_in_flight:
            self._start_claims(session, fetch)
