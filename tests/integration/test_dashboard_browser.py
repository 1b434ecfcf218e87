"""The dashboard as a person sees it: a real headless Chromium loads the page served by a
real coordinator that has run jobs, one of them into the dead set, and runs one that reports
its progress.

Needs Debian's `chromium` (`apt-get install chromium`); skipped with that reason without it.
`CORRAL_DASHBOARD_SCREENSHOT=FILE` also saves a screenshot. (The README's docs/dashboard.png
was taken the same way, at 1400x1000, after a minute of varying load, so its charts have a
shape: this test runs a handful of jobs.)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Callable, Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote
from urllib.request import urlopen

import pytest

from actors.worker import current_job
from nodes import Client, Coordinator, WorkerNode, chain, group, step
from nodes.observe.dashboard import Dashboard
from tests.conftest import wait_for

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="the browser test needs Debian's chromium: apt-get install -y chromium",
)
BROWSER_TIMEOUT_S = 25.0
WINDOW = "1400,1000"
HOLD_S = 20.0  # a handler holding its job active (released by the test, or at teardown)


def disk_full(path: str) -> None:
    raise OSError(f"disk full while writing {path}")


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Lets held handlers go; set at teardown too, before the workers stop."""
    event = threading.Event()
    yield event
    event.set()


def chromium(profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    return subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={profile}",
            f"--window-size={WINDOW}",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=BROWSER_TIMEOUT_S,
        check=False,
    )


class Page(HTMLParser):
    """What a person reads: per section, the rows of each table as lists of cell texts."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.section = ""
        self.rows: dict[str, list[list[str]]] = {}
        self.buttons: list[str] = []
        self.body: dict[str, str] = {}
        self._cell: list[str] | None = None
        self._row: list[str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "body":
            self.body = {k: v or "" for k, v in attrs}
        elif tag == "section":
            self.section = attributes.get("id") or ""
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "button":
            self.buttons.append(attributes.get("data-job-id") or "")

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._cell is not None and self._row is not None:
            self._row.append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.setdefault(self.section, []).append(self._row)
            self._row = None

    def table(self, section: str) -> list[dict[str, str]]:
        """The rows of a section's table, as header -> cell."""
        header, *rows = self.rows.get(section, [[]])
        return [dict(zip(header, row, strict=True)) for row in rows]


def test_a_person_sees_queues_workers_progress_and_the_failure_with_its_error(
    coordinator: Callable[..., Coordinator],
    workers: Callable[..., WorkerNode],
    tmp_path: Path,
    release: threading.Event,
) -> None:
    def render(pages: int) -> int:
        job = current_job()
        assert job is not None
        job.progress(0.6, f"<b>page 3</b> of {pages}")  # the handler's text, shown as text
        release.wait(HOLD_S)
        return pages

    dashboard = Dashboard("127.0.0.1:0", admin_token="let-me-retry", refresh_s=1.0)
    node = coordinator(addons=[dashboard], heartbeat_interval=0.1)  # beats carry the progress
    handlers = {"square": lambda x: x * x, "resize": disk_full}
    main = workers(node.address, queues=["default"], handlers=handlers, concurrency=4)
    images = workers(
        node.address,
        queues=["images"],
        handlers={"thumbnail": len, "render": render},
        concurrency=2,
        name="imager",
    )
    with Client(node.address) as client:
        for x in range(5):
            assert client.enqueue("square", [x]).result(timeout=10) == x * x
        for name in ("a.png", "b.png"):
            assert client.enqueue("thumbnail", [name], queue="images").result(timeout=10) == 5
        failed = client.enqueue("resize", ["cat.png"], max_attempts=1)
        rendering = client.enqueue("render", [5], queue="images")
        wait_for(lambda: client.get(failed, wait=1).state == "discarded", 10, what="discarded")
        wait_for(lambda: client.get(rendering).raw.get("progress"), 10, what="progress")
    with urlopen(dashboard.url + "api/overview", timeout=5) as response:
        served = json.loads(response.read())
    [imager] = [w for w in served["workers"] if w["worker_id"] == images.worker_id]
    assert imager["progress"][rendering.id]["fraction"] == 0.6

    shot = Path(os.environ.get("CORRAL_DASHBOARD_SCREENSHOT") or tmp_path / "dashboard.png")
    taken = chromium(tmp_path / "profile-1", f"--screenshot={shot.resolve()}", dashboard.url)
    # Virtual time lets the page's own refresh run (every second here) before the DOM is read.
    loaded = chromium(
        tmp_path / "profile-2", "--virtual-time-budget=2500", "--dump-dom", dashboard.url
    )
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    page = Page(loaded.stdout)

    queues = {row["Queue"]: row for row in page.table("queues")}
    assert set(queues) == {"default", "images"}
    assert (queues["default"]["Completed"], queues["default"]["Discarded"]) == ("5", "1")
    assert (queues["images"]["Completed"], queues["images"]["Available"]) == ("2", "0")

    shown_workers = {row["Worker"]: row for row in page.table("workers")}
    assert main.worker_id in shown_workers
    assert len(shown_workers) == 2
    row = shown_workers[main.worker_id]
    assert (row["State"], row["Queues"], row["Active"]) == ("running", "default", "0/4")

    [running] = page.table("progress")
    assert (running["Job"], running["Worker"], running["Progress"]) == (
        rendering.id,
        "imager",
        "60%",
    )
    assert running["Message"] == "<b>page 3</b> of 5"  # escaped: the browser shows the tags
    assert running["Updated"].endswith("s ago")

    [failure] = page.table("failures")
    assert (failure["Job"], failure["Type"], failure["State"]) == (failed, "resize", "discarded")
    assert failure["Last error"] == "OSError: disk full while writing cat.png"

    [dead] = page.table("dead")
    assert (dead["Job"], dead["Errors"]) == (failed, "1")
    assert page.buttons == [failed]  # the admin's retry button, for the dead job only
    assert int(page.body.get("data-refreshes", "0")) >= 1  # the page refreshed itself

    assert taken.returncode == 0, taken.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    release.set()
    with Client(node.address) as client:
        assert client.get(rendering.id, wait=10).result == 5


