"""What `corral get`, `corral status` and the dashboard show of the progress running jobs
report (extension "Progress"), from synthetic `get` and `stats` replies: the bar and percent,
the order and limit of the rows, and a handler's message shown as text, never as markup."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from nodes.cli import views
from nodes.cli.running import bar, progress_line
from nodes.cli.status import render
from nodes.observe import page
from nodes.observe.overview import PROGRESS_SHOWN, percent, progress_rows

NOW = 1_000_000.0
HOSTILE = '<img src=x onerror="alert(1)"> [bold red]not markup[/] [/]\n\x1b[31mred'


def report(fraction: float, message: str = "", ago: float = 2.0) -> dict[str, Any]:
    return {"fraction": fraction, "message": message, "updated_at": NOW - ago, "attempt": 1}


def worker(worker_id: str = "w-1", **extra: Any) -> dict[str, Any]:
    return {
        "worker_id": worker_id,
        "hostname": "box",
        "pid": 42,
        "state": "running",
        "queues": ["default"],
        "labels": {},
        "active": 1,
        "concurrency": 4,
        "last_seen": NOW - 1.0,
        **extra,
    }


def stats(*workers: dict[str, Any]) -> dict[str, Any]:
    return {"queues": {"default": {"active": 1}}, "workers": list(workers), "unroutable": {}}


def overview(*workers: dict[str, Any]) -> dict[str, Any]:
    return {**stats(*workers), "now": NOW, "admin": False, "failures": [], "dead": []}


def active_job(**extra: Any) -> dict[str, Any]:
    return {
        "id": "job-1",
        "type": "resize",
        "state": "active",
        "queue": "default",
        "attempt": 1,
        "max_attempts": 3,
        "args": ["a.png"],
        "created_at": NOW - 10,
        "worker_id": "w-1",
        **extra,
    }


def shown(job: dict[str, Any]) -> str:
    out = io.StringIO()
    views.show(out, views.job_view(job, NOW))
    return out.getvalue()


class Section(HTMLParser):
    """The cell texts of one section's table rows, and its other text."""

    def __init__(self, html: str, section: str) -> None:
        super().__init__()
        self.wanted, self.inside = section, False
        self.rows: list[list[str]] = []
        self.text: list[str] = []
        self.tags: list[str] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "section":
            self.inside = dict(attrs).get("id") == self.wanted
        elif self.inside:
            self.tags.append(tag)
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self._cell = []

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.text.append(data)
            if self._cell is not None:
                self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.inside = False
        elif tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [
        (0.0, "[----------]   0%"),
        (0.5, "[#####-----]  50%"),
        (0.29, "[##--------]  29%"),  # 0.29 * 100 is 28.999...: still 29
        (0.999, "[#########-]  99%"),  # never 100% before it is done
        (1.0, "[##########] 100%"),
    ],
)
def test_the_bar_and_the_percent_round_down_to_what_is_done(fraction, expected):
    assert bar(fraction) == expected
    assert percent(fraction) == int(expected[-4:-1])


def test_get_of_an_active_job_shows_its_progress_with_the_message_and_how_old_it_is():
    text = shown(active_job(progress=report(0.6, "resizing page 3 of 5")))
    assert "progress  [######----]  60%  resizing page 3 of 5  (updated 2.0s ago)" in text
    lines = [line.split()[0] for line in text.splitlines() if line]
    assert lines.index("progress") == lines.index("attempt") + 1


def test_get_shows_no_progress_row_for_a_job_without_a_report_or_no_longer_active():
    assert "progress" not in shown(active_job())
    finished = active_job(state="completed", result=1, progress=report(1.0, "done"))
    assert "progress" not in shown(finished)


def test_a_hostile_message_is_shown_as_plain_text_on_one_line():
    line = progress_line(report(0.5, HOSTILE), NOW).plain
    assert '<img src=x onerror="alert(1)"> [bold red]not markup[/] [/]  [31mred' in line
    assert "\n" not in line and "\x1b" not in line


