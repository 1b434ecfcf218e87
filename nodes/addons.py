"""Add-ons: things a coordinator starts after itself and stops before itself.

The metrics exporter (`nodes.metrics.MetricsExporter`) and the dashboard
(`nodes.dashboard.Dashboard`) are add-ons. They observe, they never steer: they subscribe to
the coordinator's events, read its store, and ask its supervisor for a snapshot as an
in-process peer (`nodes.traffic`). A YAML `metrics:` or `dashboard:` key adds one; an embedder
passes `Coordinator(addons=[...])`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from nodes.coordinator import Coordinator

DEFAULT_METRICS_BIND = "127.0.0.1:9464"  # Prometheus' registered default port for exporters
DEFAULT_DASHBOARD_BIND = "127.0.0.1:8080"
DASHBOARD_REFRESH_S = 2.0


def parse_bind(bind: str) -> tuple[str, int]:
    """`host:port` (port 0: any free port) -> (host, port); `[::1]:9464` for IPv6."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port such as {DEFAULT_METRICS_BIND}, got {bind!r}")
    return host.strip("[]"), int(port)


class Addon(Protocol):
    def start(self, coordinator: Coordinator) -> None:
        """Called once the coordinator is listening; raise to make its start fail."""
        ...

    def stop(self) -> None:
        """Called before the coordinator stops; idempotent."""
        ...
