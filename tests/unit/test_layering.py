"""The dependency rule of docs/ARCHITECTURE.md: nodes -> actors + transport; actors never
import the ZeroMQ transport or nodes; transport never imports actors or nodes."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = {
    "transport": ("actors", "nodes"),
    "actors": ("nodes", "transport.zmq", "transport._zmq_loop", "transport.inproc", "zmq"),
}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_a_package_never_imports_what_sits_above_it(package):
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            if any(
                name == banned or name.startswith(banned + ".") for banned in FORBIDDEN[package]
            ):
                offenders.append(f"{path.relative_to(ROOT)} imports {name}")
    assert offenders == []
