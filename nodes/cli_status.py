"""`corral status`: queues and workers as plain aligned tables (or JSON), once or live."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Sequence
from typing import Any, TextIO

from actors.clock import SystemClock
from nodes.client import Client

QUEUE_STATES = (
    "scheduled",
    "available",
    "active",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
)
CLEAR_SCREEN = "\x1b[H\x1b[2J"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], numeric: set[int]) -> str:
    """Columns padded to their widest cell; `numeric` columns right-aligned."""
    cells = [list(headers)] + [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for row in cells:
        padded = [
            cell.rjust(width) if i in numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(padded).rstrip())
    return "\n".join(lines)


def format_labels(labels: dict[str, list[str]]) -> str:
    return "; ".join(f"{k}={','.join(v)}" for k, v in sorted(labels.items())) or "-"


def format_ago(seconds: float) -> str:
    if seconds < 60:
        return f"{max(seconds, 0.0):.1f}s ago"
    if seconds < 3600:
        return f"{seconds / 60:.0f}m ago"
    return f"{seconds / 3600:.1f}h ago"


def render(stats: dict[str, Any], now: float) -> str:
    """The two tables of `corral status`."""
    queues = stats["queues"]
    if queues:
        rows = [
            [name, *(counts.get(s, 0) for s in QUEUE_STATES)]
            for name, counts in sorted(queues.items())
        ]
        queue_text = table(["QUEUE", *(s.upper() for s in QUEUE_STATES)], rows, set(range(1, 8)))
    else:
        queue_text = "no queues yet"
    workers = sorted(stats["workers"], key=lambda w: (w["state"] == "terminated", w["worker_id"]))
    if workers:
        rows = [
            [
                w["worker_id"],
                w["hostname"],
                w["pid"],
                w["state"],
                format_labels(w.get("labels", {})),
                f"{w['active']}/{w['concurrency']}",
                format_ago(now - w["last_seen"]),
            ]
            for w in workers
        ]
        headers = ["WORKER", "HOST", "PID", "STATE", "LABELS", "ACTIVE", "LAST SEEN"]
        worker_text = table(headers, rows, {2, 5})
    else:
        worker_text = "no workers"
    return f"{queue_text}\n\n{worker_text}"


def watch_status(
    client: Client, *, as_json: bool, interval: float | None, out: TextIO | None = None
) -> int:
    """Print the stats once, or every `interval` seconds until Ctrl-C."""
    out = out or sys.stdout
    clock = SystemClock()
    pause = threading.Event()
    try:
        while True:
            stats = client.stats()
            if as_json:
                text = json.dumps(stats, indent=2, sort_keys=True)
            else:
                text = render(stats, clock.now())
            if interval is not None and out.isatty():
                out.write(CLEAR_SCREEN)
            out.write(text + "\n")
            out.flush()
            if interval is None:
                return 0
            pause.wait(interval)
            if not out.isatty():
                out.write("\n")
    except KeyboardInterrupt:  # the way out of --watch
        return 0
