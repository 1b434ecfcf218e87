"""Add-ons: things a coordinator starts after itself and stops before itself.

The metrics exporter (`nodes.observe.metrics.MetricsExporter`) and the dashboard
(`nodes.observe.dashboard.Dashboard`) are add-ons. They observe, they never steer: they
subscribe to the coordinator's events, read its store, and ask its supervisor for a snapshot as
an in-process peer (`nodes.observe.traffic`). A YAML `metrics:` or `dashboard:` key adds one
(`nodes.factory`); an embedder passes `Coordinator(addons=[...])`.

An add-on sees the coordinator only through `AddonHost`, so no add-on imports the coordinator
and the coordinator imports no add-on: the factory is the one place that knows both.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from actors.clock import Clock
    from actors.context import CoordinatorContext
    from actors.events import EventHub
    from nodes.dispatcher import Dispatcher
    from nodes.observe.traffic import Traffic

DEFAULT_METRICS_BIND = "127.0.0.1:9464"  # Prometheus' registered default port for exporters
DEFAULT_DASHBOARD_BIND = "127.0.0.1:8080"
DASHBOARD_REFRESH_S = 2.0


def parse_bind(bind: str) -> tuple[str, int]:
    """`host:port` (port 0: any free port) -> (host, port); `[::1]:9464` for IPv6."""
    host, sep, port = bind.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"expected host:port such as {DEFAULT_METRICS_BIND}, got {bind!r}")
    return host.strip("[]"), int(port)


class AddonStartError(OSError):
    """An add-on could not listen; the message names its config key and address."""

    def __str__(self) -> str:
        return str(self.strerror)


def start_failed(addon: object, exc: OSError) -> AddonStartError:
    """`exc` from `addon.start`, said with the add-on's config key and address (an add-on
    with `config_key`, `host` and `port`, as the dashboard and the metrics exporter have):
    "dashboard.bind 127.0.0.1:8080: address already in use"."""
    key = getattr(addon, "config_key", type(addon).__name__)
    host, port = getattr(addon, "host", None), getattr(addon, "port", None)
    shown = f"[{host}]" if host and ":" in host else host
    where = f" {shown}:{port}" if host is not None and port is not None else ""
    problem = (exc.strerror or str(exc)).lower()
    return AddonStartError(exc.errno, f"{key}{where}: {problem}")


class AddonHost(Protocol):
    """What an add-on may use of the started coordinator it runs in (a `Coordinator`)."""

    ctx: CoordinatorContext | None  # set while started: the store, queues and supervisor
    clock: Clock
    events: EventHub
    traffic: Traffic
    dispatcher: Dispatcher | None

    @property
    def address(self) -> str:
        """The coordinator's bound endpoint."""
        ...

    def cluster(self) -> dict[str, Any] | None:
        """With a shared database: name, role, term, leader, standbys (`stats`' `cluster`)."""
        ...


class Addon(Protocol):
    def start(self, host: AddonHost) -> None:
        """Called once the coordinator is listening; raise to make its start fail."""
        ...

    def stop(self) -> None:
        """Called before the coordinator stops; idempotent."""
        ...
