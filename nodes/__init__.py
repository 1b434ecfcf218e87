"""What a user starts or embeds: Coordinator, WorkerNode, Client (AsyncClient under asyncio),
Cluster (and Schedule, a periodic job, and LimitRule, a limit per job type or queue, a
Coordinator is started with)."""

import logging

from actors.limits import LimitRule
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

__all__ = [
    "AsyncClient",
    "Client",
    "Cluster",
    "Coordinator",
    "JobHandle",
    "LimitRule",
    "Schedule",
    "WorkerNode",
    "chain",
    "group",
    "step",
]
