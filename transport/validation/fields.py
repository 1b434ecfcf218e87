"""The shared field checkers: read one field of a decoded map, or raise BadRequest naming it.

`default` is returned as is when the field is absent or null; without one the field is required.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, TypeVar

from transport import messages as m
from transport.errors import BadRequest, TooLarge
from transport.validation.limits import DEFAULT_LIMITS, Limits

MISSING: Any = object()
T = TypeVar("T")


def field(body: dict[str, Any], key: str, default: Any = MISSING) -> Any:
    value = body.get(key, MISSING)
    if value is MISSING or value is None:
        if default is MISSING:
            raise BadRequest(f"missing field '{key}'")
        return default
    return value


def string(body: dict[str, Any], key: str, default: Any = MISSING, *, limit: int = 0) -> Any:
    value = field(body, key, default)
    if value is default and default is not MISSING:
        return value
    if not isinstance(value, str):
        raise BadRequest(f"field '{key}' must be a string")
    if limit and (not value or len(value) > limit):
        raise BadRequest(f"field '{key}' must have 1 to {limit} characters")
    return value


def integer(
    body: dict[str, Any], key: str, default: Any = MISSING, *, minimum: int | None = None
) -> Any:
    value = field(body, key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest(f"field '{key}' must be an integer")
    if minimum is not None and value < minimum:
        raise BadRequest(f"field '{key}' must be >= {minimum}")
    return value


def number(
    body: dict[str, Any], key: str, default: Any = MISSING, *, minimum: float | None = None
) -> Any:
    value = field(body, key, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BadRequest(f"field '{key}' must be a finite number")
    if minimum is not None and value < minimum:
        raise BadRequest(f"field '{key}' must be >= {minimum}")
    return float(value)


def boolean(body: dict[str, Any], key: str, default: Any = MISSING) -> Any:
    value = field(body, key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"field '{key}' must be a boolean")
    return value


def strings(
    body: dict[str, Any],
    key: str,
    default: Any = MISSING,
    *,
    non_empty: bool = False,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[str, ...]:
    value = field(body, key, default)
    if not isinstance(value, list | tuple):
        raise BadRequest(f"field '{key}' must be a list of strings")
    if len(value) > limits.max_list_items:
        raise BadRequest(f"field '{key}' has more than {limits.max_list_items} items")
    chars = limits.max_name_chars
    for item in value:
        if not isinstance(item, str) or not item or len(item) > chars:
            raise BadRequest(f"field '{key}' must hold strings of 1 to {chars} characters")
    if non_empty and not value:
        raise BadRequest(f"field '{key}' must not be empty")
    return tuple(value)


def mapping(body: dict[str, Any], key: str, default: Any = MISSING) -> dict[str, Any]:
    value = field(body, key, default)
    if not isinstance(value, dict):
        raise BadRequest(f"field '{key}' must be a map")
    return value


def worker_state(b: dict[str, Any]) -> str:
    state = string(b, "state")
    if state not in m.WORKER_STATES:
        raise BadRequest(f"state must be one of {', '.join(m.WORKER_STATES)}")
    return state


def batch(b: dict[str, Any], key: str, limits: Limits, parse: Callable[[Any], T]) -> tuple[T, ...]:
    """A non-empty list of at most max_batch_jobs items, each parsed; a refused item refuses
    the whole batch, naming its index (`jobs[3]: ...`)."""
    raw_items = field(b, key)
    if not isinstance(raw_items, list) or not raw_items:
        raise BadRequest(f"field '{key}' must be a non-empty list")
    if len(raw_items) > limits.max_batch_jobs:
        raise BadRequest(f"'{key}' holds at most {limits.max_batch_jobs} items")
    items = []
    for index, raw in enumerate(raw_items):
        try:
            items.append(parse(raw))
        except (BadRequest, TooLarge) as exc:
            raise type(exc)(f"{key}[{index}]: {exc.message}") from None
    return tuple(items)


def lines(raw: dict[str, Any], key: str) -> tuple[str, ...]:
    value = field(raw, key, [])
    if not isinstance(value, list | tuple) or not all(isinstance(line, str) for line in value):
        raise BadRequest(f"field '{key}' must be a list of strings")
    return tuple(value)


Parser = Callable[[dict[str, Any], m.Rid, int, Limits], m.Request]
"""Validates the fields of one request type: (body, rid, frame size, limits) -> request."""
