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


# -- no import cycles -----------------------------------------------------------------------------

PRODUCT = ("actors", "transport", "nodes")


def _product_modules(root: Path) -> dict[str, Path]:
    """Dotted name -> file, for every module and package of the product."""
    modules = {}
    for package in PRODUCT:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            modules[".".join(parts)] = path
    return modules


def _imported(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The product modules `module` imports anywhere in its body: at the top, inside functions
    (lazy imports) and under `if TYPE_CHECKING:`. `from pkg import name` counts as an import of
    the submodule `pkg.name` when there is one, else of `pkg`."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    targets = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                targets.add(submodule if submodule in modules else base)
    found = set()
    for target in targets:
        while target and target not in modules:  # `import a.b.c` of a name inside a.b.c
            target = target.rpartition(".")[0]
        if target and target != module:
            found.add(target)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    modules = _product_modules(root)
    return {name: _imported(name, path, modules) for name, path in modules.items()}


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each strongly connected component of more than one module, sorted (Tarjan's algorithm,
    iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(sorted(component))
    return sorted(components)


def _cycle_through(component: list[str], graph: dict[str, set[str]]) -> list[str]:
    """One cycle from the component's first module back to itself (breadth-first, shortest)."""
    members, first = set(component), component[0]
    paths = {first: [first]}
    frontier = [first]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(graph[node] & members):
                if child == first:
                    return [*paths[node], first]
                if child not in paths:
                    paths[child] = [*paths[node], child]
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle through {first}")  # a component always has one


def test_the_cycle_finder_names_a_cycle_made_by_lazy_and_type_checking_imports(tmp_path):
    (tmp_path / "actors").mkdir()
    (tmp_path / "transport").mkdir()
    (tmp_path / "nodes" / "config").mkdir(parents=True)
    (tmp_path / "nodes" / "__init__.py").write_text("")
    (tmp_path / "nodes" / "config" / "__init__.py").write_text("")
    (tmp_path / "nodes" / "config" / "kinds.py").write_text(
        "def build():\n    from nodes import coordinator\n"
    )
    (tmp_path / "nodes" / "coordinator.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from nodes.config import kinds\n"
    )
    (tmp_path / "nodes" / "client.py").write_text("import nodes.coordinator\n")

    graph = import_graph(tmp_path)
    cycles = import_cycles(graph)

    assert cycles == [["nodes.config.kinds", "nodes.coordinator"]]
    assert _cycle_through(cycles[0], graph) == [
        "nodes.config.kinds",
        "nodes.coordinator",
        "nodes.config.kinds",
    ]


def test_no_module_of_the_product_imports_itself_through_others():
    graph = import_graph(ROOT)
    cycles = import_cycles(graph)

    assert cycles == [], "\n".join(
        f"import cycle {' -> '.join(_cycle_through(members, graph))} "
        f"(its {len(members)} modules: {', '.join(members)})"
        for members in cycles
    )


# -- pure cores -----------------------------------------------------------------------------------

# The rules of the coordinator and of the worker's link: they take `now` and return effects (or
# call one port), so nothing they reach, however indirectly, may be the actor runtime, a socket
# transport or the clock (the modules that import pykka, zmq or read time).
PURE_CORES = (
    "actors.lifecycle",
    "actors.queue",
    "actors.supervisor_core",
    "actors.pending_fetch",
    "actors.link.core",
)
RUNTIME = ("actors.base", "actors.inbox", "actors.clock", "transport.zmq", "transport.inproc")


def _reached(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for name in graph[todo.pop()] - seen:
            seen.add(name)
            todo.append(name)
    return seen


@pytest.mark.parametrize("core", PURE_CORES)
def test_a_pure_core_reaches_no_actor_runtime_socket_or_clock(core):
    graph = import_graph(ROOT)
    assert core in graph
    assert sorted(_reached(graph, core) & set(RUNTIME)) == []
