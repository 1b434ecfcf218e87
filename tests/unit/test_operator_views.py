"""The pieces behind the operators' view, one at a time: the job listing, the `jobs` request,
frame counting, JSON logs, the terminal tables, the dashboard page and the progress line."""

from __future__ import annotations

import io
import json
import logging
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from actors.jobs import Job
from actors.store.memory import MemoryStore
from nodes.cli import views
from nodes.cli.status import render
from nodes.config import load_config
from nodes.config.fields import ConfigError
from nodes.factory import build_node
from nodes.observe import overview as dashboard_overview
from nodes.observe import page as dashboard_page
from nodes.observe.logs import EventLog, JsonFormatter
from nodes.observe.progress import progress_line, text_bar
from nodes.observe.traffic import LOCAL_PEER_PREFIX, Traffic
from transport.errors import BadRequest
from transport.jobspec import JobSpec
from transport.validation import parse_request
from transport.validation.admin import MAX_JOBS_LIMIT

NOW = 1_000_000.0


def _job(
    job_id: str,
    *,
    queue: str = "default",
    job_type: str = "t",
    state: str = "available",
    created: float = NOW,
) -> Job:
    job = Job.from_spec(JobSpec(type=job_type, queue=queue), job_id, now=created, seq=1)
    job.state = state
    return job


# -- the store listing ------------------------------------------------------------------------


def test_a_listing_returns_the_newest_matching_jobs_first_up_to_the_limit() -> None:
    store = MemoryStore()
    store.add([_job(f"j{i}", created=NOW + i) for i in range(5)])
    store.add([_job("img", queue="images", job_type="resize", state="discarded", created=NOW + 9)])

    assert [w["id"] for w in store.list(limit=3)] == ["img", "j4", "j3"]
    assert [w["id"] for w in store.list(queue="images")] == ["img"]
    assert [w["id"] for w in store.list(state="discarded")] == ["img"]
    assert [w["id"] for w in store.list(type="resize", queue="default")] == []


def test_a_listing_sees_each_job_in_its_latest_state() -> None:
    store = MemoryStore()
    job = _job("a")
    store.add([job])
    job.state = "discarded"
    store.save(job)

    assert [w["id"] for w in store.list(state="discarded")] == ["a"]
    assert store.list(state="available") == []


# -- the `jobs` request -----------------------------------------------------------------------


def test_the_jobs_request_fills_its_defaults_and_reads_job_type_not_type() -> None:
    request = parse_request("jobs", 7, {"type": "jobs", "rid": 7, "job_type": "resize"}, 40)

    assert (request.queue, request.state, request.job_type, request.limit) == (  # type: ignore[union-attr]
        None,
        None,
        "resize",
        50,
    )


