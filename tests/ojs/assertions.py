"""Evaluation of a step's ``assertions`` object (OJS conformance DSL).

HTTP steps are checked against their own response (:func:`check_response`); ``ASSERT`` steps
compare earlier responses with each other (:func:`check_cross_step`). Every check returns a
list of human-readable failure messages, empty when the step passed.

Strictness, where the reference Go runner is lax:

* A body that is not a JSON object (empty, invalid, an array) is evaluated as *nothing*:
  matchers that need a value fail with a clear message instead of being skipped; matchers
  that accept a missing value (``"absent"``, ``{"$exists": false}``) still pass.
* A JSONPath that cannot be walked (index out of range, a key on a string) is a failure
  unless the matcher accepts a missing value, as in Go.
* Unknown assertion keys are failures rather than silently ignored.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.ojs.jsonpath import MISSING, PathError, is_nil, is_number, resolve_path, show
from tests.ojs.matchers import match

# The reference runner's timing tolerance: 50 % of the expected value, at least 100 ms.
TIMING_TOLERANCE = 0.5
TIMING_FLOOR_MS = 100.0


@dataclass(frozen=True)
class Response:
    """What assertions look at: status, headers (lower-cased names), raw text, decoded JSON."""

    status: int
    text: str
    json: Any = MISSING
    headers: Mapping[str, str] = field(default_factory=dict)
    elapsed_ms: float = 0.0

    @property
    def body_object(self) -> Any:
        """The decoded body when it is a JSON object, else :data:`MISSING`."""
        return self.json if isinstance(self.json, dict) else MISSING


def check_response(assertions: Mapping[str, Any], response: Response) -> list[str]:
    """Failures of an HTTP step's (template-substituted) assertions against its response."""
    failures: list[str] = []
    for key, spec in assertions.items():
        check = _RESPONSE_CHECKS.get(key)
        if check is None:
            failures.append(f"unsupported assertion {key!r}")
        else:
            failures.extend(check(spec, response))
    return failures


def _check_status(expected: Any, response: Response) -> list[str]:
    status = response.status
    if isinstance(expected, str) and expected.startswith("one_of:"):
        codes = [int(code) for code in expected[len("one_of:") :].split(",")]
        ok = status in codes
    elif isinstance(expected, dict) and "$in" in expected:
        ok = status in expected["$in"]
    elif is_number(expected):
        ok = status == expected
    else:
        ok = match(expected, status) is None
    return [] if ok else [f"status: expected {show(expected)}, got {status}"]


def _check_status_in(expected: list[int], response: Response) -> list[str]:
    if response.status in expected:
        return []
    return [f"status: expected one of {expected}, got {response.status}"]


def _check_headers(expected: Mapping[str, Any], response: Response) -> list[str]:
    failures = []
    for name, wanted in expected.items():
        actual = response.headers.get(name.lower(), MISSING)
        if isinstance(wanted, str):
            problem = None if actual == wanted else f"expected {wanted!r}, got {show(actual)}"
        else:
            problem = match(wanted, actual)
        if problem:
            failures.append(f"header {name}: {problem}")
    return failures


def _check_body(spec: Mapping[str, Any], response: Response) -> list[str]:
    failures = []
    for key, matcher in spec.items():
        if key == "$or":
            failures.extend(_check_or(matcher, response))
        else:
            problem = _check_entry(key, matcher, response)
            if problem:
                failures.append(problem)
    return failures


def _is_empty_body(response: Response) -> bool:
    return not response.text.strip() or response.json in (None, {}, [])


def _check_entry(path: str, matcher: Any, response: Response) -> str | None:
    """One ``JSONPath: matcher`` pair; ``"$empty": bool`` checks the whole body instead."""
    if path == "$empty":
        if _is_empty_body(response) == bool(matcher):
            return None
        return f"$empty: expected {'an empty' if matcher else 'a non-empty'} body"
    root = response.body_object
    reason = ""
    try:
        actual = resolve_path(path, root)
    except PathError as error:
        actual, reason = MISSING, f" ({error})"
    problem = match(matcher, actual)
    if problem is None:
        return None
    if root is MISSING:
        reason += " (the response body is not a JSON object)"
    return f"{path}: {problem}{reason}"


def _check_or(alternatives: list[Mapping[str, Any]], response: Response) -> list[str]:
    reasons = []
    for alternative in alternatives:
        problems = [_check_entry(path, m, response) for path, m in alternative.items()]
        problems = [p for p in problems if p]
        if not problems:
            return []
        reasons.append("; ".join(problems))
    return ["$or: no alternative matched: " + " | ".join(reasons)]


def _check_body_absent(paths: list[str], response: Response) -> list[str]:
    failures = []
    for path in paths:
        try:
            actual = resolve_path(path, response.body_object)
        except PathError:
            continue
        if not is_nil(actual):
            failures.append(f"{path}: expected absent, got {show(actual)}")
    return failures


