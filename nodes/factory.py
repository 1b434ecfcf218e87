"""The unstarted node a config describes: `build_node(load_config(path).node(name))`.

The one place that knows both the config models (`nodes.config`, pure data) and the things they
configure (the nodes and the coordinator's add-ons), so neither side imports the other.
`overrides` replace constructor arguments (tests, embedding).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from nodes.addons import Addon
from nodes.config import fields as f
from nodes.config import load_config
from nodes.config.kinds import CoordinatorConfig, NodeConfig, ProducerConfig, WorkerConfig
from nodes.config.observability import DashboardConfig
from nodes.coordinator import Coordinator
from nodes.observe.dashboard import Dashboard
from nodes.observe.metrics import MetricsExporter
from nodes.producer import Producer
from nodes.worker_node import WorkerNode
from transport.validation.limits import MAX_JOB_SIZE_BYTES, MAX_RESULT_SIZE_BYTES, Limits

Node = Coordinator | WorkerNode | Producer


def build_node(config: NodeConfig, **overrides: Any) -> Node:
    """The unstarted node of `config`'s kind."""
    builder: Callable[..., Node] = _BUILDERS[type(config)]
    return builder(config, **overrides)


def load_node(path: str, name: str, **overrides: Any) -> Node:
    """The unstarted node `name` of a YAML file."""
    return build_node(load_config(path).node(name), **overrides)


def build_coordinator(config: CoordinatorConfig, **overrides: Any) -> Coordinator:
    limits = Limits(
        max_job_size=config.max_job_size or min(MAX_JOB_SIZE_BYTES, config.max_message_size),
        max_result_size=config.max_result_size
        or min(MAX_RESULT_SIZE_BYTES, config.max_message_size),
        max_batch_jobs=config.max_batch_jobs,
        max_name_chars=config.max_name_chars,
        max_list_items=config.max_list_items,
        max_depth=config.max_depth,
    )
    kwargs: dict[str, Any] = {
        "bind": config.bind,
        "store": config.store,
        "max_message_size": config.max_message_size,
        "limits": limits,
        "heartbeat_interval": config.heartbeat_interval,
        "heartbeat_timeout": config.heartbeat_timeout,
        "visibility_timeout": config.visibility_timeout,
        "reaper_interval": config.reaper_interval,
        "max_queues": config.max_queues,
        "addons": build_addons(config),
    }
    if config.security is not None and "security" not in overrides:  # reads the key files
        kwargs["security"] = config.security.settings(config.where)
    return Coordinator(**{**kwargs, **overrides})


def build_addons(config: CoordinatorConfig) -> list[Addon]:
    """The add-ons a coordinator config asks for, in start order."""
    made: list[Addon] = []
    if config.metrics is not None:
        made.append(MetricsExporter(config.metrics.bind))
    if config.dashboard is not None:
        made.append(_dashboard(config.dashboard, config.where))
    return made


def _dashboard(config: DashboardConfig, where: f.Where) -> Dashboard:
    token = None
    if config.admin_token_file is not None:
        try:
            token = config.admin_token_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise where.error(
                f"cannot read {config.admin_token_file}: {exc.strerror}",
                "dashboard.admin_token_file",
            ) from exc
        if not token:
            raise where.error(f"{config.admin_token_file} is empty", "dashboard.admin_token_file")
    return Dashboard(config.bind, admin_token=token, title=config.title, refresh_s=config.refresh)


def build_worker(config: WorkerConfig, **overrides: Any) -> WorkerNode:
    kwargs: dict[str, Any] = {
        "connect": config.connect,
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


_BUILDERS: dict[type[NodeConfig], Callable[..., Node]] = {
    CoordinatorConfig: build_coordinator,
    WorkerConfig: build_worker,
    ProducerConfig: build_producer,
}
