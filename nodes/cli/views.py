"""What `corral status`, `corral jobs` and `corral get` show: rich renderables (pure functions
of the stats, job lists and jobs the client returns), and the console they print on."""

from __future__ import annotations

import io
from typing import Any, TextIO

from rich import box
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from nodes.cli import running
from nodes.observe import charts
from nodes.observe.formatting import (
    error_text,
    format_ago,
    format_labels,
    format_value,
    format_when,
    last_error,
    live_workers,
    pending_directive,
    shown_states,
    sorted_workers,
)

SPARK_SECONDS = 60  # `status --watch` draws the last minute
PIPE_WIDTH = 200  # piped output is not wrapped at 80 columns: ids and errors stay on one line
STATE_STYLES = {
    "running": "green",
    "completed": "green",
    "quiet": "yellow",
    "retryable": "yellow",
    "scheduled": "yellow",
    "terminate": "red",
    "terminated": "dim",
    "discarded": "red",
    "cancelled": "dim",
    "active": "cyan",
    "available": "blue",
}


def console(out: TextIO) -> Console:
    """A console on `out`: colours and the terminal's width on a TTY, plain and wide on a pipe."""
    if out.isatty():
        return Console(file=out, highlight=False)
    # Not $COLUMNS: what a pipe receives must not depend on the terminal it was started from.
    return Console(file=out, width=PIPE_WIDTH, no_color=True, highlight=False, emoji=False)


def show(out: TextIO, renderable: RenderableType) -> None:
    """Print on a terminal as rich does; piped, as plain lines without the padding rich adds
    (no trailing spaces, no blank lines around), so captures and greps stay clean."""
    if out.isatty():
        console(out).print(renderable)
        return
    buffer = io.StringIO()
    console(buffer).print(renderable)
    lines = [line.rstrip() for line in buffer.getvalue().splitlines()]
    text = "\n".join(lines).strip("\n") + "\n"
    encoding = getattr(out, "encoding", None) or "utf-8"
    out.write(text.encode(encoding, "replace").decode(encoding))  # box lines on an ASCII pipe


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def titled_table(title: str | None = None) -> Table:
    return Table(
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        header_style="bold",
    )


def queues_table(stats: dict[str, Any]) -> RenderableType:
    queues = stats["queues"]
    if not queues:
        return Text("no queues yet")
    waiting = [stats.get(key, {}) for key in ("unroutable", "limited")]  # older: no `limited`
    table = titled_table("Queues")
    table.add_column("QUEUE", no_wrap=True)
    shown = shown_states(queues)
    for column in (*(state.upper() for state in shown), "NO WORKER", "LIMITED"):
        table.add_column(column, justify="right")
    paused = set(stats.get("paused", ()))
    for name, counts in sorted(queues.items()):
        stuck = [held.get(name, 0) for held in waiting]
        table.add_row(
            Text.assemble(name, (" (paused)", "bold yellow")) if name in paused else name,
            *(str(counts.get(state, 0)) for state in shown),
            *(Text(str(n), style="bold yellow" if n else "") for n in stuck),
        )
    return table


def _worker_state(worker: dict[str, Any]) -> Text:
    pending = pending_directive(worker)
    if pending is None:
        return _state(worker["state"])
    return Text(pending, style=STATE_STYLES.get(str(worker["directed"]), ""))


def workers_table(workers: list[dict[str, Any]], now: float) -> RenderableType:
    if not workers:
        return Text("no workers")
    table = titled_table("Workers")
    named = any(w.get("name") for w in workers)
    for name, justify in (
        *((("NAME", "left"),) if named else ()),
        ("WORKER", "left"),
        ("HOST", "left"),
        ("PID", "right"),
        ("STATE", "left"),
        ("QUEUES", "left"),
        ("LABELS", "left"),
        ("ACTIVE", "right"),
        ("LAST BEAT", "left"),
    ):
        no_wrap = name in ("NAME", "WORKER", "STATE", "LAST BEAT")
        table.add_column(name, justify=justify, no_wrap=no_wrap, overflow="fold")  # type: ignore[arg-type]
    for w in sorted_workers(workers):
        table.add_row(
            *((w.get("name") or "-",) if named else ()),
            w["worker_id"],
            w["hostname"],
            str(w["pid"]),
            _worker_state(w),
            ",".join(w.get("queues", [])) or "-",
            format_labels(w.get("labels", {})),
            f"{w['active']}/{w['concurrency']}",
            format_ago(now - w["last_seen"]),
            style="dim" if w["state"] == "terminated" else None,
        )
    return table


