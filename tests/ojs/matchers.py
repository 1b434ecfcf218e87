"""Value matchers and step templates of the OJS conformance DSL.

The semantics follow the reference Go runner (ojs-conformance lib/assertions.go and
runner/http/runner.go) as a superset: everything it accepts means the same here, and the
constructs it lacks but the vendored cases use (``{"$gte": n}``, a whole-body template
``{{steps.<id>.response.body}}``) are added. Each matcher returns ``None`` when it passes,
else a human-readable reason.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from tests.ojs.jsonpath import (
    MISSING,
    PathError,
    go_format,
    is_nil,
    is_number,
    resolve_path,
    show,
    type_name,
)

# \Z, not $: Go's $ never matches before a trailing newline, Python's does.
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\Z")
_UUIDV7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}\Z")
_DATETIME = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})\Z", re.ASCII
)
_RANGE = re.compile(r"^number:range\((-?\d+(?:\.\d+)?),\s*(-?\d+(?:\.\d+)?)\)$")
_APPROX = re.compile(r"^~(\d+(?:\.\d+)?)$")
_LENGTH = re.compile(r"^array:length(?::(\d+)|\((\d+)\))$")
_MIN_LENGTH = re.compile(r"^array:min(?:_length)?:(\d+)$")
_COMPARE: dict[str, Callable[[float, float], bool]] = {
    "$gt": lambda a, b: a > b,
    "$gte": lambda a, b: a >= b,
    "$lt": lambda a, b: a < b,
    "$lte": lambda a, b: a <= b,
}


def match(matcher: Any, actual: Any) -> str | None:
    """Check ``actual`` against a DSL matcher; ``None`` when it passes, else the reason."""
    if matcher is None:
        return None if is_nil(actual) else f"expected null, got {show(actual)}"
    if isinstance(matcher, str):
        return _match_string(matcher, actual)
    if isinstance(matcher, bool):
        if actual is matcher:
            return None
        return f"expected {str(matcher).lower()}, got {show(actual)}"
    if is_number(matcher):
        return _match_number(matcher, actual)
    if isinstance(matcher, list):
        return _match_list(matcher, actual)
    if isinstance(matcher, dict):
        return _match_object(matcher, actual)
    return f"unsupported matcher {matcher!r}"


def _numbers_equal(expected: float, actual: float) -> bool:
    if float(expected).is_integer() and float(actual).is_integer():
        return int(expected) == int(actual)
    return abs(expected - actual) <= 1e-9


def _match_number(expected: float, actual: Any) -> str | None:
    if not is_number(actual):
        return f"expected number {expected}, got {show(actual)}"
    return None if _numbers_equal(expected, actual) else f"expected {expected}, got {actual}"


def _match_list(expected: list[Any], actual: Any) -> str | None:
    if not isinstance(actual, list):
        return f"expected an array, got {show(actual)}"
    if len(actual) != len(expected):
        return f"expected an array of length {len(expected)}, got length {len(actual)}"
    for position, (sub, item) in enumerate(zip(expected, actual, strict=True)):
        problem = match(sub, item)
        if problem:
            return f"[{position}]: {problem}"
    return None


def _need(kind: str, ok: bool, actual: Any) -> str | None:
    return None if ok else f"expected {kind}, got {show(actual)}"


_SIMPLE: dict[str, Callable[[Any], str | None]] = {
    "any": lambda a: None,
    "absent": lambda a: None if is_nil(a) else f"expected absent, got {show(a)}",
    "exists": lambda a: "expected a value, but it is missing or null" if is_nil(a) else None,
    "string:nonempty": lambda a: _need("a non-empty string", isinstance(a, str) and a != "", a),
    "string:non_empty": lambda a: _need("a non-empty string", isinstance(a, str) and a != "", a),
    "string:uuid": lambda a: _need("a UUID", isinstance(a, str) and bool(_UUID.match(a)), a),
    "string:uuidv7": lambda a: _need("a UUIDv7", isinstance(a, str) and bool(_UUIDV7.match(a)), a),
    "string:datetime": lambda a: _need(
        "an RFC 3339 datetime", isinstance(a, str) and bool(_DATETIME.match(a)), a
    ),
    "number:positive": lambda a: _need("a positive number", is_number(a) and a > 0, a),
    "number:non_negative": lambda a: _need("a non-negative number", is_number(a) and a >= 0, a),
    "array:nonempty": lambda a: _need("a non-empty array", isinstance(a, list) and bool(a), a),
    "array:empty": lambda a: _need("an empty array", a == [], a),
}


def _match_string(matcher: str, actual: Any) -> str | None:
    simple = _SIMPLE.get(matcher)
    if simple:
        return simple(actual)
    is_list = isinstance(actual, list)
    found = _MIN_LENGTH.match(matcher)
    if found:
        size = int(found.group(1))
        return _need(f"an array of at least {size} items", is_list and len(actual) >= size, actual)
    found = _LENGTH.match(matcher)
    if found:
        size = int(found.group(1) or found.group(2))
        return _need(f"an array of length {size}", is_list and len(actual) == size, actual)
    for prefix in ("not_contains:", "contains:"):
        if matcher.startswith(prefix):
            return _match_contains(matcher[len(prefix) :], actual, prefix == "contains:")
    return _match_string_forms(matcher, actual)


def _match_string_forms(matcher: str, actual: Any) -> str | None:
    is_text = isinstance(actual, str)
    if matcher.startswith("string:contains:"):
        needle = matcher[len("string:contains:") :]
        return _need(f"a string containing {needle!r}", is_text and needle in actual, actual)
    if matcher.startswith("string:pattern(") and matcher.endswith(")"):
        regex = matcher[len("string:pattern(") : -1]
        ok = is_text and re.search(regex, actual) is not None
        return _need(f"a string matching {regex!r}", ok, actual)
    found = _RANGE.match(matcher)
    if found:
        low, high = float(found.group(1)), float(found.group(2))
        ok = is_number(actual) and low <= actual <= high
        return _need(f"a number in [{low:g}, {high:g}]", ok, actual)
    found = _APPROX.match(matcher)
    if found:
        wanted = float(found.group(1))
        ok = is_number(actual) and abs(actual - wanted) <= wanted * 0.5
        return _need(f"~{wanted:g} (within 50%)", ok, actual)
    if actual == matcher:
        return None
    return f"expected {matcher!r}, got {show(actual)}"


def _match_contains(target: str, actual: Any, wanted: bool) -> str | None:
    if not isinstance(actual, list):
        return f"expected an array for (not_)contains, got {show(actual)}"
    found = any(go_format(item) == target for item in actual)
    if found == wanted:
        return None
    verb = "to contain" if wanted else "not to contain"
    return f"expected the array {verb} {target!r}, got {show(actual)}"


def _match_object(expected: dict[str, Any], actual: Any) -> str | None:
    if "$exists" in expected:
        return _match_exists(expected, actual)
    if "$type" in expected:
        return _need(f"type {expected['$type']}", type_name(actual) == expected["$type"], actual)
    if "$match" in expected:
        pattern = expected["$match"]
        ok = isinstance(actual, str) and bool(re.search(pattern, actual))
        return _need(f"a string matching {pattern!r}", ok, actual)
    if "$in" in expected:
        if any(match(option, actual) is None for option in expected["$in"]):
            return None
        return f"expected one of {show(expected['$in'])}, got {show(actual)}"
    if "$size" in expected:
        return _match_size(expected["$size"], actual)
    if "$or" in expected:
        if any(match(option, actual) is None for option in expected["$or"]):
            return None
        return f"no $or alternative matched {show(actual)}"
    if "$empty" in expected:
        wanted = bool(expected["$empty"])
        empty = is_nil(actual) or actual in ("", [], {})
        return _need("an empty value" if wanted else "a non-empty value", empty == wanted, actual)
    if "range" in expected:
        return _match_range(expected["range"], actual)
    operators = [key for key in expected if key in _COMPARE]
    if operators:
        return _match_compare(expected, operators, actual)
    return _match_partial(expected, actual)


def _match_exists(expected: dict[str, Any], actual: Any) -> str | None:
    if expected["$exists"] and is_nil(actual):
        return "expected a value, but it is missing or null"
    if not expected["$exists"] and not is_nil(actual):
        return f"expected no value, got {show(actual)}"
    if "$type" in expected and expected["$exists"] and type_name(actual) != expected["$type"]:
        return f"expected type {expected['$type']}, got {type_name(actual)}"
    return None


def _match_size(size: Any, actual: Any) -> str | None:
    if not isinstance(actual, list):
        return f"expected an array for $size, got {show(actual)}"
    if isinstance(size, dict):
        return _match_object(size, len(actual))
    return _need(f"an array of size {size}", len(actual) == size, actual)


def _match_range(bounds: dict[str, Any], actual: Any) -> str | None:
    if not is_number(actual):
        return f"expected a number for range, got {show(actual)}"
    if "min" in bounds and actual < bounds["min"]:
        return f"expected >= {bounds['min']}, got {actual}"
    if "max" in bounds and actual > bounds["max"]:
        return f"expected <= {bounds['max']}, got {actual}"
    return None


def _match_compare(expected: dict[str, Any], operators: list[str], actual: Any) -> str | None:
    if not is_number(actual):
        return f"expected a number, got {show(actual)}"
    for operator in operators:
        if not _COMPARE[operator](actual, expected[operator]):
            return f"expected {operator} {expected[operator]}, got {actual}"
    return None


def _match_partial(expected: dict[str, Any], actual: Any) -> str | None:
    """Key-by-key match; extra keys in ``actual`` are fine, ``"absent"`` forbids a key."""
    if not isinstance(actual, dict):
        return f"expected an object, got {show(actual)}"
    for key, sub in expected.items():
        if sub == "absent":
            if key in actual:
                return f"field {key!r}: expected absent, got {show(actual[key])}"
            continue
        if key not in actual:
            return f"field {key!r}: expected to exist but is missing"
        problem = match(sub, actual[key])
        if problem:
            return f"field {key!r}: {problem}"
    return None


# ---------------------------------------------------------------------------------------------
# Templates
# ---------------------------------------------------------------------------------------------

TEMPLATE = re.compile(r"\{\{steps\.([^.}]+)\.response\.body(?:\.([^}]+))?\}\}")

Lookup = Callable[[str], Any]
"""Maps a step id to the decoded body of that step's response (MISSING when unknown)."""


