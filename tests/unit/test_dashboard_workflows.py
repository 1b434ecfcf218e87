"""The dashboard's workflow page as pure functions of a `workflow_get` reply (made here by the
coordinator's own compiler and view, so its shape is the real one), and the link to it from
the job lists. Over HTTP and in a browser: tests/integration/test_observability.py and
tests/integration/test_dashboard_browser.py."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

from nodes import chain, group, step
from nodes.observe import overview, workflow_page
from nodes.observe import page as dashboard_page
from tests.unit.workflow_replies import workflow_reply

NOW = 1_000_000.0
WORKFLOW_ID = "wf-1"


def reply(
    tree: dict[str, Any],
    limit: int = 1000,
    states: dict[int, str] | None = None,
    workflow_id: str = WORKFLOW_ID,
) -> dict[str, Any]:
    """What `workflow_get` answers for `tree`, every step completed unless `states` says."""
    return workflow_reply(tree, limit, states, workflow_id)


class Steps(HTMLParser):
    """The cells of the steps table's rows, as text (the tree prefix unstripped)."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "tr" and ("class", "step") in attrs:
            self.rows.append([])
        elif tag == "td" and self.rows:
            self._cell = []

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None:
            self.rows[-1].append("".join(self._cell))
            self._cell = None


def drawn(shown: dict[str, Any]) -> list[list[str]]:
    return Steps(workflow_page.content(shown)).rows


def test_a_chain_reads_down_one_column_with_each_step_s_short_id_state_and_attempt() -> None:
    shown = reply(chain(step("fetch"), step("resize"), step("publish")), states={2: "active"})

    rows = drawn(shown)

    assert rows == [
        ["fetch", "000000000000", "completed", "1"],
        ["resize", "000000000001", "completed", "1"],
        ["publish", "000000000002", "active", "1"],
    ]
    html = workflow_page.content(shown)
    assert '<span class="badge running">running</span>' in html  # the workflow's state
    assert 'href="/api/jobs/01a25118-3e3f-7a75-99f6-000000000002"' in html
    assert "not shown" not in html


def test_a_group_s_callback_hangs_under_its_last_parent_saying_how_many_it_waits_for() -> None:
    shown = reply(
        group(step("resize", [64]), step("resize", [512]), callback=step("publish")),
        states={0: "discarded", 2: "cancelled"},
    )

    steps = [row[0] for row in drawn(shown)]

    assert steps == ["├─ resize", "└─ resize", "   └─ publish after 2 steps"]
    html = workflow_page.content(shown)
    assert '<span class="badge failed">failed</span>' in html
    counts = ['Steps</div><div class="value">3', "Completed", "Discarded", "Cancelled"]
    positions = [html.index(label) for label in counts]
    assert positions == sorted(positions)  # the total, then the states in their usual order


def test_at_most_the_steps_asked_for_are_drawn_and_a_line_says_how_many_more_there_are() -> None:
    shown = reply(chain(*(step("t") for _ in range(5))), limit=2)

    html = workflow_page.content(shown)

    assert len(Steps(html).rows) == 2
    assert "... and 3 more not shown (the first 2 of 5 steps are drawn)." in html


def test_the_page_escapes_the_step_types_and_workflow_id_that_peers_wrote() -> None:
    hostile = "<script>alert(1)</script>"
    shown = reply(group(step(hostile), callback=step("b")), workflow_id='"><img src=x>')

    html = workflow_page.page(shown, title="corral", coordinator_address="tcp://127.0.0.1:5555")

    assert "<script>alert" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&quot;&gt;&lt;img src=x&gt;" in html
    assert html.count("<script") == 0  # a still page: no script at all
    assert '<link rel="stylesheet" href="/dashboard.css">' in html


def test_a_workflow_step_in_the_job_lists_links_to_its_workflow_s_page() -> None:
    job = {
        "id": "j1",
        "type": "resize",
        "queue": "default",
        "state": "discarded",
        "attempt": 1,
        "max_attempts": 1,
        "errors": [{"type": "OSError", "message": "disk full", "at": NOW}],
        "completed_at": NOW,
        "workflow_id": "wf/<1>",
    }
    view = {"queues": {}, "workers": [], "now": NOW, "admin": False, "error": None}
    view |= {"failures": [], "dead": [overview.job_summary(job)]}

    html = dashboard_page.content(view)

    link = '<a class="workflow" href="/workflows/wf%2F%3C1%3E">workflow wf/&lt;1&gt;</a>'
    assert f"<td>resize {link}</td>" in html