WAITING_NOTES = (
    (
        "unroutable",
        "with no eligible worker",
        "no connected worker has the queue, the job type and matching labels",
    ),
    ("limited", "for a limit to free up", "their key's concurrency or rate limit is full"),
)


def waiting_notes(stats: dict[str, Any]) -> list[RenderableType]:
    """A line per reason available jobs wait (no eligible worker, a full limit), if any do."""
    notes: list[RenderableType] = []
    for key, waiting, why in WAITING_NOTES:
        held = {queue: n for queue, n in sorted(stats.get(key, {}).items()) if n}
        if held:
            parts = ", ".join(f"{n} in {queue}" for queue, n in held.items())
            notes.append(Text(f"Jobs waiting {waiting}: {parts} ({why})", style="yellow"))
    return notes


def series_table(series: dict[str, Any]) -> RenderableType:
    """`status --watch`: sparklines of the last minute, with the rate or latency now."""
    table = Table.grid(padding=(0, 2))
    table.title, table.title_justify, table.title_style = f"Last {SPARK_SECONDS} s", "left", "bold"
    table.add_column(no_wrap=True)
    table.add_column(no_wrap=True, overflow="crop")
    table.add_column(justify="right", no_wrap=True)
    done = charts.tail(series, "completed", SPARK_SECONDS)
    failed = charts.tail(series, "failed", SPARK_SECONDS)
    p50 = charts.tail(series, "latency_p50_ms", SPARK_SECONDS)
    p95 = charts.tail(series, "latency_p95_ms", SPARK_SECONDS)
    slowest = max((v for v in p50 + p95 if v is not None), default=0.0)
    per_s, ms = charts.format_rate, charts.format_ms
    for label, line, style, now in (
        ("completed", charts.sparkline(done), "green", per_s(charts.rate(done))),
        ("failed", charts.sparkline(failed), "red", per_s(charts.rate(failed))),
        ("latency p50", charts.sparkline(p50, slowest), "blue", ms(charts.latest(p50))),
        ("latency p95", charts.sparkline(p95, slowest), "magenta", ms(charts.latest(p95))),
    ):
        table.add_row(label, Text(line, style=style), now)
    return table


def cluster_line(cluster: dict[str, Any]) -> RenderableType:
    """Coordinators sharing a database: who leads under which term, who stands by."""
    leader = cluster.get("leader") or {}
    standbys = ", ".join(
        f"{s['name']} ({s['endpoint']}{'' if s.get('ready', True) else ', loading its copy'})"
        for s in cluster["standbys"]
    )
    return Text(
        f"Leader {leader.get('name', '?')} ({leader.get('endpoint', '?')}), "
        f"term {cluster['term']}; standbys: {standbys or 'none'}",
        style="bold" if standbys else "yellow",
    )


def status_view(stats: dict[str, Any], now: float) -> RenderableType:
    """`corral status`: queues, workers, the jobs that report progress, the jobs no worker may
    take or a limit holds back (and under `--watch`, the last minute's throughput and latency)."""
    live = live_workers(stats["workers"])
    busy = sum(w["active"] for w in live)
    slots = sum(w["concurrency"] for w in live)
    parts: list[RenderableType] = [
        *((cluster_line(stats["cluster"]),) if stats.get("cluster") else ()),
        *((series_table(stats["series"]), Text("")) if stats.get("series") else ()),
        queues_table(stats),
        workers_table(stats["workers"], now),
        Text(f"{len(live)} live workers, {busy}/{slots} slots busy", style="dim"),
        *running.in_progress(live, now, titled_table),
        *waiting_notes(stats),
    ]
    return Group(*parts)