def test_a_person_sees_a_workflow_s_steps_as_a_tree_with_their_states(
    coordinator: Callable[..., Coordinator],
    workers: Callable[..., WorkerNode],
    tmp_path: Path,
) -> None:
    dashboard = Dashboard("127.0.0.1:0")
    node = coordinator(addons=[dashboard])
    handlers = {"square": lambda x: x * x, "resize": disk_full, "add": sum}
    workers(node.address, handlers=handlers, concurrency=2)
    tree = chain(
        step("square", [3]),
        group(step("square"), step("resize", max_attempts=1), callback=step("add")),
    )
    with Client(node.address) as client:
        made = client.enqueue_workflow(tree, request_id="thumbnails <1>")
        wait_for(lambda: client.workflow("thumbnails <1>")["state"] == "failed", 10, what="failed")

    url = dashboard.url + "workflows/" + quote("thumbnails <1>", safe="")
    loaded = chromium(tmp_path / "profile", "--dump-dom", url)
    assert loaded.returncode == 0, loaded.stderr[-2000:]

    shown = [
        (row["Step"], row["Job"], row["State"], row["Attempt"])
        for row in Page(loaded.stdout).table("steps")
    ]
    first, left, right, callback = (job_id[-12:] for job_id in made["job_ids"])
    assert shown == [
        ("square", first, "completed", "1"),
        ("├─ square", left, "completed", "1"),
        ("└─ resize", right, "discarded", "1"),
        ("└─ add after 2 steps", callback, "cancelled", "0"),  # never ran: its parent failed
    ]
    assert '<span class="badge failed">failed</span>' in loaded.stdout
    assert "thumbnails &lt;1&gt;" in loaded.stdout


class Charts(HTMLParser):
    """The chart paths a browser drew: chart id -> line class -> the path's `d`."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.chart = ""
        self.paths: dict[str, dict[str, str]] = {}
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        classes = (attributes.get("class") or "").split()
        if tag == "div" and "chart-card" in classes:
            self.chart = (attributes.get("id") or "").removesuffix("-chart")
        elif tag == "path" and "line" in classes:
            line = next(c for c in classes if c != "line")
            self.paths.setdefault(self.chart, {})[line] = attributes.get("d") or ""


def test_the_throughput_and_latency_charts_render_and_move_as_jobs_run(
    coordinator: Callable[..., Coordinator],
    workers: Callable[..., WorkerNode],
    tmp_path: Path,
) -> None:
    dashboard = Dashboard("127.0.0.1:0", refresh_s=1.0)
    node = coordinator(addons=[dashboard])
    workers(node.address, queues=["default"], handlers={"square": lambda x: x * x})

    def drawn(profile: str) -> dict[str, dict[str, str]]:
        loaded = chromium(
            tmp_path / profile, "--virtual-time-budget=1500", "--dump-dom", dashboard.url
        )
        assert loaded.returncode == 0, loaded.stderr[-2000:]
        return Charts(loaded.stdout).paths

    def charted() -> int:  # completions in whole seconds, which is what the charts draw
        assert dashboard.client is not None
        return sum(dashboard.client.stats(series=True)["series"]["completed"])

    before = drawn("profile-before")
    assert set(before) == {"throughput", "latency"}
    assert before["throughput"]["completed"].startswith("M")  # a flat line at zero
    assert before["latency"]["p50"] == ""  # no job has completed yet: nothing to draw
    with Client(node.address) as client:
        for x in range(20):
            assert client.enqueue("square", [x]).result(timeout=10) == x * x
    wait_for(lambda: charted() == 20, 10, what="the second of the jobs to close")
    after = drawn("profile-after")
    assert after["throughput"]["completed"] != before["throughput"]["completed"]
    assert after["throughput"]["failed"] == before["throughput"]["failed"]  # none failed
    assert after["latency"]["p50"].startswith("M") and after["latency"]["p95"].startswith("M")
