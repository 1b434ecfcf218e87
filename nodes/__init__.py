"""What a user starts or embeds: Coordinator, WorkerNode, Client (AsyncClient under asyncio),
Cluster (and Schedule, a periodic job, and LimitRule, a limit per job type or queue, a
Coordinator is started with), and `current_job()` for handlers.

The names load on first use (PEP 562): the pytest plugin (nodes/testing/plugin.py) is imported by
every pytest session of a project that has corral installed, and importing the package for it
must not cost the half second that loading every node does.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from actors.limits import LimitRule
    from actors.worker import current_job
    from nodes.async_client import AsyncClient
    from nodes.client import Client, JobHandle
    from nodes.cluster import Cluster
    from nodes.coordinator import Coordinator
    from nodes.worker_node import WorkerNode
    from nodes.workflow_requests import chain, group, step
    from transport.messages import Schedule

# A library prints nothing unasked (see actors/__init__.py); `corral.*` are the event and node
# loggers of nodes/observe and nodes/process.
for _name in (__name__, "corral"):
    logging.getLogger(_name).addHandler(logging.NullHandler())

_HOMES = {
    "AsyncClient": "nodes.async_client",
    "Client": "nodes.client",
    "Cluster": "nodes.cluster",
    "Coordinator": "nodes.coordinator",
    "JobHandle": "nodes.client",
    "LimitRule": "actors.limits",
    "Schedule": "transport.messages",
    "WorkerNode": "nodes.worker_node",
    "chain": "nodes.workflow_requests",
    "current_job": "actors.worker",
    "group": "nodes.workflow_requests",
    "step": "nodes.workflow_requests",
}

__all__ = [  # the keys of _HOMES (a literal, for linters and type checkers)
    "AsyncClient",
    "Client",
    "Cluster",
    "Coordinator",
    "JobHandle",
    "LimitRule",
    "Schedule",
    "WorkerNode",
    "chain",
    "current_job",
    "group",
    "step",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
