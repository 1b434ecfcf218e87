"""The `metrics` and `dashboard` mappings of a coordinator config (`nodes.factory` makes the
add-ons they ask for).

```yaml
coordinator:
  kind: coordinator
  metrics: {bind: "127.0.0.1:9464"}          # Prometheus scrapes http://127.0.0.1:9464/metrics
  dashboard:
    bind: "127.0.0.1:8080"                    # http://127.0.0.1:8080/
    admin_token_file: dashboard.token         # optional: enables the retry buttons
```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.addons import (
    DASHBOARD_REFRESH_S,
    DEFAULT_DASHBOARD_BIND,
    DEFAULT_METRICS_BIND,
    parse_bind,
)
from nodes.config import fields as f
from nodes.config.fields import Where


def _bind(value: Any, where: Where, name: str) -> str:
    text = f.text(value, where, name)
    try:
        parse_bind(text)
    except ValueError as exc:
        raise where.error(str(exc), name) from None
    return text


BIND = f.check(_bind)


@dataclass(frozen=True, kw_only=True)
class MetricsConfig:
    """Where the Prometheus exporter listens (`host:port`; loopback unless you mean it)."""

    bind: str = field(default=DEFAULT_METRICS_BIND, metadata=BIND)


@dataclass(frozen=True, kw_only=True)
class DashboardConfig:
    """Where the dashboard listens, and the file holding its admin token (if any)."""

    bind: str = field(default=DEFAULT_DASHBOARD_BIND, metadata=BIND)
    admin_token_file: Path | None = field(default=None, metadata=f.FILE_PATH)
    refresh: float = field(default=DASHBOARD_REFRESH_S, metadata=f.SECONDS)
    title: str = field(default="corral", metadata=f.TEXT)


def parse_metrics(value: Any, where: Where, name: str) -> MetricsConfig:
    return MetricsConfig(**f.parse_keys(value or {}, MetricsConfig, where, f"{name}."))


def parse_dashboard(value: Any, where: Where, name: str) -> DashboardConfig:
    return DashboardConfig(**f.parse_keys(value or {}, DashboardConfig, where, f"{name}."))
