"""VirtualTime: the `corral_time` fixture, moving a simulated cluster's clock from a test.

Everything here drives `Cluster` (nodes/cluster.py): time moves only when a test asks, each
timer fires at its own deadline in order, so a 30 s heartbeat timeout or a backoff of minutes
costs milliseconds of real time and lands on the same virtual instant on every run.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the plugin imports this module lazily, from a fixture
    from nodes.client import Client, Job
    from nodes.cluster import Cluster

DEFAULT_WITHIN_S = 3600.0  # virtual: an hour of simulated time is a few ms of real time


class VirtualTime:
    """Move the virtual clock of a simulated cluster; read it."""

    def __init__(self, cluster: Cluster) -> None:
        self._cluster = cluster
        self._client: Client | None = None
        self.started_at = cluster.clock.now()

    def now(self) -> float:
        """Virtual UNIX seconds (the clock every node of the cluster reads)."""
        return self._cluster.clock.now()

    def elapsed(self) -> float:
        """Virtual seconds since the cluster started."""
        return self.now() - self.started_at

    def advance(self, seconds: float) -> None:
        """Move time forward by `seconds`, firing every timer due on the way, in order."""
        self._cluster.advance(seconds)

    def run_until(self, condition: Callable[[], Any], within: float = DEFAULT_WITHIN_S) -> None:
        """Step time until `condition()` is truthy; `Stuck` (naming the seed) after `within`
        virtual seconds. Time stops at the first step where it holds, not at `within`."""
        self._cluster.run_until(condition, within=within)

    def settle(self) -> None:
        """Deliver every pending message and handler turn without moving time."""
        self._cluster.settle()

    def step(self) -> float:
        """Settle, then fire the next timer; returns the virtual time it fired at."""
        return self._cluster.step()

    def wait_job(self, job_id: str, within: float = DEFAULT_WITHIN_S) -> Job:
        """Run virtual time until the job ends (completed, discarded or cancelled); return it
        as stored, errors and all. Unlike `JobHandle.result` it does not raise when the job
        failed, so a test can look at its attempts and errors.

        Raises TimeoutError when the job has not ended within `within` virtual seconds.
        """
        job = self._requests().get(job_id, wait=within)
        if not job.terminal:
            raise TimeoutError(
                f"job {job_id} still {job.state} after {within} virtual s "
                f"(seed={self._cluster.seed})"
            )
        return job

    def _requests(self) -> Client:
        # A client of its own: the test's `corral_client` may be closed or partitioned.
        if self._client is None:
            self._client = self._cluster.client("corral-time")
        return self._client
