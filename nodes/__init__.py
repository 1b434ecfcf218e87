"""What a user starts or embeds: Coordinator, WorkerNode, Client, Cluster."""

from nodes.client import Client, JobHandle
from nodes.cluster import Cluster
from nodes.coordinator import Coordinator
from nodes.worker_node import WorkerNode

__all__ = ["Client", "Cluster", "Coordinator", "JobHandle", "WorkerNode"]
