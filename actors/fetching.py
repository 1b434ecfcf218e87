"""Fetch matching, the part of the WorkerSupervisor that hands jobs to waiting fetches.

A fetch asks its queues one claim at a time, in the worker's order. A fetch that found nothing
parks until its wait ends and leaves a standing claim with each of its queues: a queue serves
standing claims the moment jobs arrive, fewest active first, then longest parked, and the first
jobs to come back answer the fetch; the other standing claims are withdrawn. Split from
worker_supervisor.py to keep each module one concept; the state it uses is owned by
SupervisorCore.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from actors import events, lifecycle, states
from actors.context import CoordinatorContext
from actors.jobs import Job
from actors.mail import Claim, Claimed, FetchExpired, Hold, Stand, Withdraw
from actors.sessions import PendingFetch, Session
from transport import messages as m
from transport.errors import BadRequest, NotRegistered


class FetchMatching:
    """Mixed into SupervisorCore."""

    ctx: CoordinatorContext
    sessions: dict[str, Session]
    reservations: dict[str, Session]
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
        self._withdraw(session, fetch)
        fetch.next_queue = 0
        self._claim_next(session, fetch)

    def _want(self, session: Session, fetch: PendingFetch) -> int:
        return min(fetch.wanted - len(fetch.jobs), session.free_slots)

    def _claim_next(self, session: Session, fetch: PendingFetch) -> None:
        """Ask the next queue in the worker's order, or settle the fetch when none is left."""
        want = self._want(session, fetch) if session.state == states.RUNNING else 0
        if want > 0 and fetch.next_queue < len(fetch.queues) and not fetch.expired:
            queue = fetch.queues[fetch.next_queue]
            fetch.next_queue += 1
            fetch.claim_in_flight = True
            self.ctx.queues.get(queue).tell(Claim(fetch.token, session.profile, want))  # type: ignore[arg-type]
        elif fetch.jobs or fetch.wait <= 0 or fetch.expired:
            self._answer_fetch(session)
        else:
            self._park(session, fetch)

    def claimed(self, message: Claimed) -> None:
        session = self.sessions.get(message.worker_id)
        fetch = session.fetch if session is not None else None
        if session is None or fetch is None:
            self._hold_back(message.queue, message.jobs)
        elif message.standing:
            self._standing_claimed(session, fetch, message)
        elif fetch.token != message.token:
            self._hold_back(message.queue, message.jobs)
        else:
            fetch.claim_in_flight = False
            if session.state == states.RUNNING:
                self._activate(session, fetch, message.jobs)
            else:  # told to stop taking jobs while this claim was out
                self._hold_back(message.queue, message.jobs)
            self._claim_next(session, fetch)

    def _standing_claimed(self, session: Session, fetch: PendingFetch, message: Claimed) -> None:
        """A queue served this fetch's standing claim: take what the worker has room for and
        answer. Jobs beyond that, or for a claim it no longer stands by, go back."""
        if fetch.stand != message.token:
            self._hold_back(message.queue, message.jobs)
            return
        want = self._want(session, fetch)
        self._activate(session, fetch, message.jobs[:want])
        self._hold_back(message.queue, message.jobs[want:])
        self._withdraw(session, fetch, served_by=message.queue)
        if fetch.jobs:
            self._answer_fetch(session)
        else:
            self._stand(session, fetch)

    def _hold_back(self, queue: str, jobs: list[Job]) -> None:
        if jobs:
            self.ctx.queues.get(queue).tell(Hold(jobs))

    def _activate(self, session: Session, fetch: PendingFetch, jobs: list[Job]) -> None:
        now = self.ctx.clock.now()
        for job in jobs:
            lifecycle.activate(job, now, session.worker_id, self._timeout(job))
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
        self._stand(session, fetch)

    def _stand(self, session: Session, fetch: PendingFetch) -> None:
        """Leave (or renew, with today's room and rank) a standing claim with every queue of
        a parked fetch; a full or quiet worker leaves none."""
        want = self._want(session, fetch)
        if want <= 0 or session.state != states.RUNNING or session.profile is None:
            self._withdraw(session, fetch)
            return
        assert fetch.parked_since is not None
        fetch.stand = next(self._tokens)
        rank = (len(session.active), fetch.parked_since)
        stand = Stand(fetch.stand, session.profile, want, rank)
        for queue in fetch.queues:
            self.ctx.queues.get(queue).tell(stand)

    def _withdraw(
        self, session: Session, fetch: PendingFetch, served_by: str | None = None
    ) -> None:
        """Take back the fetch's standing claims (a queue that served one has dropped it)."""
        if fetch.stand is not None:
            withdraw = Withdraw(fetch.stand, session.worker_id)
            fetch.stand = None
            for queue in fetch.queues:
                if queue != served_by:
                    self.ctx.queues.get(queue).tell(withdraw)

    def _drop_fetch(self, session: Session) -> PendingFetch | None:
        fetch, session.fetch = session.fetch, None
        if fetch is not None:
            if fetch.timer is not None:
                fetch.timer.cancel()
            self._withdraw(session, fetch)
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

    def _slot_freed(self, session: Session) -> None:
        """Room freed up (or the worker runs again): a parked fetch may take more now."""
        fetch = session.fetch
        if fetch is None or fetch.parked_since is None or fetch.claim_in_flight:
            return
        if fetch.stand is not None:
            self._stand(session, fetch)  # its queues had nothing for it: renew with more room
        else:
            self._start_claims(session, fetch)

    def _paused(self, session: Session) -> None:
        """The worker was told to stop taking jobs: its standing claims go."""
        if session.fetch is not None:
            self._withdraw(session, session.fetch)