@pytest.mark.parametrize(
    "fields",
    [{"state": "lost"}, {"limit": 0}, {"limit": MAX_JOBS_LIMIT + 1}, {"queue": 5}, {"limit": "9"}],
)
def test_a_jobs_request_with_a_bad_filter_is_a_bad_request(fields: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        parse_request("jobs", 1, {"type": "jobs", "rid": 1, **fields}, 40)


# -- traffic ----------------------------------------------------------------------------------


class FakeTransport:
    def __init__(self) -> None:
        self.sent: list[tuple[bytes, bytes]] = []
        self.on_frame: Any = None

    def start(self, on_frame: Any) -> None:
        self.on_frame = on_frame

    def send(self, peer: bytes, frame: bytes) -> None:
        self.sent.append((peer, frame))

    def close(self) -> None:
        pass

    def peer_user_id(self, peer: bytes) -> str:
        return "key-of-" + peer.decode()


def test_traffic_counts_frames_both_ways_and_keeps_local_replies_off_the_socket() -> None:
    traffic, inner = Traffic(), FakeTransport()
    wrapped = traffic.wrap(inner)
    seen: list[bytes] = []
    wrapped.start(lambda peer, frame: seen.append(frame))
    local_frames: list[bytes] = []
    local = traffic.add_local_peer(local_frames.append)

    inner.on_frame(b"p1", b"hello")
    wrapped.send(b"p1", b"reply!")
    wrapped.send(local, b"local reply")

    assert seen == [b"hello"]
    assert inner.sent == [(b"p1", b"reply!")]
    assert local_frames == [b"local reply"]
    assert local.startswith(LOCAL_PEER_PREFIX)
    assert traffic.snapshot() == {"frames_in": 1, "bytes_in": 5, "frames_out": 1, "bytes_out": 6}
    assert wrapped.peer_user_id(b"p1") == "key-of-p1"  # type: ignore[attr-defined]


# -- logs -------------------------------------------------------------------------------------


def test_json_log_lines_carry_the_message_and_the_structured_fields() -> None:
    records: list[logging.LogRecord] = []
    logger = logging.getLogger("test.corral.events")
    logger.addHandler(_Collect(records))
    logger.setLevel(logging.INFO)
    log = EventLog(logger)

    log("worker_lost", {"worker_id": "w-1", "reason": "timeout"})

    line = json.loads(JsonFormatter({"node": "coordinator"}).format(records[0]))
    assert line["message"] == "worker w-1 died (silent past heartbeat_timeout): timeout"
    assert (line["level"], line["event"], line["worker_id"]) == ("WARNING", "worker_lost", "w-1")
    assert line["node"] == "coordinator"


class _Collect(logging.Handler):
    def __init__(self, records: list[logging.LogRecord]) -> None:
        super().__init__()
        self.records = records

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


# -- terminal views ---------------------------------------------------------------------------

STATS = {
    "queues": {"default": {"available": 2, "completed": 5}, "images": {"available": 1}},
    "workers": [
        {
            "worker_id": "w-1",
            "hostname": "box",
            "pid": 42,
            "state": "running",
            "queues": ["default"],
            "labels": {"region": ["eu"]},
            "active": 1,
            "concurrency": 4,
            "last_seen": NOW - 1.5,
        }
    ],
    "unroutable": {"images": 1},
}


def test_status_shows_counts_per_state_workers_and_the_jobs_no_worker_may_take() -> None:
    text = render(STATS, NOW)

    assert re.search(r"default +0 +2 +0 +0 +5 +0 +0 +0", text), text
    assert re.search(r"images +0 +1 +0 +0 +0 +0 +0 +1", text), text
    assert "w-1" in text and "box" in text and "region=eu" in text and "1/4" in text
    assert "1.5s ago" in text
    assert "Jobs waiting with no eligible worker: 1 in images" in text
    assert not any(line != line.rstrip() for line in text.splitlines())


def test_status_shows_the_jobs_a_limit_holds_back_per_queue_and_says_why_they_wait() -> None:
    text = render({**STATS, "limited": {"default": 2}}, NOW)

    header = next(line for line in text.splitlines() if "QUEUE" in line)
    assert header.split()[-2:] == ["WORKER", "LIMITED"]  # ... NO WORKER, LIMITED
    assert re.search(r"^ *default +0 +2 +0 +0 +5 +0 +0 +0 +2$", text, re.M), text
    assert re.search(r"^ *images +0 +1 +0 +0 +0 +0 +0 +1 +0$", text, re.M), text
    notes = text.splitlines()[-2:]
    assert notes[0].startswith("Jobs waiting with no eligible worker: 1 in images")
    assert notes[1] == (
        "Jobs waiting for a limit to free up: 2 in default "
        "(their key's concurrency or rate limit is full)"
    )


def test_status_of_an_older_coordinator_without_limited_shows_none_held_back() -> None:
    text = render(STATS, NOW)  # no `limited` key in the stats

    assert re.search(r"^ *default( +\d+){7} +0 +0$", text, re.M), text
    assert "for a limit" not in text


def test_get_shows_every_error_of_the_job_in_order() -> None:
    wire = _job("j1", state="discarded").to_wire()
    wire["errors"] = [
        {"attempt": 1, "type": "OSError", "message": "disk full", "at": NOW - 9},
        {"attempt": 2, "type": "worker_lost", "message": "worker w-1 lost", "at": NOW - 2},
    ]
    out = io.StringIO()
    views.show(out, views.job_view(wire, NOW))
    text = out.getvalue()

    assert "Errors (2)" in text
    assert text.index("disk full") < text.index("worker w-1 lost")


# -- dashboard page ---------------------------------------------------------------------------


def test_the_dashboard_escapes_what_peers_wrote() -> None:
    view = {
        **STATS,
        "now": NOW,
        "admin": False,
        "error": None,
        "failures": [],
        "dead": [
            {
                "id": "j<1>",
                "type": "<script>alert(1)</script>",
                "queue": "q",
                "state": "discarded",
                "attempt": 1,
                "max_attempts": 1,
                "errors": 1,
                "error": {"type": "X", "message": "<img src=x onerror=alert(1)>", "at": NOW},
                "completed_at": NOW,
            }
        ],
    }

    html = dashboard_page.content(view)

    assert "<script>" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "retry" not in html.lower().split("dead set")[1].split("<p")[0]  # no buttons


def test_the_dashboard_names_each_worker_and_shows_a_directive_it_has_not_taken_up() -> None:
    by = NOW + 4
    worker = {**STATS["workers"][0], "name": "resizer", "directed": "quiet", "next_beat_by": by}
    view = {**STATS, "workers": [worker], "now": NOW, "admin": False, "error": None}
    view |= {"failures": [], "dead": []}

    html = dashboard_page.content(view)

    assert "<td>resizer</td>" in html
    assert f"quiet (pending, by {datetime.fromtimestamp(by):%H:%M:%S})" in html


def test_the_dashboard_shows_the_jobs_a_limit_holds_back_beside_those_with_no_worker() -> None:
    base = {"now": NOW, "admin": False, "error": None, "failures": [], "dead": []}

    html = dashboard_page.content({**STATS, **base, "limited": {"default": 2, "images": 3}})

    assert '<th class="num">No worker</th><th class="num">Limited</th>' in html
    assert '<td class="num">0</td><td class="num warn">2</td></tr>' in html  # default
    assert '<td class="num warn">1</td><td class="num warn">3</td></tr>' in html  # images
    assert "1 with no worker, 5 held by a limit" in html
    older = dashboard_page.content({**STATS, **base})  # a stats without `limited`
    assert "1 with no worker, 0 held by a limit" in older
    assert '<td class="num warn">1</td><td class="num">0</td></tr>' in older


def test_status_and_the_dashboard_mark_a_paused_queue() -> None:
    stats = {**STATS, "paused": ["images"]}
    text = render(stats, NOW)
    assert re.search(r"images \(paused\) +0 +1", text), text
    assert "default (paused)" not in text
    view = {**stats, "now": NOW, "admin": False, "error": None, "failures": [], "dead": []}
    html = dashboard_page.content(view)
    assert '<td class="name">images <span class="paused">paused</span></td>' in html
    assert '<td class="name">default</td>' in html


def test_jobs_and_the_dashboard_name_the_schedule_that_made_a_job() -> None:
    wire = _job("j1", state="discarded").to_wire()
    wire["meta"] = {"schedule": "nightly", "slot": NOW}
    out = io.StringIO()
    views.show(out, views.jobs_table([wire], NOW))
    assert "(schedule nightly)" in out.getvalue()
    dead = dashboard_overview.job_summary(wire)
    view = {**STATS, "now": NOW, "admin": False, "error": None, "failures": [], "dead": [dead]}
    assert '<span class="schedule">schedule nightly</span>' in dashboard_page.content(view)


# -- progress ---------------------------------------------------------------------------------


def test_the_progress_line_draws_a_bar_of_the_jobs_that_ended() -> None:
    assert text_bar(5, 20, width=10) == "[##--------]"
    assert progress_line(8, 2, 20, 2.0) == (
        "[##########----------]  40% completed 8/20, 2 failed, 4 jobs/s"
    )


# -- config -----------------------------------------------------------------------------------


def _coordinator_yaml(tmp_path: Path, extra: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text("nodes:\n  coordinator:\n    kind: coordinator\n" + extra)
    return path


def test_metrics_and_dashboard_keys_make_the_coordinator_add_ons(tmp_path: Path) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    path = _coordinator_yaml(
        tmp_path,
        "    log_format: json\n"
        "    metrics: {bind: '127.0.0.1:9999'}\n"
        "    dashboard: {bind: '127.0.0.1:0', admin_token_file: token}\n",
    )
    config = load_config(path).node("coordinator")
    node = build_node(config)

    assert config.log_format == "json"
    kinds = [type(addon).__name__ for addon in node.addons]
    assert kinds == ["EventLog", "MetricsExporter", "Dashboard"]
    assert node.addons[1].port == 9999
    assert node.addons[2].admin_token == "s3cret"


@pytest.mark.parametrize(
    ("extra", "named"),
    [
        ("    metrics: {bind: 'localhost'}\n", "'metrics.bind'"),
        ("    metrics: {port: 9}\n", "'metrics.port'"),
        ("    dashboard: {admin_token_file: nowhere}\n", "'dashboard.admin_token_file'"),
        ("    log_format: yaml\n", "'log_format'"),
    ],
)
def test_a_bad_observability_key_is_refused_with_the_key_named(
    tmp_path: Path, extra: str, named: str
) -> None:
    with pytest.raises(ConfigError, match=named):
        build_node(load_config(_coordinator_yaml(tmp_path, extra)).node("coordinator"))