def scheduled_type(job: dict[str, Any]) -> str:
    """The job's type, and the schedule that made it, if one did (meta.schedule)."""
    made_by = (job.get("meta") or {}).get("schedule")
    return f"{job['type']} (schedule {made_by})" if made_by else job["type"]


def jobs_table(jobs: list[dict[str, Any]], now: float) -> RenderableType:
    """`corral jobs`: one row per job, newest first, with its last error."""
    if not jobs:
        return Text("no jobs match")
    table = titled_table()
    table.add_column("JOB", no_wrap=True)
    table.add_column("TYPE", overflow="fold")
    table.add_column("QUEUE", overflow="fold")
    table.add_column("STATE", no_wrap=True)
    table.add_column("ATTEMPT", justify="right")
    table.add_column("CREATED", no_wrap=True)
    table.add_column("LAST ERROR", overflow="fold")
    for job in jobs:
        table.add_row(
            job["id"],
            scheduled_type(job),
            job["queue"],
            _state(job["state"]),
            f"{job.get('attempt', 0)}/{job.get('max_attempts', '?')}",
            format_ago(now - job["created_at"]),
            Text(error_text(last_error(job)), style="red"),
        )
    return table


def job_view(job: dict[str, Any], now: float) -> RenderableType:
    """`corral get` on a terminal: the job's fields, then its error history."""
    fields = Table.grid(padding=(0, 2))
    fields.add_column(style="bold", no_wrap=True)
    fields.add_column(overflow="fold")
    rows: list[tuple[str, Any]] = [
        ("job", job["id"]),
        ("type", job["type"]),
        ("state", _state(job["state"])),
        ("queue", job["queue"]),
        ("priority", str(job.get("priority", 0))),
        ("attempt", f"{job.get('attempt', 0)} of {job.get('max_attempts', '?')}"),
        *running.job_progress(job, now),
        ("args", format_value(job.get("args", []))),
        ("created", format_when(job.get("created_at"), now)),
    ]
    optional = (
        ("scheduled", "scheduled_at", lambda v: format_when(v, now)),
        ("started", "started_at", lambda v: format_when(v, now)),
        ("ended", "completed_at", lambda v: format_when(v, now)),
        ("next attempt", "next_attempt_at", lambda v: format_when(v, now)),
        ("worker", "worker_id", str),
        ("timeout", "timeout", lambda v: f"{v:g} s"),
        ("unique key", "unique_key", str),
        ("route", "route", format_value),
        ("meta", "meta", format_value),
    )
    for label, key, show in optional:
        if job.get(key) not in (None, {}, ""):
            rows.append((label, show(job[key])))
    if job["state"] == "completed":
        rows.append(("result", format_value(job.get("result"))))
    for label, value in rows:
        fields.add_row(label, value)
    errors = job.get("errors") or []
    if not errors:
        return Group(fields, Text(""), Text("no errors", style="dim"))
    history = titled_table(f"Errors ({len(errors)})")
    history.add_column("ATTEMPT", justify="right")
    history.add_column("AT", no_wrap=True)
    history.add_column("TYPE", style="red")
    history.add_column("MESSAGE", overflow="fold")
    for error in errors:
        history.add_row(
            str(error.get("attempt", "?")),
            format_when(error.get("at"), now),
            str(error.get("type")),
            str(error.get("message")),
        )
    parts: list[RenderableType] = [fields, Text(""), history]
    backtrace = next((e["backtrace"] for e in reversed(errors) if e.get("backtrace")), None)
    if backtrace:
        lines = "\n".join(str(line).rstrip("\n") for line in backtrace)
        parts += [Text("Last backtrace", style="bold"), Text(lines, style="dim")]
    return Group(*parts)
