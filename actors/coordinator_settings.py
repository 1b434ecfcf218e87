"""A coordinator's timing and limits, apart from its context so that pure cores can take
them without importing the actors' runtime."""

from __future__ import annotations

from dataclasses import dataclass

HEARTBEAT_INTERVAL_S = 5.0
HEARTBEAT_TIMEOUT_S = 30.0
VISIBILITY_TIMEOUT_S = 1800.0
REAPER_INTERVAL_S = 1.0
TERMINATED_RETENTION_S = 300.0
MAX_QUEUES = 1000


@dataclass(frozen=True)
class CoordinatorSettings:
    """Timing and limits of one coordinator (PROTOCOL.md defaults)."""

    heartbeat_interval: float = HEARTBEAT_INTERVAL_S
    heartbeat_timeout: float = HEARTBEAT_TIMEOUT_S
    visibility_timeout: float = VISIBILITY_TIMEOUT_S
    reaper_interval: float = REAPER_INTERVAL_S
    terminated_retention: float = TERMINATED_RETENTION_S
    max_queues: int = MAX_QUEUES
