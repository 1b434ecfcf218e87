"""JSONPath resolution for the OJS conformance DSL (a superset of the reference Go runner).

Supports ``$``, ``.key``, ``[N]``, ``[*]`` (collects the values that resolve),
``[?(@.k=='v')]`` (first match, compared as Go's ``%v`` text) and ``["quoted.key"]``.
A missing key resolves to :data:`MISSING`; like Go's ``nil`` it counts as a JSON ``null``
for the matchers, but it keeps failure messages precise ("missing" vs "null").
"""

from __future__ import annotations

import json
import re
from typing import Any


class _Missing:
    """Marker for a path that names no value (Go's ``nil`` for an absent key)."""

    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


class PathError(ValueError):
    """A JSONPath that cannot be walked: wrong container type or index out of range."""


_FILTER = re.compile(r"""\?\(@\.([^=]+?)\s*==\s*(.*)\)""", re.S)


def _tokens(path: str) -> list[str]:
    """Split ``$.a.b[0]["c.d"][?(@.k=='v')]`` into ``a``, ``b``, ``[0]``, ``["c.d"]``, ...

    Dots split only outside brackets and quotes, so filters and quoted keys stay whole.
    """
    body = path[1:] if path.startswith("$") else path
    tokens: list[str] = []
    current = ""
    depth = 0
    quote = ""
    for ch in body:
        if quote:
            current += ch
            quote = "" if ch == quote else quote
        elif ch in "'\"" and depth:
            current += ch
            quote = ch
        elif ch == "[":
            if depth == 0 and current:
                tokens.append(current)
                current = ""
            depth += 1
            current += ch
        elif ch == "]":
            depth -= 1
            current += ch
            if depth == 0:
                tokens.append(current)
                current = ""
        elif ch == "." and depth == 0:
            if current:
                tokens.append(current)
            current = ""
        else:
            current += ch
    if depth or quote:
        raise PathError(f"unclosed bracket or quote in path {path!r}")
    if current:
        tokens.append(current)
    return tokens


def go_format(value: Any) -> str:
    """Render a value the way Go's ``fmt.Sprintf("%v", v)`` renders decoded JSON."""
    if value is None or value is MISSING:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e21:
        return str(int(value))
    if isinstance(value, list):
        return "[" + " ".join(go_format(v) for v in value) + "]"
    if isinstance(value, dict):
        return "map[" + " ".join(f"{k}:{go_format(v)}" for k, v in sorted(value.items())) + "]"
    return str(value)


def _key(current: Any, key: str) -> Any:
    if current is MISSING or current is None:
        return MISSING
    if not isinstance(current, dict):
        raise PathError(f"expected an object at {key!r}, got {type_name(current)}")
    return current.get(key, MISSING)


def _index(current: Any, token: str) -> Any:
    if current is MISSING or current is None:
        return MISSING
    if not isinstance(current, list):
        raise PathError(f"expected an array at {token}, got {type_name(current)}")
    index = int(token[1:-1])
    if not 0 <= index < len(current):
        raise PathError(f"index {index} out of range (length {len(current)})")
    return current[index]


def _filter(current: Any, token: str) -> Any:
    match = _FILTER.fullmatch(token[1:-1])
    if match is None:
        raise PathError(f"unsupported filter {token}")
    if current is MISSING or current is None:
        return MISSING
    if not isinstance(current, list):
        raise PathError(f"expected an array for filter {token}, got {type_name(current)}")
    field, wanted = match.group(1).strip(), match.group(2).strip().strip("'\"")
    for item in current:
        if isinstance(item, dict) and field in item and go_format(item[field]) == wanted:
            return item
    return MISSING


def resolve_path(path: str, data: Any) -> Any:
    """Resolve a JSONPath against decoded JSON; :data:`MISSING` when nothing is there.

    Supports ``$``, ``.key``, ``[N]``, ``[*]`` (collects the values that resolve),
    ``[?(@.k=='v')]`` (first match) and ``["quoted.key"]``. Raises :class:`PathError`.
    """
    tokens = _tokens(path.strip())
    current = data
    for position, token in enumerate(tokens):
        if token == "[*]":
            rest = tokens[position + 1 :]
            return _wildcard(current, rest)
        if token.startswith("[?"):
            current = _filter(current, token)
        elif token[:2] in ('["', "['"):
            current = _key(current, token[2:-2])
        elif token.startswith("["):
            if not re.fullmatch(r"\[-?\d+\]", token):
                raise PathError(f"invalid index {token}")
            current = _index(current, token)
        else:
            current = _key(current, token)
    return current


def _wildcard(current: Any, rest: list[str]) -> Any:
    if current is MISSING or current is None:
        return MISSING
    if not isinstance(current, list):
        raise PathError(f"expected an array for [*], got {type_name(current)}")
    tail = "$" + "".join(t if t.startswith("[") else "." + t for t in rest)
    values = []
    for item in current:
        try:
            value = resolve_path(tail, item)
        except PathError:
            continue
        if not is_nil(value):
            values.append(value)
    return values


def is_nil(value: Any) -> bool:
    """Go's ``nil``: a missing key or a JSON null."""
    return value is None or value is MISSING


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def type_name(value: Any) -> str:
    """The JSON type name used by ``$type`` (``missing`` for an absent value)."""
    if value is MISSING:
        return "missing"
    for kind, name in ((bool, "boolean"), (str, "string"), (list, "array"), (dict, "object")):
        if isinstance(value, kind):
            return name
    return "number" if is_number(value) else "null"


def show(value: Any) -> str:
    """Compact rendering of an actual value for failure messages."""
    if value is MISSING:
        return "<missing>"
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text if len(text) <= 200 else text[:200] + "..."