def test_status_lists_the_jobs_in_progress_by_worker_then_job_after_the_workers():
    text = render(
        stats(
            worker("w-2", progress={"job-z": report(0.25, "z"), "job-a": report(0.5, "a")}),
            worker("w-1", name="resizer", progress={"job-m": report(1.0, "m", ago=70)}),
            worker("w-3"),
            worker("w-4", state="terminated", progress={"job-gone": report(0.1)}),
        ),
        NOW,
    )
    head, _, table = text.partition("In progress\n")
    assert "2 live workers" not in table and "LAST BEAT" in head
    rows = [line.split() for line in table.splitlines()[3:]]
    assert rows == [
        ["job-m", "resizer", "[##########]", "100%", "m", "1m", "ago"],
        ["job-a", "w-2", "[#####-----]", "50%", "a", "2.0s", "ago"],
        ["job-z", "w-2", "[##--------]", "25%", "z", "2.0s", "ago"],
    ]
    assert table.splitlines()[1].split() == ["JOB", "WORKER", "PROGRESS", "MESSAGE", "UPDATED"]
    assert "job-gone" not in text  # a terminated worker runs nothing


def test_status_shows_at_most_the_first_rows_and_says_how_many_more():
    many = {f"job-{n:03d}": report(n / 100) for n in range(PROGRESS_SHOWN + 7)}
    text = render(stats(worker(progress=many)), NOW)
    assert re.findall(r"^ ?(job-\d+)", text, re.M) == [
        f"job-{n:03d}" for n in range(PROGRESS_SHOWN)
    ]
    assert text.splitlines()[-1] == "and 7 more"


def test_status_is_unchanged_when_no_job_reports_progress():
    plain = render(stats(worker(), worker("w-2")), NOW)
    assert render(stats(worker(progress={}), worker("w-2")), NOW) == plain
    assert "In progress" not in plain
    assert plain.splitlines()[-1] == "2 live workers, 2/8 slots busy"


def test_status_shows_a_hostile_message_as_text_and_clips_a_long_one():
    text = render(
        stats(worker(progress={"j": report(0.5, HOSTILE), "k": report(1, "x" * 200)})), NOW
    )
    assert '<img src=x onerror="alert(1)"> [bold red]not markup[/] [/]  [31mred' in text
    assert "\x1b" not in text
    assert "x" * 79 + "…" in text and "x" * 80 not in text


def test_malformed_reports_from_another_coordinator_do_not_break_the_views():
    odd = {
        "a": "not a map",
        "b": {"fraction": float("nan"), "message": None, "updated_at": "soon"},
        "c": {"fraction": 7, "message": 42},
        "d": {"fraction": True},
        "e": {"fraction": 10**400},
    }
    rows = progress_rows([worker(progress=odd), worker("w-2", progress=["not", "a", "map"])])
    assert [(r["job_id"], r["fraction"], r["message"]) for r in rows] == [
        ("b", 0.0, ""),
        ("c", 1.0, "42"),
        ("d", 0.0, ""),
        ("e", 0.0, ""),
    ]
    assert "[----------]   0%" in render(stats(worker(progress=odd)), NOW)
    assert Section(page.content(overview(worker(progress=odd))), "progress").rows[1][4] == "-"


def test_the_dashboard_lists_the_jobs_in_progress_with_a_progress_bar():
    html = page.content(
        overview(
            worker("w-2", progress={"job-b": report(0.5, "half")}),
            worker("w-1", name="alpha", progress={"job-a": report(1.0, "all", ago=3)}),
        )
    )
    section = Section(html, "progress")
    assert section.rows == [
        ["Job", "Worker", "Progress", "Message", "Updated"],
        ["job-a", "alpha", "100%", "all", "3.0s ago"],
        ["job-b", "w-2", "50%", "half", "2.0s ago"],
    ]
    assert '<progress max="1" value="0.500"></progress>' in html
    assert html.index('id="workers"') < html.index('id="progress"') < html.index('id="failures"')


def test_the_dashboard_escapes_a_hostile_message_and_says_how_many_more():
    many = {f"job-{n:03d}": report(0.5, HOSTILE) for n in range(PROGRESS_SHOWN + 3)}
    html = page.content(overview(worker(progress=many)))
    section = Section(html, "progress")
    assert section.tags.count("img") == 0 and "<img" not in html
    assert len(section.rows) == 1 + PROGRESS_SHOWN
    assert (
        section.rows[1][3] == '<img src=x onerror="alert(1)"> [bold red]not markup[/] [/]  [31mred'
    )
    assert "and 3 more" in "".join(section.text)


def test_the_dashboard_says_so_when_no_job_reports_progress():
    section = Section(page.content(overview(worker())), "progress")
    assert section.rows == []
    assert "".join(section.text).strip() == "In progressNo job reports progress."
