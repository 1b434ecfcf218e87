"""What the supervisor core does to the world, as one narrow port the pykka shell implements.

The core (actors/supervisor_core.py and its parts) holds the rules and the state; everything
that leaves it (a reply on the socket, a message to a queue, an event for observers, a timer,
a cancel settled) goes through here. A test gives the core a recording port and drives it
message by message with the time it chooses.
"""

from __future__ import annotations

from typing import Any, Protocol

from actors.jobs import Job
from actors.routing import WorkerProfile


class Cancellable(Protocol):
    """A timer as the core sees it: something it may call off (a clock's Timer in the shell)."""

    def cancel(self) -> None: ...


class SupervisorPort(Protocol):
    def send(self, peer: bytes, frame: bytes) -> None:
        """Send an encoded frame to a connection (after the store's commit)."""
        ...

    def tell_queue(self, queue: str, message: object) -> None:
        """Tell a queue actor (Claim, Stand, Withdraw, Hold)."""
        ...

    def open_queue(self, queue: str) -> None:
        """Make sure the queue exists; LookupError past the coordinator's queue limit."""
        ...

    def publish(self, workers: tuple[WorkerProfile, ...]) -> None:
        """Send every queue the live registered workers' routing profiles."""
        ...

    def emit(self, event: str, **payload: Any) -> None:
        """Tell the observers (actors/events.py)."""
        ...

    def later(self, delay: float, message: object) -> Cancellable:
        """Tell the supervisor `message` after `delay` seconds, unless the timer is cancelled."""
        ...

    def new_worker_id(self) -> str: ...

    def forget_peer(self, peer: bytes) -> None:
        """The connection has had no session for the retention: it must say hello again."""
        ...

    def cancel_asked(self, job_id: str) -> bool:
        """A client asked to cancel this job and has no answer yet (actors/cancellation.py)."""
        ...

    def settle_cancel(self, job: Job, now: float) -> None:
        """Cancel a job the core has let go of and answer whoever asked."""
        ...

    def free_limit(self, job: Job) -> None:
        """The job no longer holds a slot of its limit (actors.limits): it was let go unused,
        or stopped being active. Queues holding jobs back for that limit hear of it."""
        ...

    def take_limit(self, job: Job) -> None:
        """The job, found active at a restart, holds a slot of its limit whatever the room."""
        ...

    def cancel_missed(self, job_id: str) -> None:
        """A cancel reached the core for a job it does not hold: answered if the job ended."""
        ...
