"""The pytest plugin's cheap parts: what it imports when pytest loads it, and its seed option.

Its fixtures, markers and failure report are tested the way a user meets them, in
tests/integration/test_pytest_plugin.py.
"""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
from pathlib import Path

import pytest

from nodes.testing import plugin

TESTING = Path(plugin.__file__).parent


def top_level_imports(path: Path) -> set[str]:
    """The modules a file imports when it is imported (not under `if TYPE_CHECKING:`, not
    inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(TESTING.glob("*.py")), ids=lambda path: path.name)
def test_the_testing_modules_import_only_the_standard_library_and_pytest_when_loaded(
    path: Path,
) -> None:
    # pytest loads the plugin in every session of every project with corral installed:
    # corral's own modules are imported by the fixtures, when a test asks for a cluster.
    foreign = {
        name
        for name in top_level_imports(path)
        if name.split(".")[0] not in sys.stdlib_module_names and name != "pytest"
    }
    assert foreign == set(), f"{path.name} imports {sorted(foreign)} at module level"


@pytest.mark.parametrize(("text", "seed"), [("0", 0), ("1234", 1234), ("0x10", 16)])
def test_the_seed_option_takes_an_integer(text: str, seed: int) -> None:
    assert plugin._seed_option(text) == seed


def test_the_seed_option_keeps_random_to_draw_once_at_configure() -> None:
    assert plugin._seed_option("random") == plugin.RANDOM_SEED


def test_the_seed_option_refuses_anything_else_with_what_it_takes() -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="an integer or 'random'"):
        plugin._seed_option("seven")


def test_loading_the_plugin_loads_no_node_and_the_package_names_load_on_first_use() -> None:
    # Given a fresh interpreter, as a user's pytest session starts
    probe = (
        "import sys, nodes.testing.plugin\n"
        "heavy = sorted(m for m in ('nodes.cluster', 'nodes.coordinator', 'zmq', 'pykka')"
        " if m in sys.modules)\n"
        "import nodes\n"
        "missing = [n for n in nodes.__all__ if getattr(nodes, n, None) is None]\n"
        "print(heavy, missing, sorted(nodes.__all__) == sorted(nodes._HOMES))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    # Then loading the plugin imported no node, and every exported name resolves when asked for
    assert done.stdout.strip() == "[] [] True", done.stderr
