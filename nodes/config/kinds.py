"""One frozen dataclass per node kind: coordinator, worker, producer, gateway.

Its fields marked with `fields.check` are the schema of that kind's YAML mapping, and their
defaults are the documented defaults; `validate` adds the checks across keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from actors.coordinator_settings import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    MAX_QUEUES,
    REAPER_INTERVAL_S,
    VISIBILITY_TIMEOUT_S,
)
from actors.leadership import FAILOVER_TIMEOUT_S
from actors.limits import LimitRule
from actors.worker_settings import FETCH_WAIT_S, RECONNECT_INITIAL_S, RECONNECT_MAX_S
from nodes import producer as load
from nodes.config import fields as f
from nodes.config.fields import Where
from nodes.config.gateway import TOKENS, TokenConfig
from nodes.config.limits import parse_job_limits
from nodes.config.observability import (
    BIND,
    DashboardConfig,
    MetricsConfig,
    parse_dashboard,
    parse_metrics,
)
from nodes.config.schedules import parse_schedules
from nodes.config.security import (
    PeerSecurityConfig,
    SecurityConfig,
    parse_peer_security,
    parse_security,
)
from nodes.gateway.node import DEFAULT_GATEWAY_BIND
from nodes.gateway.node import REQUEST_TIMEOUT_S as GATEWAY_TIMEOUT_S
from nodes.gateway.workers import MAX_HTTP_WORKERS
from nodes.observe.logs import check_log_format
from nodes.stores import POSTGRES_PREFIXES
from nodes.worker_node import SHUTDOWN_GRACE_S
from transport.codec import MAX_DEPTH, MAX_MESSAGE_SIZE_BYTES, PEER_MAX_DEPTH
from transport.messages import Schedule
from transport.validation.limits import (
    MAX_BATCH_JOBS,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
)

DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_CONNECT = "tcp://127.0.0.1:5555"
DEFAULT_STORE = "memory"
DEFAULT_LOG_LEVEL = "INFO"
WORKER_CONCURRENCY = 10
MIN_MESSAGE_SIZE_BYTES = 1024
MIN_DEPTH = 4  # an enqueue batch nests 4 deep: frame map, jobs list, job map, args list
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1
MAX_CONCURRENCY = 10_000  # one thread per slot: more is a typo
MAX_SIZE_BYTES = 2**31 - 1  # msgpack's and ZeroMQ's frame sizes are 32-bit here
SIZE = f.check(f.integer(1, MAX_SIZE_BYTES))


def connect_address(bind: str) -> str:
    """Where a peer on this host connects to reach a coordinator bound to `bind`."""
    for wildcard, local in (("*", "127.0.0.1"), ("0.0.0.0", "127.0.0.1"), ("[::]", "[::1]")):
        if bind.startswith(f"tcp://{wildcard}:"):
            return f"tcp://{local}:" + bind.removeprefix(f"tcp://{wildcard}:")
    return bind


@dataclass(frozen=True, kw_only=True)
class NodeConfig:
    """What every node kind shares: its name, where it came from, its log level."""

    kind: ClassVar[str] = ""
    name: str
    file: str
    base_dir: Path
    log_level: str = field(default=DEFAULT_LOG_LEVEL, metadata=f.LOG_LEVEL)
    log_format: str = field(default="text", metadata=f.check(check_log_format))  # or json

    @property
    def where(self) -> Where:
        return Where(self.file, self.name, self.base_dir)

    def validate(self) -> None:
        """Cross-key checks, after every key passed its own."""


@dataclass(frozen=True, kw_only=True)
class CoordinatorConfig(NodeConfig):
    """A coordinator: its socket, store, timings and size limits."""

    kind: ClassVar[str] = "coordinator"
    bind: str = field(default=DEFAULT_BIND, metadata=f.ENDPOINT)
    store: str = field(default=DEFAULT_STORE, metadata=f.STORE_URL)
    heartbeat_interval: float = field(default=HEARTBEAT_INTERVAL_S, metadata=f.SECONDS)
    heartbeat_timeout: float = field(default=HEARTBEAT_TIMEOUT_S, metadata=f.SECONDS)
    visibility_timeout: float = field(default=VISIBILITY_TIMEOUT_S, metadata=f.SECONDS)
    reaper_interval: float = field(default=REAPER_INTERVAL_S, metadata=f.SECONDS)
    max_message_size: int = field(
        default=MAX_MESSAGE_SIZE_BYTES,
        metadata=f.check(f.integer(MIN_MESSAGE_SIZE_BYTES, MAX_SIZE_BYTES)),
    )
    # None: min(512 KiB, max_message_size), as PROTOCOL.md section 1 caps job and result sizes
    max_job_size: int | None = field(default=None, metadata=SIZE)
    max_result_size: int | None = field(default=None, metadata=SIZE)
    max_batch_jobs: int = field(default=MAX_BATCH_JOBS, metadata=f.POSITIVE_INT)
    max_name_chars: int = field(default=MAX_NAME_CHARS, metadata=f.POSITIVE_INT)
    max_list_items: int = field(default=MAX_LIST_ITEMS, metadata=f.POSITIVE_INT)
    max_depth: int = field(
        default=MAX_DEPTH, metadata=f.check(f.integer(MIN_DEPTH, PEER_MAX_DEPTH - 8))
    )
    max_queues: int = field(default=MAX_QUEUES, metadata=f.POSITIVE_INT)
    # With a PostgreSQL store (docs/HA.md): how soon a standby replaces a silent leader, and
    # the endpoint peers are sent to (None: the connect address of `bind`).
    failover_timeout: float = field(default=FAILOVER_TIMEOUT_S, metadata=f.SECONDS)
    advertise: str | None = field(default=None, metadata=f.ENDPOINT)
    security: SecurityConfig | None = field(default=None, metadata=f.check(parse_security))
    metrics: MetricsConfig | None = field(default=None, metadata=f.check(parse_metrics))
    dashboard: DashboardConfig | None = field(default=None, metadata=f.check(parse_dashboard))
    schedules: tuple[Schedule, ...] = field(default=(), metadata=f.check(parse_schedules))
    job_limits: tuple[LimitRule, ...] = field(default=(), metadata=f.check(parse_job_limits))

    @property
    def connect_address(self) -> str:
        return connect_address(self.bind)

    @property
    def shares_store(self) -> bool:
        """A PostgreSQL store: coordinators naming it lead in turn (docs/HA.md)."""
        return self.store.startswith(POSTGRES_PREFIXES)

    def validate(self) -> None:
        if self.heartbeat_timeout <= self.heartbeat_interval:
            raise self.where.error(
                f"must be greater than heartbeat_interval ({self.heartbeat_interval} s)",
                "heartbeat_timeout",
            )
        for name in ("max_job_size", "max_result_size"):
            value = getattr(self, name)
            if value is not None and value > self.max_message_size:
                raise self.where.error(
                    f"{value} is above max_message_size ({self.max_message_size})", name
                )


@dataclass(frozen=True, kw_only=True)
class WorkerConfig(NodeConfig):
    """A worker: where it connects, what it consumes, and the handlers it runs."""

    kind: ClassVar[str] = "worker"
    connect: str | tuple[str, ...] = field(default=DEFAULT_CONNECT, metadata=f.ENDPOINTS)
    queues: tuple[str, ...] = field(default=("default",), metadata=f.STR_LIST)
    concurrency: int = field(
        default=WORKER_CONCURRENCY, metadata=f.check(f.integer(1, MAX_CONCURRENCY))
    )
    labels: dict[str, tuple[str, ...]] | None = field(default=None, metadata=f.LABELS)
    handlers: dict[str, str] = field(metadata=f.HANDLERS)
    shutdown_grace: float = field(default=SHUTDOWN_GRACE_S, metadata=f.SECONDS_OR_ZERO)
    fetch_wait: float = field(default=FETCH_WAIT_S, metadata=f.SECONDS_OR_ZERO)
    reconnect_initial: float = field(default=RECONNECT_INITIAL_S, metadata=f.SECONDS)
    reconnect_max: float = field(default=RECONNECT_MAX_S, metadata=f.SECONDS)
    security: PeerSecurityConfig | None = field(default=None, metadata=f.check(parse_peer_security))

    def validate(self) -> None:
        if not self.handlers:
            raise self.where.error("a worker needs at least one handler", "handlers")

    def import_handlers(self) -> dict[str, Any]:
        """Import every handler now, so a typo fails at start, not at the first job."""
        return {
            job_type: f.import_ref(reference, self.where, f"handlers.{job_type}")
            for job_type, reference in self.handlers.items()
        }


@dataclass(frozen=True, kw_only=True)
class ProducerConfig(NodeConfig):
    """A load/demo node: enqueue `count` jobs, wait for them, print a summary."""

    kind: ClassVar[str] = "producer"
    connect: str | tuple[str, ...] = field(default=DEFAULT_CONNECT, metadata=f.ENDPOINTS)
    type: str = field(metadata=f.TEXT)
    count: int = field(default=load.PRODUCER_COUNT, metadata=f.POSITIVE_INT)
    args: tuple[Any, ...] = field(default=(), metadata=f.DATA_LIST)  # "{i}": the job index
    queue: str = field(default="default", metadata=f.TEXT)
    priority: int = field(default=0, metadata=f.check(f.integer(PRIORITY_MIN, PRIORITY_MAX)))
    route: dict[str, str] | None = field(default=None, metadata=f.STR_MAP)
    max_attempts: int | None = field(default=None, metadata=f.POSITIVE_INT)
    batch_size: int = field(
        default=load.PRODUCER_BATCH_SIZE, metadata=f.check(f.integer(1, MAX_BATCH_JOBS))
    )
    wait: bool = field(default=True, metadata=f.FLAG)
    timeout: float = field(default=load.PRODUCER_TIMEOUT_S, metadata=f.SECONDS)
    progress_interval: float = field(default=load.PROGRESS_INTERVAL_S, metadata=f.SECONDS)
    # computes the expected result from the args; each completed job is checked against it
    expect: str | None = field(default=None, metadata=f.REF)
    security: PeerSecurityConfig | None = field(default=None, metadata=f.check(parse_peer_security))


@dataclass(frozen=True, kw_only=True)
class GatewayConfig(NodeConfig):
    """The Open Job Spec HTTP binding in front of the coordinators it connects to (docs/OJS.md)."""

    kind: ClassVar[str] = "gateway"
    connect: str | tuple[str, ...] = field(default=DEFAULT_CONNECT, metadata=f.ENDPOINTS)
    bind: str = field(default=DEFAULT_GATEWAY_BIND, metadata=BIND)
    tokens: tuple[TokenConfig, ...] | None = field(default=None, metadata=TOKENS)
    timeout: float = field(default=GATEWAY_TIMEOUT_S, metadata=f.SECONDS)
    # HTTP workers at once: each holds a ZeroMQ connection to each coordinator
    max_http_workers: int = field(
        default=MAX_HTTP_WORKERS, metadata=f.check(f.integer(1, MAX_CONCURRENCY))
    )
    # Conformance runs only: a job's meta.test_directive is its worker's next directive.
    test_directives: bool = field(default=False, metadata=f.FLAG)
    security: PeerSecurityConfig | None = field(default=None, metadata=f.check(parse_peer_security))


NODE_KINDS: dict[str, type[NodeConfig]] = {
    cls.kind: cls for cls in (CoordinatorConfig, WorkerConfig, ProducerConfig, GatewayConfig)
}
