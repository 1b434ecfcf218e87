"""What a worker node registers with and how it behaves on its link (defaults with units)."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

RECONNECT_INITIAL_S = 1.0
RECONNECT_MAX_S = 32.0
FETCH_WAIT_S = 5.0
# With several coordinator endpoints, a hello unanswered this long moves on to the next: a
# leader answers in milliseconds, and waiting heartbeat_timeout (30 s) on a dead address
# would stall a failover that long.
HELLO_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class WorkerSettings:
    """What a worker registers with, and how it behaves on the link."""

    queues: tuple[str, ...] = ("default",)
    concurrency: int = 10
    functions: tuple[str, ...] = ()
    labels: dict[str, list[str]] = field(default_factory=dict)
    hostname: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    name: str | None = None  # shown in `stats`, and `corral quiet NAME` finds the worker by it
    heartbeat_interval: float = 5.0  # until the coordinator says otherwise
    heartbeat_timeout: float = 30.0
    fetch_wait: float = FETCH_WAIT_S
    reconnect_initial: float = RECONNECT_INITIAL_S
    reconnect_max: float = RECONNECT_MAX_S
    hello_timeout: float = HELLO_TIMEOUT_S  # with several endpoints only
