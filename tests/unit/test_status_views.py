"""What `corral status` adds when the coordinator reports more: worker names, pending
directives, and (under `--watch`) sparklines of the `stats {series: true}` extension; and the
chart helpers behind them and the dashboard's SVG."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from nodes.cli.status import render
from nodes.cli.views import cluster_line
from nodes.observe import charts

NOW = 1_000_000.0


def worker(**extra: Any) -> dict[str, Any]:
    return {
        "worker_id": "w-1",
        "hostname": "box",
        "pid": 42,
        "state": "running",
        "queues": ["default"],
        "labels": {},
        "active": 0,
        "concurrency": 4,
        "last_seen": NOW - 1.0,
        **extra,
    }


def stats(*workers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"queues": {"default": {}}, "workers": list(workers), "unroutable": {}, **extra}


def test_the_workers_table_names_workers_by_their_node_name_when_the_coordinator_says_it():
    text = render(stats(worker(name="resizer"), worker(worker_id="w-2")), NOW)
    header = next(line for line in text.splitlines() if "LAST BEAT" in line)
    assert header.split()[:2] == ["NAME", "WORKER"]
    assert re.search(r"resizer +w-1 ", text), text
    assert re.search(r"- +w-2 ", text), text


def test_without_names_there_is_no_name_column():
    assert "NAME" not in render(stats(worker()), NOW)


def test_a_pending_directive_shows_with_the_time_it_takes_effect_by():
    by = NOW + 12
    text = render(stats(worker(directed="quiet", next_beat_by=by)), NOW)
    assert f"quiet (pending, by {datetime.fromtimestamp(by):%H:%M:%S})" in text
    assert "quiet (pending)" in render(stats(worker(directed="quiet")), NOW)  # no beat time
    done = render(stats(worker(state="quiet", directed="quiet", next_beat_by=by)), NOW)
    assert "pending" not in done  # the worker has taken it up


def test_watch_notes_jobs_held_by_a_limit_after_those_with_no_worker_and_only_when_some_are():
    waiting = {"unroutable": {"default": 1}, "limited": {"default": 4, "empty": 0}}
    series = {"interval": 1.0, "completed": [1] * 60}
    text = render(stats(worker(), series=series, **waiting), NOW)
    notes = text.splitlines()[-2:]
    assert notes[0].startswith("Jobs waiting with no eligible worker: 1 in default (")
    assert notes[1].startswith("Jobs waiting for a limit to free up: 4 in default (")
    assert "empty" not in notes[1]  # a queue with none held is not named
    quiet = render(stats(worker(), limited={}), NOW)
    assert "Jobs waiting" not in quiet
    assert re.search(r"default( +\d+){8} +0$", quiet, re.M), quiet  # the LIMITED column


def test_an_older_coordinators_stats_without_limited_still_render():
    text = render(stats(worker(), unroutable={"default": 2}), NOW)  # no `limited` key
    assert "LIMITED" in text
    assert "Jobs waiting with no eligible worker: 2 in default" in text
    assert "for a limit" not in text


def test_watch_draws_the_last_minute_as_sparklines_with_the_rates_now():
    series = {
        "interval": 1.0,
        "completed": [0] * 100 + list(range(10)) * 5,
        "failed": [0] * 149 + [7],
        "latency_p50_ms": [None] * 140 + [5.0] * 10,
        "latency_p95_ms": [None] * 140 + [2500.0] * 10,
    }
    text = render(stats(worker(), series=series), NOW)
    lines = {line.split()[0] + line.split()[1]: line for line in text.splitlines() if "▁" in line}
    completed = lines["completed" + charts.sparkline(series["completed"][-60:])]
    assert completed.rstrip().endswith("4.5/s")
    assert lines["failed" + "▁" * 59 + "█"].rstrip().endswith("0.7/s")
    assert re.search(r"latency p50 +▁{10} +5.0 ms", text), text
    assert re.search(r"latency p95 +█{10} +2.5 s", text), text
    assert "Last 60 s" in text
    assert "Last 60 s" not in render(stats(worker()), NOW)  # plain `status`: no series asked


def test_sparklines_scale_to_the_largest_value_and_leave_gaps_for_none():
    assert charts.sparkline([0, 1, 2, 4, None, 8]) == "▁▂▃▅ █"
    assert charts.sparkline([0, 0]) == "▁▁"
    assert charts.sparkline([1, 20], top=10) == "▂█"


def test_chart_scales_round_up_to_readable_numbers():
    assert [charts.nice_ceiling(v) for v in (0, 0.3, 3, 17, 230, 999)] == [1, 1, 5, 20, 250, 1000]


def test_an_svg_path_breaks_where_a_value_is_missing_and_is_empty_without_values():
    scale = charts.linear(10)
    assert charts.path([0, 10, None, 5], scale, 300, 100) == "M0.0,100.0 L100.0,0.0 M300.0,50.0"
    assert charts.path([None, None], scale, 300, 100) == ""
    assert charts.path([], scale, 300, 100) == ""


def test_latency_is_drawn_on_a_log_scale_clamped_to_its_range():
    scale = charts.logarithmic(1.0, 1000.0)
    assert [round(scale(v), 3) for v in (0.1, 1, 10, 1000, 5000)] == [0, 0, 0.333, 1, 1]
    assert charts.linear(10)(20) == 1 and charts.linear(10)(-1) == 0


def test_the_status_line_says_when_a_standby_still_loads_its_copy():
    cluster = {
        "term": 3,
        "leader": {"name": "a", "endpoint": "tcp://a:5555"},
        "standbys": [
            {"name": "b", "endpoint": "tcp://b:5555", "seen_ago": 0.1, "ready": True},
            {"name": "c", "endpoint": "tcp://c:5555", "seen_ago": 0.2, "ready": False},
        ],
    }
    assert cluster_line(cluster).plain == (
        "Leader a (tcp://a:5555), term 3; standbys: b (tcp://b:5555), "
        "c (tcp://c:5555, loading its copy)"
    )
