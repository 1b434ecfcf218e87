"""A Python runner for the Open Job Spec conformance suite's JSON test cases.

The vendored cases live in ``tests/ojs/suite`` (see its README). :func:`load_cases` reads
them and :func:`run_case` plays one against a server over HTTP. The format and the reference
Go runner are described in the module docstrings of :mod:`tests.ojs.matchers` and
:mod:`tests.ojs.assertions`; this runner is a superset of the Go one:

* ``raw_body`` is sent as is (the Go runner sends no body);
* ``parallel_with`` really runs the linked steps at the same time, on threads;
* ``ASSERT`` steps are evaluated (``exclusive_claim``, ``equality``) instead of being sent
  to the server as an HTTP method;
* a ``WAIT`` step sleeps ``duration_ms`` once, after the usual ``delay_ms`` (the Go runner
  sleeps ``delay_ms`` twice when ``duration_ms`` is absent).

Results are keyed by the case's file path: several cases share a ``test_id``.

Command line::

    python -m tests.ojs.runner --url http://127.0.0.1:8080 [--level N] [--path-contains S]
                               [--token T] [--json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.ojs.assertions import Response, check_cross_step, check_response, decode
from tests.ojs.jsonpath import MISSING
from tests.ojs.matchers import substitute, substitute_value

SUITE_DIR = Path(__file__).resolve().parent / "suite"
MEDIA_TYPE = "application/openjobspec+json"
REQUEST_TIMEOUT_S = 30.0
BODY_PREVIEW_CHARS = 2048

Sleep = Callable[[float], None]


@dataclass(frozen=True)
class Step:
    """One step of a case, as written in the JSON file."""

    id: str
    action: str
    path: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    body: Any = MISSING
    raw_body: str | None = None
    delay_ms: int = 0
    duration_ms: int = 0
    parallel_with: str | None = None
    assertions: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Step:
        return cls(
            id=data["id"],
            action=data["action"].upper(),
            path=data.get("path", ""),
            headers=data.get("headers") or {},
            body=data.get("body", MISSING),
            raw_body=data.get("raw_body"),
            delay_ms=data.get("delay_ms", 0),
            duration_ms=data.get("duration_ms", 0),
            parallel_with=data.get("parallel_with"),
            assertions=data.get("assertions") or {},
        )


@dataclass(frozen=True)
class Case:
    """One case file; ``path`` is relative to the suite folder, e.g. ``level-0-core/...``."""

    path: str
    test_id: str
    level: int
    name: str
    category: str
    setup: tuple[Step, ...]
    steps: tuple[Step, ...]
    teardown: tuple[Step, ...]


@dataclass
class StepResult:
    id: str
    phase: str  # "setup", "test" or "teardown"
    method: str
    path: str
    status: int | None
    body: str  # the response body, truncated to BODY_PREVIEW_CHARS
    duration_ms: float
    failures: list[str]


@dataclass
class CaseResult:
    path: str
    test_id: str
    passed: bool
    errored: bool  # a setup step failed, so the test steps never ran
    steps: list[StepResult]


def _steps(section: Any) -> tuple[Step, ...]:
    raw = section.get("steps", []) if isinstance(section, dict) else section or []
    return tuple(Step.from_json(step) for step in raw)


def load_case(file: Path, suite_dir: Path = SUITE_DIR) -> Case:
    data = json.loads(file.read_text(encoding="utf-8"))
    return Case(
        path=file.relative_to(suite_dir).as_posix(),
        test_id=data["test_id"],
        level=int(data["level"]),
        name=data.get("name", file.stem),
        category=data.get("category", ""),
        setup=_steps(data.get("setup")),
        steps=_steps(data.get("steps")),
        teardown=_steps(data.get("teardown")),
    )


def load_cases(levels: Iterable[int] | None = None, suite_dir: Path = SUITE_DIR) -> list[Case]:
    """Every vendored case (of the given levels), sorted by file path."""
    wanted = None if levels is None else set(levels)
    cases = [load_case(file, suite_dir) for file in sorted(suite_dir.rglob("*.json"))]
    return [case for case in cases if wanted is None or case.level in wanted]


class _Session:
    """The responses seen so far in one case, and how to play a step against the server."""

    def __init__(
        self, base_url: str, client: httpx.Client, headers: Mapping[str, str], sleep: Sleep
    ) -> None:
        self._base_url = base_url.rstrip("/")
        self._client = client
        self._headers = dict(headers)
        self._sleep = sleep
        self.responses: dict[str, Response] = {}

    def body_of(self, step_id: str) -> Any:
        response = self.responses.get(step_id)
        return MISSING if response is None else response.json

    def run_phase(
        self, steps: tuple[Step, ...], phase: str, stop_on_failure: bool
    ) -> list[StepResult]:
        results: list[StepResult] = []
        done: set[str] = set()
        for index, step in enumerate(steps):
            if step.id in done:
                continue
            group = _parallel_group(steps, index, done)
            done.update(member.id for member in group)
            results.extend(self._run_group(group, phase))
            if stop_on_failure and any(result.failures for result in results):
                break
        return results

    def _run_group(self, group: list[Step], phase: str) -> list[StepResult]:
        """Run steps linked by ``parallel_with`` at once; templates see only earlier steps."""
        if len(group) == 1:
            outcomes = [self._perform(group[0])]
        else:
            with ThreadPoolExecutor(len(group), thread_name_prefix="ojs-step") as pool:
                outcomes = list(pool.map(self._perform, group))
        results = []
        for step, (method, path, response, failures) in zip(group, outcomes, strict=True):
            if response is not None:
                assertions = substitute_value(step.assertions, self.body_of)
                failures = check_response(assertions, response)
                self.responses[step.id] = response
            results.append(_result(step, phase, method, path, response, failures))
        return results

    def _perform(self, step: Step) -> tuple[str, str, Response | None, list[str]]:
        """Sleep, then send the request (or do the pseudo action): method, path, response."""
        if step.delay_ms > 0:
            self._sleep(step.delay_ms / 1000)
        if step.action == "WAIT":
            if step.duration_ms > 0:
                self._sleep(step.duration_ms / 1000)
            return "WAIT", "", None, []
        if step.action == "ASSERT":
            assertions = substitute_value(step.assertions, self.body_of, whole_values=True)
            return "ASSERT", "", None, check_cross_step(assertions, self.responses)
        path = substitute(step.path, self.body_of)
        try:
            return step.action, path, self._send(step, path), []
        except httpx.HTTPError as error:
            return step.action, path, None, [f"request failed: {type(error).__name__}: {error}"]

    def _send(self, step: Step, path: str) -> Response:
        content = _request_body(step, self.body_of)
        headers = dict(self._headers)
        headers.update({k: substitute(v, self.body_of) for k, v in step.headers.items()})
        if content is not None and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = MEDIA_TYPE
        started = time.perf_counter()
        reply = self._client.request(
            step.action,
            self._base_url + path,
            content=None if content is None else content.encode("utf-8"),
            headers=headers,
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
        return Response(
            status=reply.status_code,
            text=reply.text,
            json=decode(reply.text),
            headers={name.lower(): value for name, value in reply.headers.items()},
            elapsed_ms=elapsed_ms,
        )


def _parallel_group(steps: tuple[Step, ...], start: int, done: set[str]) -> list[Step]:
    """``steps[start]`` and the later steps linked to it, directly or not, by ``parallel_with``."""
    pending = [step for step in steps[start:] if step.id not in done]
    group = [pending[0]]
    while True:
        ids = {step.id for step in group}
        links = {step.parallel_with for step in group}
        linked = [s for s in pending if s.id in links or s.parallel_with in ids]
        extra = [s for s in linked if s.id not in ids]
        if not extra:
            return [step for step in pending if step.id in ids]
        group.extend(extra)


def _request_body(step: Step, lookup: Callable[[str], Any]) -> str | None:
    """The text to send: ``raw_body`` as is, else ``body`` as JSON, templates substituted."""
    if step.raw_body is not None:
        return substitute(step.raw_body, lookup)
    if step.body is MISSING:
        return None
    return substitute(json.dumps(step.body, ensure_ascii=False), lookup)


def _result(
    step: Step,
    phase: str,
    method: str,
    path: str,
    response: Response | None,
    failures: list[str],
) -> StepResult:
    text = "" if response is None else response.text
    if len(text) > BODY_PREVIEW_CHARS:
        text = text[:BODY_PREVIEW_CHARS] + "...(truncated)"
    return StepResult(
        id=step.id,
        phase=phase,
        method=method,
        path=path,
        status=None if response is None else response.status,
        body=text,
        duration_ms=0.0 if response is None else round(response.elapsed_ms, 1),
        failures=failures,
    )


def run_case(
    case: Case,
    base_url: str,
    *,
    headers: Mapping[str, str] | None = None,
    client: httpx.Client | None = None,
    sleep: Sleep = time.sleep,
) -> CaseResult:
    """Play one case against ``base_url``: setup, steps, then teardown (failures ignored).

    A failing setup step marks the case errored and stops it. Every test step runs even
    after one fails. ``headers`` go on every request (e.g. ``Authorization``).
    """
    owned = client is None
    http = httpx.Client(timeout=REQUEST_TIMEOUT_S) if client is None else client
    try:
        session = _Session(base_url, http, headers or {}, sleep)
        setup = session.run_phase(case.setup, "setup", stop_on_failure=True)
        if any(result.failures for result in setup):
            return CaseResult(case.path, case.test_id, passed=False, errored=True, steps=setup)
        steps = session.run_phase(case.steps, "test", stop_on_failure=False)
        teardown = session.run_phase(case.teardown, "teardown", stop_on_failure=False)
        passed = not any(result.failures for result in steps)
        return CaseResult(case.path, case.test_id, passed, False, setup + steps + teardown)
    finally:
        if owned:
            http.close()


def describe(result: CaseResult) -> str:
    """``PASS|FAIL|ERROR path test_id`` and, below, one line per failed assertion."""
    verdict = "PASS" if result.passed else "ERROR" if result.errored else "FAIL"
    lines = [f"{verdict} {result.path} {result.test_id}"]
    for step in result.steps:
        if step.phase == "teardown":
            continue
        where = f"{step.method} {step.path} -> {step.status}" if step.path else step.method
        lines.extend(f"    [{step.id}] {where}: {failure}" for failure in step.failures)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.ojs.runner",
        description="Run the vendored OJS conformance cases against a server.",
    )
    parser.add_argument("--url", required=True, help="base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument(
        "--level", type=int, action="append", choices=range(5), help="a level (repeatable)"
    )
    parser.add_argument("--path-contains", default="", help="only cases whose path has this")
    parser.add_argument("--token", help="sent as 'Authorization: Bearer <token>'")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    cases = [case for case in load_cases(args.level) if args.path_contains in case.path]
    if not cases:
        print("no case matches the filters", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    results = []
    with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
        for case in cases:
            result = run_case(case, args.url, headers=headers, client=client)
            results.append(result)
            if not args.json:
                print(describe(result), flush=True)
    if args.json:
        print(json.dumps([asdict(result) for result in results], indent=2))
    return 0 if all(result.passed for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
