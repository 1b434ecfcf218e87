"""The corral pytest plugin (nodes/testing/plugin.py), used the way a user uses it.

pytester writes test files into a temporary project outside the package and runs pytest on
them; the plugin comes in through the installed `pytest11` entry point, as it does for a user.
One file is the example of docs/TESTING.md, read from the doc itself so the doc cannot rot;
the other pins the rest of the contract (markers, seeds, faults, the failure report). Both run
in one in-process pytest run (a cluster costs milliseconds, a pytest run far more); a second,
tiny run checks that a project asking for no cluster gets nothing started.
"""

from __future__ import annotations

import re
from pathlib import Path

import pykka
import pytest

pytest_plugins = ["pytester"]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "TESTING.md"
TESTED_EXAMPLE = "<!-- tested: tests/integration/test_pytest_plugin.py -->"
SEED = 1234
# Plugins the user's project has no use for: hypothesis's imports all of hypothesis at the end
# of a run (over a second), and pytester's snapshot of sys.modules drops it again after each.
QUIET = ("-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-p", "no:anyio")

CONTRACT = '''
"""What the corral plugin promises beyond the documented example."""

import asyncio

import pytest

from actors.worker import current_job


def nap(seconds):
    current_job().sleep(seconds)
    return seconds


async def fetch(url):
    await current_job().asleep(300)  # five virtual minutes
    await asyncio.sleep(0)
    return f"body of {url}"


@pytest.fixture
def failures():
    return []


@pytest.fixture
def corral_handlers(failures):
    def flaky():
        if len(failures) < 2:
            failures.append(current_job().attempt)
            raise TimeoutError("upstream busy")
        return "third time lucky"

    return {"nap": nap, "echo": lambda value: value, "fetch": fetch, "flaky": flaky}


def test_minutes_of_backoff_pass_in_virtual_time(corral_client, corral_time, failures):
    backoff = {"initial_interval": 300, "max_interval": 3600, "jitter": False}
    job = corral_client.enqueue("flaky", [], max_attempts=3, retry=backoff)
    assert job.result(timeout=3600) == "third time lucky"
    assert corral_time.elapsed() >= 300 + 600  # a quarter of an hour of backoff, virtual


def test_an_async_handler_waits_in_virtual_time(corral_client, corral_time):
    assert corral_client.enqueue("fetch", ["a.example"]).result(timeout=600) == "body of a.example"
    assert corral_time.elapsed() >= 300


@pytest.mark.corral(workers=1, handlers={"echo": lambda value: f"class {value}"})
class TestMarkers:
    @pytest.mark.corral(workers=3, concurrency=1, queues=("default", "emails"))
    def test_the_closest_marker_wins_key_by_key_and_handlers_merge(
        self, corral_client, corral_faults
    ):
        assert corral_faults.workers() == ["worker-1", "worker-2", "worker-3"]
        reply = corral_client.enqueue("echo", ["hi"], queue="emails").result(timeout=60)
        assert reply == "class hi"
        assert corral_client.enqueue("nap", [5]).result(timeout=60) == 5

    @pytest.mark.corral(seed=5)
    def test_a_marker_seed_wins_over_the_command_line(self, corral_seed, corral_cluster):
        assert corral_seed == corral_cluster.seed == 5
        assert len(corral_cluster.workers) == 1


def test_the_command_line_seed_reaches_the_cluster(corral_seed, corral_cluster):
    assert corral_seed == corral_cluster.seed == __SEED__


def test_faults_name_workers_and_pick_a_live_one(corral_client, corral_faults):
    added = corral_faults.add_worker()
    assert corral_faults.workers() == ["worker-1", "worker-2", added]
    victim = corral_faults.kill_worker()
    assert victim not in corral_faults.workers() and len(corral_faults.workers()) == 2
    corral_faults.stop_worker(corral_faults.workers()[0])
    corral_faults.restart_coordinator()
    assert corral_client.enqueue("echo", [7]).result(timeout=120) == 7


def test_a_timed_out_wait_says_so_in_virtual_seconds(corral_client, corral_time):
    job = corral_client.enqueue("nap", [600])
    with pytest.raises(TimeoutError, match="virtual s"):
        corral_time.wait_job(job, within=60)


def test_a_failure_report_names_the_seed(corral_client):
    assert corral_client.enqueue("echo", [4]).result(timeout=60) == 5
'''.replace("__SEED__", str(SEED))

PLAIN = '''
"""A project's tests that never ask for a cluster."""

import pytest


@pytest.mark.corral(workers=1)
def test_the_marker_is_registered_even_unused():
    pass


def test_a_plain_failure():
    assert 1 == 2
'''


def documented_example() -> str:
    """The Python block after the 'tested' mark in docs/TESTING.md."""
    after = DOCS.read_text(encoding="utf-8").split(TESTED_EXAMPLE, 1)[1]
    found = re.match(r"\s*```python\n(.*?)```", after, re.DOTALL)
    assert found, f"no python block right after {TESTED_EXAMPLE} in {DOCS}"
    return found.group(1)


def outcomes(result: pytest.RunResult) -> dict[str, str]:
    """Test name -> 'passed' / 'failed' / 'skipped', a failure in any phase counting."""
    seen: dict[str, str] = {}
    for report in result.reprec.getreports("pytest_runtest_logreport"):  # type: ignore[attr-defined]
        name = report.nodeid.split("::", 1)[1]
        if seen.get(name) != "failed" and (report.when == "call" or not report.passed):
            seen[name] = report.outcome
    return seen


def test_a_users_tests_of_their_handlers_run_on_a_simulated_cluster_in_virtual_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_handlers=documented_example(), test_contract=CONTRACT)

    result = pytester.runpytest(f"--corral-seed={SEED}", *QUIET)

    assert outcomes(result) == {
        "test_add_returns_the_sum": "passed",
        "test_a_mail_failing_twice_is_sent_by_the_third_attempt": "passed",
        "test_a_report_on_a_killed_worker_is_finished_by_another": "passed",
        "test_a_worker_cut_off_for_the_heartbeat_timeout_loses_its_job": "passed",
        "test_minutes_of_backoff_pass_in_virtual_time": "passed",
        "test_an_async_handler_waits_in_virtual_time": "passed",
        "TestMarkers::test_the_closest_marker_wins_key_by_key_and_handlers_merge": "passed",
        "TestMarkers::test_a_marker_seed_wins_over_the_command_line": "passed",
        "test_the_command_line_seed_reaches_the_cluster": "passed",
        "test_faults_name_workers_and_pick_a_live_one": "passed",
        "test_a_timed_out_wait_says_so_in_virtual_seconds": "passed",
        "test_a_failure_report_names_the_seed": "failed",
    }, result.stdout.str()
    result.stdout.fnmatch_lines(
        [
            f"corral: --corral-seed={SEED}",
            "*test_a_failure_report_names_the_seed*",
            "*- corral -*",
            f"seed={SEED}; virtual time * s after the cluster started",
            f"replay: pytest 'test_contract.py::test_a_failure_report_names_the_seed'"
            f" --corral-seed={SEED}",
        ]
    )


def test_a_project_that_asks_for_no_cluster_gets_nothing_started_and_no_seed_section(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(test_plain=PLAIN)
    before = set(pykka.ActorRegistry.get_all())  # a cluster starts actors; nothing else does

    result = pytester.runpytest("--strict-markers", "--corral-seed=random", *QUIET)

    started = set(pykka.ActorRegistry.get_all()) - before
    assert not started, f"actors started without a cluster: {started}"
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["corral: --corral-seed=*"])
    result.stdout.no_fnmatch_line("*- corral -*")
