"""The Open Job Spec conformance suite (tests/ojs/suite, vendored unmodified) against corral's
gateway, over real HTTP and real ZeroMQ sockets on loopback.

Every case runs against a cluster of its own, built from tests/ojs/conformance.yaml (a
coordinator with an empty memory store and a gateway in front of it), so no case sees another's
jobs. The cases wait fixed times between steps (their format has no polling), so they run
concurrently, CASES_AT_ONCE at a time (most of a case is its fixed waits), the longest waits
first (so none starts late and ends last); one test per case file then reports its result. Cases
that corral does not pass are listed in tests/ojs/pending.py with the reason, and marked as
expected failures that must fail (a case that starts passing is noticed). The cron cases wait
65 to 130 s for real minutes to pass: they run in the `slow` tier.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from nodes.config import load_config
from nodes.factory import build_node
from tests.ojs.pending import PENDING, SLOW
from tests.ojs.runner import Case, CaseResult, load_cases, run_case

CONFIG = Path(__file__).parent.parent / "ojs" / "conformance.yaml"
LEVELS = (0, 1, 2, 3, 4)
CASES_AT_ONCE = 24
CRON_TIMEOUT_S = 300
ALL_CASES = load_cases(LEVELS)


def start_cluster() -> tuple[Any, Any]:
    """A coordinator and its gateway from the YAML file, the gateway aimed at the coordinator."""
    config = load_config(CONFIG)
    coordinator = build_node(config.node("coordinator"))
    coordinator.start()
    try:
        gateway = build_node(config.node("gateway"), connect=coordinator.address)
        gateway.start()
    except BaseException:
        coordinator.stop()
        raise
    return coordinator, gateway


def run_isolated(case: Case) -> CaseResult:
    coordinator, gateway = start_cluster()
    try:
        return run_case(case, gateway.url)
    finally:
        gateway.stop()
        coordinator.stop()


def waits(case: Case) -> int:
    """The milliseconds a case spends in its fixed waits."""
    steps = (*case.setup, *case.steps, *case.teardown)
    return sum(step.delay_ms + step.duration_ms for step in steps)


class Results:
    """Runs the chosen cases on first use, all at once; each test then reads its own."""

    def __init__(self, cases: list[Case]) -> None:
        self._cases = cases
        self._lock = threading.Lock()
        self._results: dict[str, CaseResult] | None = None

    def of(self, case: Case) -> CaseResult:
        with self._lock:
            if self._results is None:
                longest_first = sorted(self._cases, key=waits, reverse=True)
                with ThreadPoolExecutor(CASES_AT_ONCE, thread_name_prefix="ojs-case") as pool:
                    done = pool.map(run_isolated, longest_first)
                    self._results = {r.path: r for r in done}
        return self._results[case.path]


def chosen(slow: bool) -> list[Case]:
    return [case for case in ALL_CASES if (case.path in SLOW) == slow]


QUICK_RESULTS, SLOW_RESULTS = Results(chosen(slow=False)), Results(chosen(slow=True))


def params(slow: bool) -> list[Any]:
    made = []
    for case in chosen(slow):
        marks = [pytest.mark.slow] if slow else []
        if case.path in PENDING:
            marks.append(pytest.mark.xfail(reason=PENDING[case.path], strict=True))
        made.append(pytest.param(case, id=case.path, marks=marks))
    return made


def explain(result: CaseResult) -> str:
    lines = [f"{result.path} ({result.test_id}) failed:"]
    for step in result.steps:
        for failure in step.failures:
            lines.append(f"  {step.id} {step.method} {step.path} -> {step.status}: {failure}")
    return "\n".join(lines)


@pytest.mark.parametrize("case", params(slow=False))
def test_conformance_case(case: Case) -> None:
    result = QUICK_RESULTS.of(case)
    assert result.passed, explain(result)


@pytest.mark.timeout(CRON_TIMEOUT_S)  # the first runs both cron cases: 130 s of waits
@pytest.mark.parametrize("case", params(slow=True))
def test_slow_conformance_case(case: Case) -> None:
    result = SLOW_RESULTS.of(case)
    assert result.passed, explain(result)


def test_every_level_0_to_2_case_is_run_and_only_higher_levels_may_be_pending() -> None:
    """Levels 0, 1 and 2 pass in full: none of their cases may be listed as pending."""
    assert {case.level for case in ALL_CASES} >= {0, 1, 2}
    low = [path for path in PENDING if path.startswith(("level-0", "level-1", "level-2"))]
    assert low == []
    assert set(PENDING) <= {case.path for case in ALL_CASES}
