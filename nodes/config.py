"""Typed node configs built from a YAML file (README.md, "Configuration").

One frozen dataclass per node kind; its fields marked with `config_fields.check` are the schema.
`load_config` refuses unknown keys and wrong types with the file, node and key named, resolves
relative paths against the file's directory, and `NodeConfig.build()` makes the unstarted node.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import yaml

from actors.context import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    MAX_QUEUES,
    REAPER_INTERVAL_S,
    VISIBILITY_TIMEOUT_S,
)
from actors.worker_settings import FETCH_WAIT_S, RECONNECT_INITIAL_S, RECONNECT_MAX_S
from nodes import config_fields as f
from nodes import producer as load
from nodes.config_fields import ConfigError, Where
from nodes.config_observability import (
    DashboardConfig,
    MetricsConfig,
    addons,
    parse_dashboard,
    parse_metrics,
)
from nodes.config_security import (
    PeerSecurityConfig,
    SecurityConfig,
    local_curve,
    parse_peer_security,
    parse_security,
)
from nodes.logs import check_log_format
from nodes.worker_node import SHUTDOWN_GRACE_S
from transport.codec import MAX_DEPTH, MAX_MESSAGE_SIZE_BYTES, PEER_MAX_DEPTH
from transport.validation import (
    MAX_BATCH_JOBS,
    MAX_JOB_SIZE_BYTES,
    MAX_LIST_ITEMS,
    MAX_NAME_CHARS,
    MAX_RESULT_SIZE_BYTES,
)
from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)
DEFAULT_BIND = "tcp://127.0.0.1:5555"
DEFAULT_CONNECT = "tcp://127.0.0.1:5555"
DEFAULT_STORE = "memory"
DEFAULT_LOG_LEVEL = "INFO"
WORKER_CONCURRENCY = 10
MIN_MESSAGE_SIZE_BYTES = 1024
MIN_DEPTH = 4  # an enqueue batch nests 4 deep: frame map, jobs list, job map, args list
PRIORITY_MIN, PRIORITY_MAX = -(2**31), 2**31 - 1
_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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

    def build(self, **overrides: Any) -> Any:
        """The unstarted node; `overrides` replace constructor arguments (tests, embedding)."""
        raise NotImplementedError


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
        default=MAX_MESSAGE_SIZE_BYTES, metadata=f.check(f.integer(MIN_MESSAGE_SIZE_BYTES))
    )
    # None: min(512 KiB, max_message_size), as PROTOCOL.md section 1 caps job and result sizes
    max_job_size: int | None = field(default=None, metadata=f.POSITIVE_INT)
    max_result_size: int | None = field(default=None, metadata=f.POSITIVE_INT)
    max_batch_jobs: int = field(default=MAX_BATCH_JOBS, metadata=f.POSITIVE_INT)
    max_name_chars: int = field(default=MAX_NAME_CHARS, metadata=f.POSITIVE_INT)
    max_list_items: int = field(default=MAX_LIST_ITEMS, metadata=f.POSITIVE_INT)
    max_depth: int = field(
        default=MAX_DEPTH, metadata=f.check(f.integer(MIN_DEPTH, PEER_MAX_DEPTH - 8))
    )
    max_queues: int = field(default=MAX_QUEUES, metadata=f.POSITIVE_INT)
    security: SecurityConfig | None = field(default=None, metadata=f.check(parse_security))
    metrics: MetricsConfig | None = field(default=None, metadata=f.check(parse_metrics))
    dashboard: DashboardConfig | None = field(default=None, metadata=f.check(parse_dashboard))

    @property
    def connect_address(self) -> str:
        return connect_address(self.bind)

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

    def build(self, **overrides: Any) -> Any:
        from nodes.coordinator import Coordinator
        from transport.validation import Limits

        limits = Limits(
            max_job_size=self.max_job_size or min(MAX_JOB_SIZE_BYTES, self.max_message_size),
            max_result_size=self.max_result_size
            or min(MAX_RESULT_SIZE_BYTES, self.max_message_size),
            max_batch_jobs=self.max_batch_jobs,
            max_name_chars=self.max_name_chars,
            max_list_items=self.max_list_items,
            max_depth=self.max_depth,
        )
        kwargs: dict[str, Any] = {
            "bind": self.bind,
            "store": self.store,
            "max_message_size": self.max_message_size,
            "limits": limits,
            "heartbeat_interval": self.heartbeat_interval,
            "heartbeat_timeout": self.heartbeat_timeout,
            "visibility_timeout": self.visibility_timeout,
            "reaper_interval": self.reaper_interval,
            "max_queues": self.max_queues,
            "addons": addons(self.metrics, self.dashboard, self.where),
        }
        if self.security is not None and "security" not in overrides:  # reads the key files
            kwargs["security"] = self.security.settings(self.where)
        return Coordinator(**{**kwargs, **overrides})


@dataclass(frozen=True, kw_only=True)
class WorkerConfig(NodeConfig):
    """A worker: where it connects, what it consumes, and the handlers it runs."""

    kind: ClassVar[str] = "worker"
    connect: str = field(default=DEFAULT_CONNECT, metadata=f.ENDPOINT)
    queues: tuple[str, ...] = field(default=("default",), metadata=f.STR_LIST)
    concurrency: int = field(default=WORKER_CONCURRENCY, metadata=f.POSITIVE_INT)
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

    def build(self, **overrides: Any) -> Any:
        from nodes.worker_node import WorkerNode

        kwargs: dict[str, Any] = {
            "connect": self.connect,
            "queues": list(self.queues),
            "concurrency": self.concurrency,
            "labels": {name: list(values) for name, values in (self.labels or {}).items()},
            "handlers": self.import_handlers(),
            "shutdown_grace": self.shutdown_grace,
            "fetch_wait": self.fetch_wait,
            "reconnect_initial": self.reconnect_initial,
            "reconnect_max": self.reconnect_max,
        }
        if self.security is not None and "curve" not in overrides:
            kwargs["curve"] = self.security.curve(self.where)
        return WorkerNode(**{**kwargs, **overrides})


@dataclass(frozen=True, kw_only=True)
class ProducerConfig(NodeConfig):
    """A load/demo node: enqueue `count` jobs, wait for them, print a summary."""

    kind: ClassVar[str] = "producer"
    connect: str = field(default=DEFAULT_CONNECT, metadata=f.ENDPOINT)
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

    def build(self, **overrides: Any) -> Any:
        expect = f.import_ref(self.expect, self.where, "expect") if self.expect else None
        kwargs: dict[str, Any] = {
            "connect": self.connect,
            "job_type": self.type,
            "count": self.count,
            "args": list(self.args),
            "options": {
                "queue": self.queue,
                "priority": self.priority,
                "route": dict(self.route or {}),
                "max_attempts": self.max_attempts,
            },
            "batch_size": self.batch_size,
            "wait": self.wait,
            "timeout": self.timeout,
            "progress_interval": self.progress_interval,
            "expect": expect,
            "name": self.name,
        }
        if self.security is not None and "curve" not in overrides:
            kwargs["curve"] = self.security.curve(self.where)
        return load.Producer(**{**kwargs, **overrides})


NODE_KINDS: dict[str, type[NodeConfig]] = {
    cls.kind: cls for cls in (CoordinatorConfig, WorkerConfig, ProducerConfig)
}


@dataclass(frozen=True)
class ClusterConfig:
    """Every node of one file, in file order."""

    path: Path
    nodes: dict[str, NodeConfig] = field(default_factory=dict)

    def node(self, name: str) -> NodeConfig:
        try:
            return self.nodes[name]
        except KeyError:
            raise ConfigError(
                f"{self.path}: no node {name!r} (nodes: {', '.join(self.nodes)})"
            ) from None

    def of_kind(self, kind: str) -> list[NodeConfig]:
        return [node for node in self.nodes.values() if node.kind == kind]

    def coordinators(self) -> list[CoordinatorConfig]:
        return [node for node in self.nodes.values() if isinstance(node, CoordinatorConfig)]

    def workers(self) -> list[WorkerConfig]:
        return [node for node in self.nodes.values() if isinstance(node, WorkerConfig)]

    def client_address(self) -> str | None:
        """The first coordinator's address as a local client reaches it."""
        coordinators = self.coordinators()
        return coordinators[0].connect_address if coordinators else None

    def client_curve(
        self, coordinator: CoordinatorConfig | None = None, role: str = "client"
    ) -> CurveClientConfig | None:
        """CURVE keys with `role` for a local client of `coordinator` (default: the first),
        found next to its authorized keys; None when that coordinator has no security."""
        coordinators = self.coordinators()
        node = coordinator or (coordinators[0] if coordinators else None)
        if node is None or node.security is None:
            return None
        peers = [
            peer.security
            for peer in self.nodes.values()
            if isinstance(peer, WorkerConfig | ProducerConfig) and peer.security is not None
        ]
        return local_curve(node.security, node.where, peers, role)


