"""Demo job handlers for configs/demo.yaml and for trying `corral enqueue` by hand.

The `producer` node kind that drives them lives in `nodes.producer` (re-exported here).
"""

from __future__ import annotations

import threading
from typing import Any

from actors.worker import current_job
from nodes.producer import Producer

__all__ = ["Producer", "echo", "fail", "fail_sometimes", "nap_ms", "sleep_ms", "square"]


def square(x: float) -> float:
    """The demo's bread and butter: cheap, pure, and easy to check."""
    return x * x


def sleep_ms(ms: float) -> float:
    """Hold a slot for `ms` milliseconds (returns early if the job is cancelled).

    Inside a job it sleeps on the node's clock, so a simulated cluster runs it in virtual time.
    """
    job = current_job()
    if job is not None:
        job.sleep(ms / 1000)
    else:
        threading.Event().wait(ms / 1000)
    return ms


async def nap_ms(ms: float, steps: int = 10) -> float:
    """An `async def` handler: waits `ms` milliseconds in `steps` awaits on the node's clock,
    reporting its progress after each, to watch in `corral status` (`corral enqueue nap_ms
    20000`). A cancel of the job cancels it at its current await."""
    job = current_job()
    assert job is not None, "nap_ms runs as a job"
    for step in range(1, steps + 1):
        await job.asleep(ms / 1000 / steps)
        job.progress(step / steps, f"step {step} of {steps}")
    return ms


def echo(*args: Any) -> list[Any]:
    """Return the arguments, to try `corral enqueue` by hand."""
    return list(args)


def fail_sometimes(x: int, every: int = 25) -> int:
    """Square `x`, but fail the first attempt when x is a multiple of `every`, to show retries.

    Outside a job (a producer computing the expected result) it never fails.
    """
    job = current_job()
    if job is not None and job.attempt == 1 and x % every == 0:
        raise RuntimeError(f"demo failure for {x} on attempt 1")
    return x * x


def fail(message: str = "demo failure") -> None:
    """Always fail: the job is retried (1 s, then 2 s later) and lands in the dead set."""
    job = current_job()
    attempt = job.attempt if job is not None else 0
    raise RuntimeError(f"{message} (attempt {attempt})")