def _check_body_contains(needles: list[str], response: Response) -> list[str]:
    return [f"body does not contain {n!r}" for n in needles if n not in response.text]


def _check_body_raw(expected: Any, response: Response) -> list[str]:
    """Not implemented by the Go runner; here the raw text (a string) or the decoded JSON."""
    same = (
        response.text == expected
        if isinstance(expected, str)
        else same_json(response.json, expected)
    )
    return [] if same else [f"body: expected exactly {show(expected)}"]


def _check_timing(spec: Mapping[str, Any], response: Response) -> list[str]:
    took = response.elapsed_ms
    failures = []
    if "less_than" in spec and took >= spec["less_than"]:
        failures.append(f"timing: expected < {spec['less_than']} ms, took {took:.0f} ms")
    if "greater_than" in spec and took <= spec["greater_than"]:
        failures.append(f"timing: expected > {spec['greater_than']} ms, took {took:.0f} ms")
    if "approximate" in spec:
        wanted = spec["approximate"]
        tolerance = max(wanted * TIMING_TOLERANCE, TIMING_FLOOR_MS)
        if abs(took - wanted) > tolerance:
            failures.append(f"timing: expected ~{wanted} ms (±{tolerance:.0f}), took {took:.0f} ms")
    return failures


_RESPONSE_CHECKS = {
    "status": _check_status,
    "status_in": _check_status_in,
    "headers": _check_headers,
    "body": _check_body,
    "body_absent": _check_body_absent,
    "body_contains": _check_body_contains,
    "body_raw": _check_body_raw,
    "timing_ms": _check_timing,
}


# ---------------------------------------------------------------------------------------------
# ASSERT steps
# ---------------------------------------------------------------------------------------------


def check_cross_step(assertions: Mapping[str, Any], responses: Mapping[str, Response]) -> list[str]:
    """Failures of an ``ASSERT`` step whose templates were resolved to whole values.

    ``exclusive_claim``: of the ``fetches`` (each the ``jobs`` array of a fetch response),
    exactly one holds the job ``job_id`` and/or exactly one is empty.
    ``equality``: each key, a JSONPath over ``{"steps": {id: {"response": {...}}}}``, must
    equal its value (typically a whole earlier body).
    """
    failures = []
    for key, spec in assertions.items():
        if key == "exclusive_claim":
            failures.extend(_check_exclusive_claim(spec))
        elif key == "equality":
            failures.extend(_check_equality(spec, responses))
        else:
            failures.append(f"unsupported ASSERT assertion {key!r}")
    return failures


def _fetched(fetch: Any) -> list[Any]:
    """The jobs of one fetch; an unresolved template (no ``jobs`` in the body) counts as none."""
    return fetch if isinstance(fetch, list) else []


def _check_exclusive_claim(spec: Mapping[str, Any]) -> list[str]:
    fetches = [_fetched(fetch) for fetch in spec.get("fetches", [])]
    job_id = spec.get("job_id")
    holders = sum(
        any(isinstance(job, dict) and job.get("id") == job_id for job in jobs) for jobs in fetches
    )
    empties = sum(not jobs for jobs in fetches)
    failures = []
    if spec.get("exactly_one_has_job") and holders != 1:
        failures.append(f"exclusive_claim: {holders} of {len(fetches)} fetches got job {job_id}")
    if spec.get("exactly_one_empty") and empties != 1:
        failures.append(f"exclusive_claim: {empties} of {len(fetches)} fetches were empty")
    return failures


def _check_equality(spec: Mapping[str, Any], responses: Mapping[str, Response]) -> list[str]:
    context = {
        "steps": {
            step_id: {"response": {"status": r.status, "body": r.json, "headers": r.headers}}
            for step_id, r in responses.items()
        }
    }
    failures = []
    for path, expected in spec.items():
        try:
            actual = resolve_path(path, context)
        except PathError as error:
            failures.append(f"equality {path}: {error}")
            continue
        if not same_json(actual, expected):
            failures.append(f"equality {path}: expected {show(expected)}, got {show(actual)}")
    return failures


def same_json(left: Any, right: Any) -> bool:
    """Deep JSON equality that, unlike ``==``, keeps ``true`` apart from ``1``."""
    if isinstance(left, bool) or isinstance(right, bool):
        return left is right
    if is_number(left) and is_number(right):
        return left == right
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(map(same_json, left, right))
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(same_json(left[k], right[k]) for k in left)
    return type(left) is type(right) and left == right


def decode(text: str) -> Any:
    """The JSON value of a response body, :data:`MISSING` when it is empty or not JSON."""
    if not text.strip():
        return MISSING
    try:
        return json.loads(text)
    except ValueError:
        return MISSING
