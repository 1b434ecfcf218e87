"""Fetch matching: the part of the supervisor core that hands jobs to waiting fetches.

A fetch asks its queues one claim at a time, in the worker's order. A fetch that found nothing
parks until its wait ends and leaves a standing claim with each of its queues: a queue serves
standing claims the moment jobs arrive, fewest active first, then longest parked, and the first
jobs to come back answer the fetch; the other standing claims are withdrawn. Each fetch moves
through the table of actors/pending_fetch.py.
"""

from __future__ import annotations

import itertools

from actors import events, lifecycle
from actors.jobs import Job
from actors.leases import Leases
from actors.mail import Claim, Claimed, FetchExpired, Hold, Stand, Withdraw
from actors.pending_fetch import ANSWER, CLAIM, DROP, EXPIRE, EXPIRED, PARK, PARKED
from actors.pending_fetch import PendingFetch as Fetch
from actors.sessions import Session, Sessions
from actors.store.base import Store
from actors.supervisor_port import SupervisorPort
from transport import codec
from transport import messages as m
from transport.errors import BadRequest, NotRegistered


class FetchMatching:
    """Owns the pending fetches (one per session at most) and their standing claims."""

    def __init__(
        self,
        sessions: Sessions,
        leases: Leases,
        store: Store,
        port: SupervisorPort,
        max_wait: float,
    ) -> None:
        self.sessions = sessions
        self.leases = leases
        self.store = store
        self.port = port
        self.max_wait = max_wait  # heartbeat_timeout (section 3.4)
        self._tokens = itertools.count(1)

    def fetch(self, now: float, session: Session, request: m.Fetch) -> None:
        """A new fetch (section 3.4): claims, parks, or is answered at once."""
        if not session.registered:
            raise NotRegistered("register before fetching")
        queues = request.queues or session.queues
        unknown = [q for q in queues if q not in session.queues]
        if unknown:
            raise BadRequest(f"queues {unknown} are not registered for this worker")
        if session.fetch is not None:
            self.answer(now, session)  # a worker has at most one parked fetch
        wait = min(request.wait, self.max_wait)
        fetch = Fetch(next(self._tokens), request.rid, request.count, tuple(queues), wait)
        session.fetch = fetch
        if session.running:
            self._start_claims(now, session, fetch)
        elif fetch.wait > 0:
            self._park(now, session, fetch)  # quiet: nothing until running again or the wait ends
        else:
            self.answer(now, session)

    def claimed(self, now: float, message: Claimed) -> None:
        """Jobs a queue popped for a claim; those nobody waits for any more go back."""
        session = self.sessions.get(message.worker_id)
        fetch = session.fetch if session is not None else None
        if session is None or fetch is None:
            self._hold_back(message.queue, message.jobs)
        elif message.standing:
            self._standing_claimed(now, session, fetch, message)
        elif fetch.token != message.token:
            self._hold_back(message.queue, message.jobs)
        else:
            if session.running:
                self._activate(now, session, fetch, message.jobs)
            else:  # told to stop taking jobs while this claim was out
                self._hold_back(message.queue, message.jobs)
            self._claim_next(now, session, fetch)

    def expired(self, now: float, message: FetchExpired) -> None:
        """The fetch's wait ran out (a stale timer of an earlier fetch changes nothing)."""
        session = self.sessions.get(message.worker_id)
        fetch = session.fetch if session is not None else None
        if session is None or fetch is None or fetch.token != message.token:
            return
        claim_out = fetch.claim_out
        fetch.move(EXPIRE)
        if not claim_out:  # else answered when the claim comes back
            self.answer(now, session)

    def resume(self, now: float, session: Session) -> None:
        """The session (re-)registered: a parked fetch claims again with its new profile."""
        if session.fetch is not None and session.fetch.state == PARKED:
            self._start_claims(now, session, session.fetch)

    def slot_freed(self, now: float, session: Session) -> None:
        """Room freed up (or the worker runs again): a parked fetch may take more now."""
        fetch = session.fetch
        if fetch is None or fetch.state != PARKED:
            return
        if fetch.stand is not None:
            self._stand(session, fetch)  # its queues had nothing for it: renew with more room
        else:
            self._start_claims(now, session, fetch)

    def paused(self, session: Session) -> None:
        """The worker was told to stop taking jobs: its standing claims go."""
        if session.fetch is not None:
            self._withdraw(session, session.fetch)

    def answer(self, now: float, session: Session) -> None:
        """Send the fetch its reply with the jobs it got (perhaps none)."""
        fetch = self._end(session, ANSWER)
        if fetch is not None:
            jobs = [job.to_wire() for job in fetch.jobs]
            self.port.send(session.peer, codec.reply(fetch.rid, jobs=jobs))
            waited = 0.0 if fetch.parked_since is None else now - fetch.parked_since
            self.port.emit(
                events.FETCH_ANSWERED,
                worker_id=session.worker_id,
                jobs=len(fetch.jobs),
                waited=waited,
            )

    def drop(self, session: Session) -> None:
        """The session ended: its fetch goes unanswered."""
        self._end(session, DROP)

    # -- claims -------------------------------------------------------------------------------

    def _start_claims(self, now: float, session: Session, fetch: Fetch) -> None:
        self._withdraw(session, fetch)
        fetch.next_queue = 0
        self._claim_next(now, session, fetch)

    def _want(self, session: Session, fetch: Fetch) -> int:
        return min(fetch.wanted - len(fetch.jobs), session.free_slots)

    def _claim_next(self, now: float, session: Session, fetch: Fetch) -> None:
        """Ask the next queue in the worker's order, or settle the fetch when none is left."""
        want = self._want(session, fetch) if session.running else 0
        expired = fetch.state == EXPIRED
        if want > 0 and fetch.next_queue < len(fetch.queues) and not expired:
            fetch.move(CLAIM)
            queue = fetch.queues[fetch.next_queue]
            fetch.next_queue += 1
            self.port.tell_queue(queue, Claim(fetch.token, session.profile, want))  # type: ignore[arg-type]
        elif fetch.jobs or fetch.wait <= 0 or expired:
            self.answer(now, session)
        else:
            self._park(now, session, fetch)

    def _standing_claimed(
        self, now: float, session: Session, fetch: Fetch, message: Claimed
    ) -> None:
        """A queue served this fetch's standing claim: take what the worker has room for and
        answer. Jobs beyond that, or for a claim it no longer stands by, go back."""
        if fetch.stand != message.token:
            self._hold_back(message.queue, message.jobs)
            return
        want = self._want(session, fetch)
        self._activate(now, session, fetch, message.jobs[:want])
        self._hold_back(message.queue, message.jobs[want:])
        self._withdraw(session, fetch, served_by=message.queue)
        if fetch.jobs:
            self.answer(now, session)
        else:
            self._stand(session, fetch)

    def _hold_back(self, queue: str, jobs: list[Job]) -> None:
        if jobs:
            for job in jobs:
                self.port.free_limit(job)  # the queue acquired its slot when handing it out
            self.port.tell_queue(queue, Hold(jobs))

    def _activate(self, now: float, session: Session, fetch: Fetch, jobs: list[Job]) -> None:
        port = self.port
        for job in jobs:
            lifecycle.activate(job, now, session.worker_id, self.leases.length(job))
            self.store.save(job)
            # Saved before looking: a cancel asked meanwhile either finds the job active in
            # the store (and comes here) or is seen now (actors/cancellation.py).
            if port.cancel_asked(job.id):
                port.free_limit(job)
                port.settle_cancel(job, now)
                continue
            self.leases.hold(session, job)
            fetch.jobs.append(job)
            port.emit(events.JOB_STARTED, job=job)

    # -- parking and standing claims ----------------------------------------------------------

    def _park(self, now: float, session: Session, fetch: Fetch) -> None:
        fetch.move(PARK)
        if fetch.parked_since is None:
            fetch.parked_since = now
            fetch.timer = self.port.later(fetch.wait, FetchExpired(session.worker_id, fetch.token))
        self._stand(session, fetch)

    def _stand(self, session: Session, fetch: Fetch) -> None:
        """Leave (or renew, with today's room and rank) a standing claim with every queue of
        a parked fetch; a full or quiet worker leaves none."""
        want = self._want(session, fetch)
        if want <= 0 or not session.running or session.profile is None:
            self._withdraw(session, fetch)
            return
        assert fetch.parked_since is not None
        fetch.stand = next(self._tokens)
        rank = (len(session.active), fetch.parked_since)
        stand = Stand(fetch.stand, session.profile, want, rank)
        for queue in fetch.queues:
            self.port.tell_queue(queue, stand)

    def _withdraw(self, session: Session, fetch: Fetch, served_by: str | None = None) -> None:
        """Take back the fetch's standing claims (a queue that served one has dropped it)."""
        if fetch.stand is not None:
            withdraw = Withdraw(fetch.stand, session.worker_id)
            fetch.stand = None
            for queue in fetch.queues:
                if queue != served_by:
                    self.port.tell_queue(queue, withdraw)

    def _end(self, session: Session, event: str) -> Fetch | None:
        fetch, session.fetch = session.fetch, None
        if fetch is not None:
            fetch.move(event)
            if fetch.timer is not None:
                fetch.timer.cancel()
            self._withdraw(session, fetch)
        return fetch
