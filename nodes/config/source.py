"""A config file's YAML, read with the line of every key, so an error names the line too.

PyYAML's composer keeps a mark on every node; `read` walks the composed tree once, recording
for each key path (`("nodes", "worker-eu", "handlers", "square")`, list items by index) the
line its key is on, then constructs the plain data from the same tree.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from nodes.config.fields import ConfigError, Where

KeyPath = tuple[str | int, ...]
_KEY_PART = re.compile(r"\[(\d+)\]|([^.\[\]]+)")


def read(path: str | Path, where: Where) -> tuple[Any, dict[KeyPath, int]]:
    """The file's data and its key lines; ConfigError naming the file (and for a syntax error,
    its line and column) when it cannot be read or parsed."""
    try:
        with open(path, encoding="utf-8") as stream:
            loader = yaml.SafeLoader(stream)
            try:
                root = loader.get_single_node()
                data = loader.construct_document(root) if root is not None else None
            finally:
                loader.dispose()
    except OSError as exc:
        raise where.error(f"cannot read the file: {exc.strerror}") from exc
    except yaml.MarkedYAMLError as exc:
        raise syntax_error(where, exc) from None
    except yaml.YAMLError as exc:
        raise where.error(f"not valid YAML: {exc}") from exc
    lines: dict[KeyPath, int] = {}
    if root is not None:
        _walk(root, (), lines)
    return data, lines


def syntax_error(where: Where, exc: yaml.MarkedYAMLError) -> ConfigError:
    mark = exc.problem_mark or exc.context_mark
    at = f", line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    context = f" ({exc.context})" if exc.context else ""
    return ConfigError(f"{where.file}{at}: not valid YAML: {exc.problem}{context}")


def _walk(node: yaml.Node, path: KeyPath, lines: dict[KeyPath, int]) -> None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                here = (*path, str(key.value))
                lines.setdefault(here, key.start_mark.line + 1)
                _walk(value, here, lines)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            here = (*path, index)
            lines.setdefault(here, item.start_mark.line + 1)
            _walk(item, here, lines)


def with_line(error: ConfigError, lines: dict[KeyPath, int]) -> ConfigError:
    """`error` with the line of the key it names (or of the closest enclosing key found)."""
    if error.node is None:
        return error
    path: KeyPath = ("nodes", error.node, *_parts(error.key or ""))
    while len(path) > 1:
        if path in lines:
            located = ConfigError(f"{error.message} (line {lines[path]})")
            located.node, located.key = error.node, error.key
            return located
        path = path[:-1]
    return error


def _parts(key: str) -> KeyPath:
    return tuple(int(index) if index else name for index, name in _KEY_PART.findall(key))
