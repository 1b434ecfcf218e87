"""Typed node configs built from a YAML file (README.md, "Configuration").

`load_config` reads a whole file into a `ClusterConfig`: it refuses unknown keys and wrong
types with the file, node and key named, and resolves relative paths against the file's
directory. The package holds data only: `nodes.factory.build_node` makes the node a config
describes, so nothing here builds (or lazily imports) a node or an add-on; the models only read
the nodes' default values.

- `kinds`: one frozen dataclass per node kind, whose fields are the schema;
- `fields`: the checks for single values (`ConfigError`, `Where`);
- `security`, `observability`: the `security`, `metrics` and `dashboard` mappings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.config import fields as f
from nodes.config import source
from nodes.config.fields import ConfigError, Where
from nodes.config.kinds import (
    NODE_KINDS,
    CoordinatorConfig,
    NodeConfig,
    ProducerConfig,
    WorkerConfig,
)
from nodes.config.security import local_curve
from transport.zmq import CurveClientConfig

_NODE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


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

    def client_addresses(self) -> tuple[str, ...]:
        """Where a local client reaches the first coordinator: its address, and those of the
        coordinators sharing its PostgreSQL database (its standbys), each by its `advertise`
        address when set."""
        coordinators = self.coordinators()
        if not coordinators:
            return ()
        first = coordinators[0]
        shared = [c for c in coordinators if c.store == first.store] if first.shares_store else []
        return tuple(c.advertise or c.connect_address for c in shared or [first])

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
    raw, lines = source.read(path, where)
    try:
        return _load(path, raw, where)
    except ConfigError as exc:
        raise source.with_line(exc, lines) from None


def _load(path: str | Path, raw: Any, where: Where) -> ClusterConfig:
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
        error = file_where.error(f"bad node name {name!r}: use letters, digits, '-', '_', '.'")
        error.node = str(name)  # for its line
        raise error
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