def _template_value(found: re.Match[str], lookup: Lookup) -> Any:
    body = lookup(found.group(1))
    if is_nil(body):
        return MISSING
    try:
        return resolve_path(found.group(2) or "$", body)
    except PathError:
        return MISSING


def format_template_value(value: Any) -> str:
    """Text form of a template value: strings raw, whole floats as ints, the rest as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def substitute(text: str, lookup: Lookup) -> str:
    """Replace every resolvable template in ``text``; unresolved ones stay as they are."""

    def replace(found: re.Match[str]) -> str:
        value = _template_value(found, lookup)
        return found.group(0) if is_nil(value) else format_template_value(value)

    return TEMPLATE.sub(replace, text)


def substitute_value(value: Any, lookup: Lookup, *, whole_values: bool = False) -> Any:
    """Substitute templates inside a decoded JSON value (keys and string leaves), as text.

    With ``whole_values``, a string that is exactly one template is replaced by the
    referenced value itself (an array, an object...), which ASSERT steps compare.
    """
    if isinstance(value, str):
        whole = TEMPLATE.fullmatch(value) if whole_values else None
        if whole:
            resolved = _template_value(whole, lookup)
            return value if is_nil(resolved) else resolved
        return substitute(value, lookup)
    if isinstance(value, list):
        return [substitute_value(item, lookup, whole_values=whole_values) for item in value]
    if isinstance(value, dict):
        return {
            substitute(key, lookup): substitute_value(item, lookup, whole_values=whole_values)
            for key, item in value.items()
        }
    return value
