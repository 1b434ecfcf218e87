"""The Producer behind the `producer` node kind: a small load generator for demos and checks.

It enqueues `count` jobs in batches, follows them to the end with progress lines, then prints a
summary (throughput, enqueue-to-completion latency) and checks the results against `expect`,
so a `corral run` of configs/demo.yaml shows the product working.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TYPE_CHECKING, Any, TextIO

from actors.clock import Clock, SystemClock
from nodes.client import Client, Job, job_spec
from nodes.observe.progress import progress_for
from transport.errors import CorralError

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)

PRODUCER_COUNT = 1000
PRODUCER_BATCH_SIZE = 500
PRODUCER_TIMEOUT_S = 300.0
PROGRESS_INTERVAL_S = 0.5
CLIENT_TIMEOUT_S = 10.0
FOLLOWERS = 16  # concurrent held `get`s: one slow or retried job stalls only 1/16 of them
FOLLOW_WAIT_S = 0.2  # a held get ends early when its job does; this bounds the wait
MISMATCHES_SHOWN = 5
INDEX_PLACEHOLDER = "{i}"


def expand(template: Any, index: int) -> Any:
    """Fill `{i}` in an args template: the exact string becomes the int, else it is formatted."""
    if template == INDEX_PLACEHOLDER:
        return index
    if isinstance(template, str):
        return template.replace(INDEX_PLACEHOLDER, str(index))
    if isinstance(template, list | tuple):
        return [expand(item, index) for item in template]
    if isinstance(template, dict):
        return {name: expand(value, index) for name, value in template.items()}
    return template


def percentile(sorted_values: list[float], fraction: float) -> float:
    """Nearest-rank percentile of an ascending list."""
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _wire_form(value: Any) -> Any:
    """What a value looks like after a msgpack round trip (tuples come back as lists)."""
    if isinstance(value, list | tuple):
        return [_wire_form(item) for item in value]
    if isinstance(value, dict):
        return {name: _wire_form(item) for name, item in value.items()}
    return value


class Producer:
    """Enqueue `count` jobs of one type, follow them to the end, print a summary.

    `run()` blocks and returns the exit code (0 when every job completed with the expected
    result); `start()` runs it on a thread and `stop()` interrupts the waiting.
    """

    def __init__(
        self,
        connect: str | Sequence[str] = "tcp://127.0.0.1:5555",  # several: see Client
        *,
        job_type: str,
        count: int = PRODUCER_COUNT,
        args: list[Any] | tuple[Any, ...] = (),
        options: dict[str, Any] | None = None,
        batch_size: int = PRODUCER_BATCH_SIZE,
        wait: bool = True,
        timeout: float = PRODUCER_TIMEOUT_S,
        progress_interval: float = PROGRESS_INTERVAL_S,
        expect: Callable[..., Any] | None = None,
        name: str = "producer",
        out: TextIO | None = None,
        on_finish: Callable[[], None] | None = None,
        client_timeout: float = CLIENT_TIMEOUT_S,
        clock: Clock | None = None,
        curve: CurveClientConfig | None = None,
    ) -> None:
        self.connect = connect
        self.curve = curve
        self.job_type = job_type
        self.count = count
        self.args = list(args)
        self.options = {k: v for k, v in (options or {}).items() if v not in (None, {})}
        self.batch_size = batch_size
        self.wait = wait
        self.timeout = timeout
        self.progress_interval = progress_interval
        self.expect = expect
        self.name = name
        self.out = out or sys.stdout
        self.on_finish = on_finish
        self.client_timeout = client_timeout
        self.clock = clock or SystemClock()
        self.exit_code: int | None = None
        self.done = threading.Event()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> Producer:
        self._thread = threading.Thread(target=self.run, name=f"corral-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop waiting for the jobs (they stay enqueued) and join the thread."""
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> Producer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def run(self) -> int:
        """Enqueue, wait, summarise; returns (and records) the exit code."""
        try:
            self.exit_code = self._run()
        except CorralError as exc:
            self._say(f"error: {exc}")
            self.exit_code = 1
        except Exception:
            log.exception("producer %r failed", self.name)
            self.exit_code = 1
        finally:
            self.done.set()
            if self.on_finish is not None:
                self.on_finish()
        return self.exit_code if self.exit_code is not None else 1

    # -- the work -----------------------------------------------------------------------------

    def _run(self) -> int:
        started = self.clock.now()
        with Client(self.connect, timeout=self.client_timeout, curve=self.curve) as client:
            job_ids = self._enqueue(client)
            took = self.clock.now() - started
            self._say(f"enqueued {len(job_ids)} {self.job_type} jobs in {took:.2f} s")
            if not self.wait:
                return 0
            jobs = self._follow(client, job_ids, started)
        return self._summarise(jobs, len(job_ids), self.clock.now() - started)

    def _enqueue(self, client: Client) -> list[str]:
        job_ids: list[str] = []
        for first in range(0, self.count, self.batch_size):
            batch = range(first, min(first + self.batch_size, self.count))
            specs = [job_spec(self.job_type, expand(self.args, i), **self.options) for i in batch]
            job_ids.extend(client.enqueue_many(specs))
        return job_ids

    def _follow(self, client: Client, job_ids: list[str], started: float) -> dict[str, Job]:
        """Wait for every job to be terminal, printing progress.

        FOLLOWERS threads each follow every FOLLOWERS-th job, holding a `get` on one job at a
        time and moving on when it is not done within FOLLOW_WAIT_S, so a job waiting for its
        retry delays neither the jobs behind it nor the progress count.
        """
        done: dict[str, Job] = {}
        failed_attempts: dict[str, int] = {}  # job id -> its errors so far, terminal or not
        lock = threading.Lock()
        deadline = started + self.timeout

        def follow(share: list[str]) -> None:
            pending = deque(share)
            while pending and not self._stopping.is_set():
                remaining = deadline - self.clock.now()
                if remaining <= 0:
                    return
                job = client.get(pending[0], wait=min(remaining, FOLLOW_WAIT_S))
                with lock:
                    if job.errors:
                        failed_attempts[job.id] = len(job.errors)
                    if job.terminal:
                        done[pending.popleft()] = job
                if not job.terminal:
                    pending.rotate(-1)  # waiting for a retry, say: look at the next one

        shares = [job_ids[i::FOLLOWERS] for i in range(FOLLOWERS)]
        display = progress_for(self.out, len(job_ids), f"{self.name} {self.job_type}")
        with ThreadPoolExecutor(FOLLOWERS, thread_name_prefix="corral-follow") as pool:
            futures = [pool.submit(follow, share) for share in shares if share]
            while True:
                finished, _ = wait(futures, timeout=self.progress_interval)
                with lock:
                    counts = (*self._counts(list(done.values())), sum(failed_attempts.values()))
                if len(finished) == len(futures):
                    display.close(*counts, self.clock.now() - started)
                    break
                display.update(*counts, self.clock.now() - started)
        for future in futures:
            future.result()  # a follower's CorralError (say, the coordinator gone) surfaces here
        return done

    @staticmethod
    def _counts(done: list[Job]) -> tuple[int, int]:
        """(completed, failed) among the jobs that ended."""
        completed = sum(1 for job in done if job.state == "completed")
        return completed, len(done) - completed

    def _summarise(self, jobs: dict[str, Job], enqueued: int, wall: float) -> int:
        by_state = {state: 0 for state in ("completed", "discarded", "cancelled")}
        for job in jobs.values():
            by_state[job.state] += 1
        retried = sum(1 for job in jobs.values() if job.attempt > 1)
        unfinished = enqueued - len(jobs)
        self._say(
            f"summary: {enqueued} {self.job_type} jobs: {by_state['completed']} completed, "
            f"{by_state['discarded']} discarded, {by_state['cancelled']} cancelled, "
            f"{retried} retried, {unfinished} unfinished in {wall:.2f} s "
            f"({by_state['completed'] / max(wall, 1e-9):.0f} jobs/s)"
        )
        self._latency(jobs)
        correct = self._check_results(jobs)
        if unfinished and self._stopping.is_set():
            self._say(f"interrupted with {unfinished} jobs unfinished (they stay enqueued)")
            return 0
        if unfinished:
            self._say(f"timeout: {unfinished} jobs unfinished after {self.timeout:.0f} s")
        return 0 if by_state["completed"] == enqueued and correct else 1

    def _latency(self, jobs: dict[str, Job]) -> None:
        latencies = sorted(
            job.raw["completed_at"] - job.raw["created_at"]
            for job in jobs.values()
            if job.state == "completed" and job.raw.get("completed_at") is not None
        )
        if latencies:
            self._say(
                f"latency enqueue->completion: p50 {percentile(latencies, 0.5) * 1000:.1f} ms, "
                f"p99 {percentile(latencies, 0.99) * 1000:.1f} ms, "
                f"max {latencies[-1] * 1000:.1f} ms ({len(latencies)} jobs)"
            )

    def _check_results(self, jobs: dict[str, Job]) -> bool:
        """Compare each completed job's result with `expect(*args)`; True when all match."""
        if self.expect is None:
            return True
        completed = [job for job in jobs.values() if job.state == "completed"]
        wrong = []
        for job in completed:
            try:
                expected = _wire_form(self.expect(*job.args))
            except Exception as exc:
                expected = f"<expect raised {type(exc).__name__}: {exc}>"
            if job.result != expected:
                wrong.append((job, expected))
        for job, expected in wrong[:MISMATCHES_SHOWN]:
            self._say(f"wrong result for job {job.id} {job.args}: {job.result!r} != {expected!r}")
        self._say(f"results: {len(completed) - len(wrong)}/{len(completed)} correct")
        return not wrong

    def _say(self, line: str) -> None:
        print(line, file=self.out, flush=True)
