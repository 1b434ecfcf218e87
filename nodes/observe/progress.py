"""How the demo producer shows its progress: a live bar on a terminal, lines in a pipe.

`corral run FILE` pipes every node's output through the runner (which prefixes the node
name), so there the bar is drawn in text, one line per refresh:

    [#########-----------]  45% completed 720/1600, 0 failed, 12 failed attempts, 2,905 jobs/s

("failed": jobs that ended discarded or cancelled; "failed attempts": every attempt that failed
so far, retried or not, shown once there is one.)

On a terminal (`corral run FILE --node producer`, or a Producer embedded in a script) it is a
`rich.progress` bar redrawn in place.
"""

from __future__ import annotations

from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
)

BAR_WIDTH = 20


class ProgressDisplay(Protocol):
    def update(self, completed: int, failed: int, attempts: int, elapsed: float) -> None: ...

    def close(self, completed: int, failed: int, attempts: int, elapsed: float) -> None: ...


def text_bar(done: int, total: int, width: int = BAR_WIDTH) -> str:
    """`[#####---------------]`: `done` of `total` in `width` characters."""
    filled = width if total <= 0 else min(width, width * done // total)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


def progress_line(
    completed: int, failed: int, total: int, elapsed: float, failed_attempts: int = 0
) -> str:
    percent = 100 * completed // total if total else 100
    rate = completed / max(elapsed, 1e-9)
    attempts = f"{failed_attempts} failed attempts, " if failed_attempts else ""
    return (
        f"{text_bar(completed + failed, total)} {percent:3d}% completed {completed}/{total}, "
        f"{failed} failed, {attempts}{rate:,.0f} jobs/s"
    )


class LineProgress:
    """One line per update, for pipes and log files."""

    def __init__(self, out: TextIO, total: int) -> None:
        self.out = out
        self.total = total

    def update(self, completed: int, failed: int, attempts: int, elapsed: float) -> None:
        line = progress_line(completed, failed, self.total, elapsed, attempts)
        print(line, file=self.out, flush=True)

    def close(self, completed: int, failed: int, attempts: int, elapsed: float) -> None:
        """Nothing more: the producer's summary line follows."""


class BarProgress:
    """A rich progress bar redrawn in place, with the failed count and the rate."""

    def __init__(self, out: TextIO, total: int, label: str) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "{task.fields[failed]} failed, {task.fields[attempts]} failed attempts, "
                "{task.fields[rate]} jobs/s"
            ),
            TimeElapsedColumn(),
            console=Console(file=out),
        )
        self.task = self.progress.add_task(label, total=total, failed=0, attempts=0, rate="0")
        self.progress.start()

    def update(self, completed: int, failed: int, attempts: int, elapsed: float) -> None:
        rate = f"{completed / max(elapsed, 1e-9):,.0f}"
        self.progress.update(
            self.task, completed=completed + failed, failed=failed, attempts=attempts, rate=rate
        )

    def close(self, completed: int, failed: int, attempts: int, elapsed: float) -> None:
        self.update(completed, failed, attempts, elapsed)
        self.progress.stop()


def progress_for(out: TextIO, total: int, label: str) -> ProgressDisplay:
    """A bar on a terminal, lines otherwise."""
    isatty = getattr(out, "isatty", None)
    if isatty is not None and isatty():
        return BarProgress(out, total, label)
    return LineProgress(out, total)
