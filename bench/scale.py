"""The scale scenarios of bench/run.py's full run, as one table: each runs once (they measure
sizes and times, ~40 s each, not rates that need a median), adds its keys to the summary and
its rows to the printed table."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import failover
import limits
import many_workers
import million
import recovery
import report
import schedules
import takeover
import workflows

Row = tuple[str, str, str]  # label, result key, unit


@dataclass(frozen=True)
class Scenario:
    name: str
    run: Callable[[], dict[str, Any]]
    summary: tuple[str, ...]  # result keys copied into the JSON summary
    rows: tuple[Row, ...]


SCENARIOS = (
    Scenario(
        "1,000 idle workers",
        many_workers.run,
        ("coordinator_cpu_pct_1k_workers", "workers_connected"),
        (
            ("coordinator CPU, 1,000 idle workers beating (% of a core)",
             "coordinator_cpu_pct_1k_workers", "%"),
            ("  workers connected", "workers_connected", ""),
        ),
    ),
    Scenario(
        "1,000,000 queued jobs",
        million.run,
        ("rss_mib_1m_queued", "enqueue_jobs_per_s_1m", "fetch_head_ms_1m"),
        (
            ("coordinator RSS, 1,000,000 jobs queued", "rss_mib_1m_queued", "MiB"),
            ("  enqueue rate (batches of 10,000)", "enqueue_jobs_per_s_1m", "jobs/s"),
            ("  fetch of the head job", "fetch_head_ms_1m", "ms"),
        ),
    ),
    Scenario(
        "1,000,000 queued jobs over 10,000 full keys",
        limits.run,
        ("fetch_limited_ms_p50", "fetch_limited_ms_p99", "fetch_unlimited_ms_p50"),
        (
            ("1,000,000 jobs, 10,000 keys full: fetch after an ack, p50",
             "fetch_limited_ms_p50", "ms"),
            ("  p99", "fetch_limited_ms_p99", "ms"),
            ("  the same fetch under no limit, p50", "fetch_unlimited_ms_p50", "ms"),
            ("  enqueue rate, each job under a limit", "enqueue_jobs_per_s_limited", "jobs/s"),
            ("  enqueue rate, no limit", "enqueue_jobs_per_s_unlimited", "jobs/s"),
        ),
    ),
    Scenario(
        "recovery after SIGKILL",
        recovery.run,
        ("recovery_s_after_sigkill",),
        (("job active again after SIGKILL (timeout 2 s, tick 0.1 s)",
          "recovery_s_after_sigkill", "s"),),
    ),
    Scenario(
        "failover after SIGKILL",
        failover.run,
        ("failover_s_p50", "failover_s_max", "failover_timeout_s"),
        (
            ("failover after SIGKILL of the leader, p50 (5 kills, timeout 3 s)",
             "failover_s_p50", "s"),
            ("  failover, max", "failover_s_max", "s"),
        ),
    ),
    Scenario(
        "takeover, 1,000,000 queued",
        takeover.run,
        ("takeover_s_1m_queued",),
        (
            ("takeover after SIGKILL, 1,000,000 queued: standby serving",
             "takeover_s_1m_queued", "s"),
            ("  first job completed", "first_job_s_1m_queued", "s"),
        ),
    ),
    Scenario(
        "1,000 schedules",
        schedules.run,
        ("schedules_firing_cpu_pct", "schedule_lateness_ms_p50", "schedule_jobs_missing"),
        (
            ("1,000 schedules idle (% of a core)", "schedules_idle_cpu_pct", "%"),
            ("  each firing every second (% of a core)", "schedules_firing_cpu_pct", "%"),
            ("  a job made after its slot, p50", "schedule_lateness_ms_p50", "ms"),
            ("  slots due but not made", "schedule_jobs_missing", ""),
        ),
    ),
    Scenario(
        "workflows: a chain and a group of 10,000",
        workflows.run,
        ("chain_ms_per_step", "plain_chain_ms_per_job", "workflow_request_ms_10k",
         "group_s_10k", "plain_group_s_10k", "fanin_ms_10k", "group_us_per_member_1k",
         "group_us_per_member_10k"),
        (
            ("chain of 10,000 steps, per step (2 workers x 50)", "chain_ms_per_step", "ms"),
            ("  plain jobs one after another (enqueue, get with wait), per job",
             "plain_chain_ms_per_job", "ms"),
            ("  the workflow request making the 10,000 steps", "workflow_request_ms_10k", "ms"),
            ("group of 10,000 + callback, request to callback completed", "group_s_10k", "s"),
            ("  10,000 plain jobs in one enqueue_many, to all completed", "plain_group_s_10k",
             "s"),
            ("  fan-in: last member completed to callback started", "fanin_ms_10k", "ms"),
            ("  the same at 1,000 members", "fanin_ms_1k", "ms"),
            ("  per member, 1,000 members", "group_us_per_member_1k", "µs"),
            ("  per member, 10,000 members", "group_us_per_member_10k", "µs"),
        ),
    ),
)  # fmt: skip


def run_all(failures: list[str]) -> tuple[dict[str, float | None], list[tuple[str, str]]]:
    """Every scenario once: the summary's keys and the table's rows."""
    summary: dict[str, float | None] = {}
    rows: list[tuple[str, str]] = []
    for scenario in SCENARIOS:
        results = report.attempt(scenario.name, scenario.run, 1, failures)
        summary |= {key: report.median(results, key) for key in scenario.summary}
        rows += [(label, report.cell(results, (key,), unit)) for label, key, unit in scenario.rows]
    return summary, rows


def failover_row(rows: list[tuple[str, str]], summary: dict[str, float | None]) -> None:
    """The failover's p50 row says how many failover_timeouts it took."""
    for index, (label, value) in enumerate(rows):
        if label.startswith("failover after SIGKILL"):
            rows[index] = (label, value + report.over_timeout(summary))
