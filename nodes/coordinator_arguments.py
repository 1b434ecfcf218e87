"""The `Coordinator` arguments a coordinator config describes, add-ons included.

Apart from `nodes.factory` so that `Coordinator.from_config` can use it: this module imports
the config models and the add-ons, never the coordinator, so neither imports the other.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from typing import Any

from nodes.addons import Addon
from nodes.config import fields as f
from nodes.config.kinds import CoordinatorConfig
from nodes.config.observability import DashboardConfig
from nodes.observe.dashboard import Dashboard
from nodes.observe.metrics import MetricsExporter
from transport.validation.limits import MAX_JOB_SIZE_BYTES, MAX_RESULT_SIZE_BYTES, Limits


def coordinator_arguments(
    config: CoordinatorConfig, overrides: Mapping[str, Any] = {}
) -> dict[str, Any]:
    """Keyword arguments for `Coordinator(...)`; key files are read only when `overrides`
    does not replace `security`."""
    limits = Limits(
        max_job_size=config.max_job_size or min(MAX_JOB_SIZE_BYTES, config.max_message_size),
        max_result_size=config.max_result_size
        or min(MAX_RESULT_SIZE_BYTES, config.max_message_size),
        max_batch_jobs=config.max_batch_jobs,
        max_name_chars=config.max_name_chars,
        max_list_items=config.max_list_items,
        max_depth=config.max_depth,
    )
    arguments: dict[str, Any] = {
        "bind": config.bind,
        "store": config.store,
        "max_message_size": config.max_message_size,
        "limits": limits,
        "heartbeat_interval": config.heartbeat_interval,
        "heartbeat_timeout": config.heartbeat_timeout,
        "visibility_timeout": config.visibility_timeout,
        "reaper_interval": config.reaper_interval,
        "max_queues": config.max_queues,
        "failover_timeout": config.failover_timeout,
        "advertise": config.advertise,
        "schedules": config.schedules,
        "job_limits": config.job_limits,
        "name": f"{config.name}@{socket.gethostname()}:{os.getpid()}",
        "addons": build_addons(config),
    }
    if config.security is not None and "security" not in (overrides or {}):  # reads the key files
        arguments["security"] = config.security.settings(config.where)
    return arguments


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
