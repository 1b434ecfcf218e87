"""InProcessClient: the dashboard's and the metrics exporter's way into a running coordinator.

It lives in the coordinator's process but outside its actors, like a client at the edge:
- reads that the store answers (`get`, `jobs`, counts) go to the store, which is thread-safe;
- `stats`, `retry` and `workflow` are told to the owning actor as requests from an in-process peer
  (`nodes.observe.traffic`), whose reply comes back through the coordinator's outbox. The calling
  thread waits for it with a deadline; no actor ever waits for the caller.

It bypasses the socket and so the CURVE roles of PROTOCOL.md section 7: it is trusted code
running inside the coordinator. Whoever exposes it (the dashboard) does its own checks.
"""

from __future__ import annotations

import itertools
import threading
from typing import TYPE_CHECKING, Any

from actors.mail import Inbound, Revive
from transport import codec
from transport import messages as m
from transport.errors import ConnectionLost, UnknownJob, error_for_code

if TYPE_CHECKING:
    from actors.context import CoordinatorContext
    from nodes.addons import AddonHost

REPLY_TIMEOUT_S = 2.0
REPLY_ENVELOPE = ("type", "rid")  # the reply's, not the workflow's


class InProcessClient:
    """Reads and a few requests against a started coordinator, from any non-actor thread."""

    def __init__(self, coordinator: AddonHost, timeout: float = REPLY_TIMEOUT_S) -> None:
        self._host = coordinator
        self.clock = coordinator.clock
        self.timeout = timeout
        self._traffic = coordinator.traffic
        self._rids = itertools.count(1)
        self._lock = threading.Lock()
        self._waiting: dict[m.Rid, list[Any]] = {}
        self._peer = self._traffic.add_local_peer(self._on_frame)

    @property
    def ctx(self) -> CoordinatorContext:
        """The context of the term being served; ConnectionLost on a standby (it serves none)."""
        ctx = self._host.ctx
        if ctx is None:
            raise ConnectionLost("this coordinator is not serving (a standby, or stopped)")
        return ctx

    def _on_frame(self, frame: bytes) -> None:
        body = codec.decode(frame, max_size=max(len(frame), codec.MAX_MESSAGE_SIZE_BYTES))
        with self._lock:
            slot = self._waiting.get(body.get("rid"))  # type: ignore[arg-type]
        if slot is not None:
            slot.append(body)
            slot[0].set()

    def _ask(self, kind: str, tell: Any, timeout: float | None) -> dict[str, Any]:
        """Run `tell(rid)`, which sends one request to an actor, and wait for its reply."""
        rid = next(self._rids)
        done = threading.Event()
        slot: list[Any] = [done]
        with self._lock:
            self._waiting[rid] = slot
        try:
            tell(rid)
            limit = self.timeout if timeout is None else timeout
            if not done.wait(limit):
                raise ConnectionLost(f"no answer to {kind} from the coordinator within {limit} s")
        finally:
            with self._lock:
                self._waiting.pop(rid, None)
        body: dict[str, Any] = slot[1]
        if body.get("type") == "error":
            raise error_for_code(body.get("code", "internal"), body.get("message", ""))
        return body

    # -- the API ------------------------------------------------------------------------------

    def stats(self, timeout: float | None = None, *, series: bool = False) -> dict[str, Any]:
        """The `stats` reply: queues with counts per state, workers, unroutable jobs; with
        `series`, throughput and latency per second too."""
        supervisor = self.ctx.supervisor
        body = self._ask(
            "stats",
            lambda rid: supervisor.tell(Inbound(self._peer, m.Stats(rid, series))),
            timeout,
        )
        return m.stats_view(body)

    def retry(self, job_id: str, timeout: float | None = None) -> str:
        """Put a discarded job back in its queue (the `retry` extension); its new state."""
        stored = self.ctx.store.get(job_id)
        if stored is None:
            raise UnknownJob(f"no job {job_id}")
        queue = self.ctx.queues.get(stored["queue"])
        body = self._ask("retry", lambda rid: queue.tell(Revive(job_id, self._peer, rid)), timeout)
        return str(body["state"])

    def workflow(
        self, workflow_id: str, limit: int, timeout: float | None = None
    ) -> dict[str, Any]:
        """The `workflow_get` reply's fields: the workflow's state, counts per state, total and
        its first `limit` steps. UnknownJob when no step was made by that workflow."""
        flows = self.ctx.flows
        body = self._ask(
            "workflow_get",
            lambda rid: flows.tell(Inbound(self._peer, m.WorkflowGet(rid, workflow_id, limit))),
            timeout,
        )
        return {key: value for key, value in body.items() if key not in REPLY_ENVELOPE}

    def get(self, job_id: str) -> dict[str, Any] | None:
        """The job as `get` shows it (its progress too, while it runs), or None."""
        stored = self.ctx.store.get(job_id)
        return None if stored is None else self.ctx.with_progress(stored)

    def jobs(
        self,
        queue: str | None = None,
        state: str | None = None,
        job_type: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Stored jobs matching every filter given, newest first (wire forms)."""
        return self.ctx.store.list(queue, state, job_type, limit)

    def now(self) -> float:
        return self.clock.now()

    def close(self) -> None:
        self._traffic.remove_local_peer(self._peer)
