"""The unstarted node a config describes: `build_node(load_config(path).node(name))`.

The one place that knows both the config models (`nodes.config`, pure data) and the things they
configure (the nodes and the coordinator's add-ons), so neither side imports the other.
`overrides` replace constructor arguments (tests, embedding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.config import ClusterConfig, load_config
from nodes.config import fields as f
from nodes.config.gateway import read_tokens
from nodes.config.kinds import (
    CoordinatorConfig,
    GatewayConfig,
    NodeConfig,
    ProducerConfig,
    WorkerConfig,
)
from nodes.coordinator import Coordinator
from nodes.coordinator_arguments import coordinator_arguments
from nodes.gateway.node import Gateway
from nodes.producer import Producer
from nodes.worker_node import WorkerNode

Node = Coordinator | WorkerNode | Producer | Gateway


def build_node(config: NodeConfig, **overrides: Any) -> Node:
    """The unstarted node of `config`'s kind."""
    builder: Callable[..., Node] = _BUILDERS[type(config)]
    return builder(config, **overrides)


def load_node(path: str, name: str, **overrides: Any) -> Node:
    """The unstarted node `name` of a YAML file."""
    return build_node(load_config(path).node(name), **overrides)


def check_imports(config: ClusterConfig) -> None:
    """Import every worker's handlers and every producer's `expect` now, before any node starts:
    a module or attribute that does not import is a ConfigError naming file, node and key."""
    for node in config.nodes.values():
        if isinstance(node, WorkerConfig):
            node.import_handlers()
        elif isinstance(node, ProducerConfig) and node.expect:
            f.import_ref(node.expect, node.where, "expect")


def build_coordinator(config: CoordinatorConfig, **overrides: Any) -> Coordinator:
    return Coordinator(**{**coordinator_arguments(config, overrides), **overrides})


def build_worker(config: WorkerConfig, **overrides: Any) -> WorkerNode:
    kwargs: dict[str, Any] = {
        "connect": config.connect,
        "name": config.name,
        "queues": list(config.queues),
        "concurrency": config.concurrency,
        "labels": {name: list(values) for name, values in (config.labels or {}).items()},
        "handlers": config.import_handlers(),
        "shutdown_grace": config.shutdown_grace,
        "fetch_wait": config.fetch_wait,
        "reconnect_initial": config.reconnect_initial,
        "reconnect_max": config.reconnect_max,
    }
    if config.security is not None and "curve" not in overrides:
        kwargs["curve"] = config.security.curve(config.where)
    return WorkerNode(**{**kwargs, **overrides})


def build_producer(config: ProducerConfig, **overrides: Any) -> Producer:
    expect = f.import_ref(config.expect, config.where, "expect") if config.expect else None
    kwargs: dict[str, Any] = {
        "connect": config.connect,
        "job_type": config.type,
        "count": config.count,
        "args": list(config.args),
        "options": {
            "queue": config.queue,
            "priority": config.priority,
            "route": dict(config.route or {}),
            "max_attempts": config.max_attempts,
        },
        "batch_size": config.batch_size,
        "wait": config.wait,
        "timeout": config.timeout,
        "progress_interval": config.progress_interval,
        "expect": expect,
        "name": config.name,
    }
    if config.security is not None and "curve" not in overrides:
        kwargs["curve"] = config.security.curve(config.where)
    return Producer(**{**kwargs, **overrides})


def build_gateway(config: GatewayConfig, **overrides: Any) -> Gateway:
    kwargs: dict[str, Any] = {
        "connect": config.connect,
        "bind": config.bind,
        "tokens": read_tokens(config.tokens, config.where) if config.tokens else None,
        "timeout": config.timeout,
        "test_directives": config.test_directives,
        "max_http_workers": config.max_http_workers,
        "name": config.name,
    }
    if config.security is not None and "curve" not in overrides:
        kwargs["curve"] = config.security.curve(config.where)
    return Gateway(**{**kwargs, **overrides})


_BUILDERS: dict[type[NodeConfig], Callable[..., Node]] = {
    CoordinatorConfig: build_coordinator,
    WorkerConfig: build_worker,
    ProducerConfig: build_producer,
    GatewayConfig: build_gateway,
}