def load_config(path: str | Path) -> ClusterConfig:
    """Read and check a whole config file; raise ConfigError on the first problem."""
    where = Where(str(path), base_dir=Path(path).resolve().parent)
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise where.error(f"cannot read the file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise where.error(f"not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or "nodes" not in raw:
        raise where.error("expected a mapping with a 'nodes' key")
    for top in raw:
        if top != "nodes":
            raise where.error(f"unknown top-level key {top!r}")
    if not isinstance(raw["nodes"], dict) or not raw["nodes"]:
        raise where.error("'nodes' must be a non-empty mapping of node name -> node")
    nodes = {}
    for name, body in raw["nodes"].items():
        nodes[str(name)] = _load_node(name, body, where)
    return ClusterConfig(Path(path), nodes)


def _load_node(name: Any, body: Any, file_where: Where) -> NodeConfig:
    if not isinstance(name, str) or not _NODE_NAME.match(name):
        raise file_where.error(f"bad node name {name!r}: use letters, digits, '-', '_', '.'")
    where = Where(file_where.file, name, file_where.base_dir)
    if not isinstance(body, dict):
        raise where.error(f"expected a mapping, got {type(body).__name__}")
    kind = body.get("kind")
    if kind not in NODE_KINDS:
        raise where.error(f"expected one of {', '.join(NODE_KINDS)}, got {kind!r}", "kind")
    cls = NODE_KINDS[kind]
    values = f.parse_keys(body, cls, where, ignore=("kind",))
    node = cls(name=name, file=where.file, base_dir=where.base_dir, **values)
    node.validate()
    return node
