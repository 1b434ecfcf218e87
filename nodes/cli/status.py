"""`corral status`: queues and workers as tables (rich) or JSON, once or live (`--watch`)."""

from __future__ import annotations

import io
import json
import sys
import threading
from datetime import datetime
from typing import Any, TextIO

from rich.console import Group
from rich.live import Live
from rich.text import Text

from actors.clock import SystemClock
from nodes.cli import views
from nodes.client import Client
from nodes.observe.formatting import QUEUE_STATES, format_ago, format_labels

__all__ = ["QUEUE_STATES", "format_ago", "format_labels", "render", "watch_status"]


def render(stats: dict[str, Any], now: float) -> str:
    """The tables of `corral status` as plain text (what a pipe receives)."""
    buffer = io.StringIO()
    views.show(buffer, views.status_view(stats, now))
    return buffer.getvalue().rstrip("\n")


def watch_status(
    client: Client, *, as_json: bool, interval: float | None, out: TextIO | None = None
) -> int:
    """Print the stats once, or every `interval` seconds until Ctrl-C.

    On a terminal `--watch` redraws in place; piped, each refresh is printed after a blank line.
    """
    out = out or sys.stdout
    clock = SystemClock()
    pause = threading.Event()
    if interval is not None and out.isatty() and not as_json:
        return _live(client, interval, out, clock, pause)
    try:
        while True:
            stats = client.stats()
            if as_json:
                out.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")
            else:
                views.show(out, views.status_view(stats, clock.now()))
            out.flush()
            if interval is None:
                return 0
            pause.wait(interval)
            out.write("\n")
    except KeyboardInterrupt:  # the way out of --watch
        return 0


def _live(
    client: Client, interval: float, out: TextIO, clock: SystemClock, pause: threading.Event
) -> int:
    console = views.console(out)
    try:
        with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
            while True:
                stats = client.stats()
                now = clock.now()
                footer = Text(
                    f"updated {datetime.fromtimestamp(now):%H:%M:%S}, every {interval:g} s; "
                    "Ctrl-C to stop",
                    style="dim",
                )
                live.update(Group(views.status_view(stats, now), footer), refresh=True)
                pause.wait(interval)
    except KeyboardInterrupt:
        return 0
