"""`corral status`: queues and workers as tables (rich) or JSON, once or live (`--watch`).

Under `--watch` the tables come with sparklines of the last minute (the `stats {series: true}`
extension), and a coordinator that does not answer is shown as unreachable, since when, while
the watch keeps asking: it picks up again when the coordinator is back.
"""

from __future__ import annotations

import io
import json
import sys
import threading
from datetime import datetime
from typing import Any, TextIO

from rich.console import Group, RenderableType
from rich.live import Live
from rich.text import Text

from actors.clock import SystemClock
from nodes.cli import views
from nodes.client import Client
from nodes.observe.formatting import QUEUE_STATES, format_ago, format_labels
from transport.errors import ConnectionLost

__all__ = ["QUEUE_STATES", "format_ago", "format_labels", "render", "watch_status"]


def render(stats: dict[str, Any], now: float) -> str:
    """The tables of `corral status` as plain text (what a pipe receives)."""
    buffer = io.StringIO()
    views.show(buffer, views.status_view(stats, now))
    return buffer.getvalue().rstrip("\n")


def _clock_time(at: float) -> str:
    return f"{datetime.fromtimestamp(at):%H:%M:%S}"


class Watch:
    """The refreshes of `--watch`: the latest stats, or since when the coordinator at
    `address` has not answered."""

    def __init__(self, client: Client, address: str, *, series: bool, clock: SystemClock) -> None:
        self.client = client
        self.address = address
        self.series = series
        self.clock = clock
        self.stats: dict[str, Any] | None = None
        self.down_since: float | None = None

    def refresh(self) -> dict[str, Any] | None:
        """Ask once: the stats, or None when the coordinator did not answer in time (then
        `stats` stays the last that came)."""
        try:
            self.stats = self.client.stats(series=self.series)
        except ConnectionLost:
            if self.down_since is None:
                self.down_since = self.clock.now()
            return None
        self.down_since = None
        return self.stats

    def unreachable(self, now: float) -> str:
        assert self.down_since is not None
        return (
            f"coordinator {self.address} unreachable since {_clock_time(self.down_since)} "
            f"({format_ago(now - self.down_since)}), retrying"
        )


def watch_status(
    client: Client,
    *,
    as_json: bool,
    interval: float | None,
    out: TextIO | None = None,
    address: str = "the coordinator",
) -> int:
    """Print the stats once, or every `interval` seconds until Ctrl-C.

    On a terminal `--watch` redraws in place; piped, each refresh is printed after a blank line
    (as JSON with `--json`, where "unreachable" goes to stderr so stdout stays JSON).
    """
    out = out or sys.stdout
    clock = SystemClock()
    if interval is None:
        stats = client.stats()
        if as_json:
            out.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")
        else:
            views.show(out, views.status_view(stats, clock.now()))
        out.flush()
        return 0
    watch = Watch(client, address, series=not as_json, clock=clock)
    pause = threading.Event()
    try:
        if out.isatty() and not as_json:
            _live(watch, interval, out, pause)
        else:
            _frames(watch, interval, out, as_json, pause)
    except KeyboardInterrupt:  # the way out of --watch
        pass
    return 0


def _frames(
    watch: Watch, interval: float, out: TextIO, as_json: bool, pause: threading.Event
) -> None:
    first = True
    while True:
        stats = watch.refresh()
        now = watch.clock.now()
        if not first:
            out.write("\n")
        first = False
        if stats is None and as_json:
            print(watch.unreachable(now), file=sys.stderr, flush=True)
        elif stats is None:
            out.write(watch.unreachable(now) + "\n")
        elif as_json:
            out.write(json.dumps(stats, indent=2, sort_keys=True) + "\n")
        else:
            views.show(out, views.status_view(stats, now))
        out.flush()
        pause.wait(interval)


def _live(watch: Watch, interval: float, out: TextIO, pause: threading.Event) -> None:
    console = views.console(out)
    with Live(console=console, auto_refresh=False, vertical_overflow="visible") as live:
        while True:
            reached = watch.refresh() is not None
            now = watch.clock.now()
            parts: list[RenderableType] = []
            if not reached:
                parts.append(Text(watch.unreachable(now), style="bold red"))
            if watch.stats is not None:
                parts.append(views.status_view(watch.stats, now))
            when = "updated" if reached else "tried"
            footer = f"{when} {_clock_time(now)}, every {interval:g} s; Ctrl-C to stop"
            parts.append(Text(footer, style="dim"))
            live.update(Group(*parts), refresh=True)
            pause.wait(interval)
