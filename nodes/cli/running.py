"""What the terminal shows of running jobs' progress (extension "Progress"): the `progress`
row of `corral get` and the "In progress" table of `corral status`, pure functions of the
`get` and `stats` replies.

    [######----]  60%  resizing page 3 of 5  (updated 2.0s ago)

A message is a handler's text: it is shown as plain text (never rich markup), on one line,
and clipped in the table (`corral get JOB` shows all of it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text

from nodes.observe.formatting import format_ago
from nodes.observe.overview import PROGRESS_SHOWN, clip, percent, progress_rows, reported
from nodes.observe.progress import text_bar

BAR_CELLS = 10
TABLE_MESSAGE_CHARS = 80  # a status row stays readable on a terminal; `get` has the rest
TABLE_TITLE = "In progress"


def bar(fraction: float) -> str:
    """`[#####-----]  50%`: filled by whole tenths, rounded down like the percent."""
    done = percent(fraction)
    return f"{text_bar(done, 100, BAR_CELLS)} {done:3d}%"


def _updated(at: float | None, now: float) -> str:
    return "-" if at is None else format_ago(now - at)


def progress_line(progress: Any, now: float) -> Text:
    """`corral get`'s `progress` row: bar, percent, message and how long ago it came."""
    report = reported(progress)
    if report is None:
        return Text("-")
    line = Text(bar(report["fraction"]), style="cyan")
    if report["message"]:
        line.append("  " + report["message"])
    if report["updated_at"] is not None:
        line.append(f"  (updated {_updated(report['updated_at'], now)})", style="dim")
    return line


def job_progress(job: dict[str, Any], now: float) -> list[tuple[str, Text]]:
    """`corral get`'s `progress` row, for an active job whose attempt has reported."""
    if job.get("state") != "active" or not job.get("progress"):
        return []
    return [("progress", progress_line(job["progress"], now))]


def in_progress(
    workers: list[dict[str, Any]], now: float, titled_table: Callable[[str], Table]
) -> list[RenderableType]:
    """`corral status`'s "In progress" table (from `titled_table`, the views' style): a row
    per job a live worker reports progress of, by worker then job id, at most PROGRESS_SHOWN
    and a line saying how many more; nothing at all when no job reports progress."""
    rows = progress_rows(workers)
    if not rows:
        return []
    table = titled_table(TABLE_TITLE)
    table.add_column("JOB", no_wrap=True)
    table.add_column("WORKER", no_wrap=True)
    table.add_column("PROGRESS", no_wrap=True)
    table.add_column("MESSAGE", overflow="fold")
    table.add_column("UPDATED", no_wrap=True)
    for row in rows[:PROGRESS_SHOWN]:
        table.add_row(
            Text(row["job_id"]),
            Text(row["worker"]),
            Text(bar(row["fraction"]), style="cyan"),
            Text(clip(row["message"], TABLE_MESSAGE_CHARS)),
            _updated(row["updated_at"], now),
        )
    more = len(rows) - PROGRESS_SHOWN
    tail = [Text(f"and {more} more", style="dim")] if more > 0 else []
    return [Text(""), table, *tail]  # a blank line: the workers' summary line ends above
