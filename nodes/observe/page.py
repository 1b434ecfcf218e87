"""The dashboard's HTML: pure functions of the overview data (its CSS and script are in
nodes/observe/assets.py).

Every value that came from a peer (job types, queue names, error messages, hostnames, labels)
is HTML-escaped here: a job's error message is attacker-controlled text.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import quote

from nodes.observe import charts
from nodes.observe.formatting import (
    QUEUE_STATES,
    WAITING_STATES,
    error_text,
    format_ago,
    format_in,
    format_labels,
    live_workers,
    pending_directive,
    shown_states,
    sorted_workers,
)
from nodes.observe.overview import PROGRESS_SHOWN, percent, progress_rows


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(headers: list[tuple[str, str]], rows: list[str], empty: str) -> str:
    """`headers` are (label, css class); rows are ready `<tr>` strings."""
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f'<th class="{cls}">{_e(label)}</th>' for label, cls in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _type(job: dict[str, Any]) -> str:
    """The job's type, and the schedule that made it or the workflow it is a step of."""
    made_by, workflow = job.get("schedule"), job.get("workflow")
    suffix = ""
    if made_by:
        suffix = f' <span class="schedule">schedule {_e(made_by)}</span>'
    elif workflow:
        link = f"/workflows/{quote(str(workflow), safe='')}"
        suffix = f' <a class="workflow" href="{_e(link)}">workflow {_e(workflow)}</a>'
    return _e(job["type"]) + suffix


def _badge(state: str) -> str:
    return f'<span class="badge {_e(state)}">{_e(state)}</span>'


def _summary(view: dict[str, Any]) -> str:
    queues = view["queues"]
    total = {state: sum(c.get(state, 0) for c in queues.values()) for state in QUEUE_STATES}
    live = live_workers(view["workers"])
    busy = sum(w["active"] for w in live)
    slots = sum(w["concurrency"] for w in live)
    unroutable = sum(view.get("unroutable", {}).values())
    limited = sum(view.get("limited", {}).values())
    waiting = f"{unroutable} with no worker, {limited} held by a limit"
    cards = [
        ("Workers", str(len(live)), f"{busy}/{slots} slots busy"),
        ("Waiting", str(sum(total[s] for s in WAITING_STATES)), waiting),
        ("Active", str(total["active"]), "running now"),
        ("Completed", str(total["completed"]), "kept for a day"),
        ("Dead", str(total["discarded"]), "discarded, retry by hand"),
    ]
    return _cards(cards)


def _cards(cards: list[tuple[str, str, str]]) -> str:
    """A row of cards, each (label, value, note)."""
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><div class="label">{_e(label)}</div>'
            f'<div class="value">{_e(value)}</div><div class="note">{_e(note)}</div></div>'
            for label, value, note in cards
        )
        + "</div>"
    )


def _queues(view: dict[str, Any]) -> str:
    waiting = [view.get(key, {}) for key in ("unroutable", "limited")]  # older: no `limited`
    paused = set(view.get("paused", ()))
    rows = []
    shown = shown_states(view["queues"])
    for name, counts in sorted(view["queues"].items()):
        cells = "".join(f'<td class="num">{counts.get(s, 0)}</td>' for s in shown)
        stuck = "".join(
            f'<td class="num{" warn" if n else ""}">{n}</td>'
            for n in (held.get(name, 0) for held in waiting)
        )
        mark = ' <span class="paused">paused</span>' if name in paused else ""
        rows.append(f'<tr><td class="name">{_e(name)}{mark}</td>{cells}{stuck}</tr>')
    headers = [("Queue", "name"), *((s.capitalize(), "num") for s in shown)]
    headers += [("No worker", "num"), ("Limited", "num")]
    return _table(headers, rows, "No queues yet.")


def _workers(view: dict[str, Any], now: float) -> str:
    rows = []
    for w in sorted_workers(view["workers"]):
        pending = pending_directive(w)
        rows.append(
            f'<tr class="worker {_e(w["state"])}"><td>{_e(w.get("name") or "-")}</td>'
            f'<td class="id">{_e(w["worker_id"])}</td>'
            f'<td>{_e(w["hostname"])}</td><td class="num">{_e(w["pid"])}</td>'
            f"<td>{_badge(w['state'])}{f' {_e(pending)}' if pending else ''}</td>"
            f"<td>{_e(', '.join(w.get('queues', [])))}</td>"
            f"<td>{_e(format_labels(w.get('labels', {})))}</td>"
            f'<td class="num">{w["active"]}/{w["concurrency"]}</td>'
            f"<td>{_e(format_ago(now - w['last_seen']))}</td></tr>"
        )
    headers = [
        ("Name", ""),
        ("Worker", "id"),
        ("Host", ""),
        ("PID", "num"),
        ("State", ""),
        ("Queues", ""),
        ("Labels", ""),
        ("Active", "num"),
        ("Last beat", ""),
    ]
    return _table(headers, rows, "No workers connected.")


def _in_progress(view: dict[str, Any], now: float) -> str:
    """The jobs live workers report progress of, by worker then job id (the message is the
    handler's text: escaped, and wrapped by the stylesheet)."""
    rows: list[str] = []
    reports = progress_rows(view["workers"])
    for row in reports[:PROGRESS_SHOWN]:
        done = percent(row["fraction"])
        at = row["updated_at"]
        rows.append(
            f'<tr class="progress"><td class="id">{_e(row["job_id"])}</td>'
            f'<td>{_e(row["worker"])}</td><td class="bar">'
            f'<progress max="1" value="{row["fraction"]:.3f}"></progress>'
            f' <span class="percent">{done}%</span></td>'
            f'<td class="message">{_e(row["message"])}</td>'
            f"<td>{_e('-' if at is None else format_ago(now - at))}</td></tr>"
        )
    headers = [("Job", "id"), ("Worker", ""), ("Progress", ""), ("Message", ""), ("Updated", "")]
    more = len(reports) - PROGRESS_SHOWN
    note = f'<p class="note">and {more} more</p>' if more > 0 else ""
    return _table(headers, rows, "No job reports progress.") + note


def _failures(view: dict[str, Any], now: float) -> str:
    rows = []
    for job in view["failures"]:
        error = job["error"] or {}
        when = format_ago(now - error["at"]) if error.get("at") else "-"
        if job["state"] == "retryable" and job.get("next_attempt_at"):
            fate = f"retry {format_in(job['next_attempt_at'] - now)}"
        else:
            fate = "dead"
        rows.append(
            f'<tr class="failure"><td class="id">{_e(job["id"])}</td><td>{_type(job)}</td>'
            f"<td>{_e(job['queue'])}</td><td>{_badge(job['state'])}</td>"
            f'<td class="num">{job["attempt"]}/{_e(job["max_attempts"])}</td>'
            f'<td class="error">{_e(error_text(error))}</td><td>{_e(when)}</td>'
            f"<td>{_e(fate)}</td></tr>"
        )
    headers = [
        ("Job", "id"),
        ("Type", ""),
        ("Queue", ""),
        ("State", ""),
        ("Attempt", "num"),
        ("Last error", ""),
        ("Failed", ""),
        ("Next", ""),
    ]
    return _table(headers, rows, "No failures. Jobs that fail show up here.")


def _dead(view: dict[str, Any], now: float) -> str:
    admin = view.get("admin")
    rows = []
    for job in view["dead"]:
        ended = format_ago(now - job["completed_at"]) if job.get("completed_at") else "-"
        action = (
            f'<button class="retry" data-job-id="{_e(job["id"])}">Retry</button>' if admin else ""
        )
        rows.append(
            f'<tr class="dead"><td class="id">{_e(job["id"])}</td><td>{_type(job)}</td>'
            f'<td>{_e(job["queue"])}</td><td class="num">{job["errors"]}</td>'
            f'<td class="error">{_e(error_text(job["error"]))}</td><td>{_e(ended)}</td>'
            f"<td>{action}</td></tr>"
        )
    headers = [
        ("Job", "id"),
        ("Type", ""),
        ("Queue", ""),
        ("Errors", "num"),
        ("Last error", ""),
        ("Discarded", ""),
        ("", ""),
    ]
    note = (
        ""
        if admin
        else '<p class="note">Read-only: give the dashboard an <code>admin_token_file</code> '
        "to retry dead jobs from here (or run <code>corral retry JOB_ID</code>).</p>"
    )
    return _table(headers, rows, "The dead set is empty.") + note


def content(view: dict[str, Any]) -> str:
    """The part of the page that refreshes."""
    now = view["now"]
    banner = f'<p class="banner">{_e(view["error"])}</p>' if view.get("error") else ""
    return (
        f"{banner}{_summary(view)}{charts.dashboard_section(view.get('series'))}"
        f'<section id="queues"><h2>Queues</h2>{_queues(view)}</section>'
        f'<section id="workers"><h2>Workers</h2>{_workers(view, now)}</section>'
        f'<section id="progress"><h2>In progress</h2>{_in_progress(view, now)}</section>'
        f'<section id="failures"><h2>Recent failures</h2>{_failures(view, now)}</section>'
        f'<section id="dead"><h2>Dead set</h2>{_dead(view, now)}</section>'
        f'<p class="stamp">Updated at <time data-now="{now:.3f}">'
        f"{datetime.fromtimestamp(now).strftime('%H:%M:%S')}</time></p>"
    )


def page(
    view: dict[str, Any], *, title: str, coordinator_address: str, refresh_s: float, admin: bool
) -> str:
    """The whole page; the script refreshes `#content` every `refresh_s` seconds. `admin`:
    the dashboard has an admin token, so the page asks for it to offer retry."""
    token = ""
    if admin:
        token = (
            '<label class="token">Admin token <input id="token" type="password" '
            'autocomplete="off" placeholder="to retry dead jobs"></label>'
        )
    return shell(
        content(view),
        title=title,
        coordinator_address=coordinator_address,
        tools=token,
        refresh_ms=int(refresh_s * 1000),
    )


def shell(
    main: str,
    *,
    title: str,
    coordinator_address: str,
    subtitle: str = "dashboard",
    tools: str = "",
    refresh_ms: int | None = None,
) -> str:
    """A dashboard page around `main` (ready HTML): the stylesheet, and a header whose title
    leads back to the overview, with `tools` (ready HTML) at its end. With `refresh_ms`, the
    script refreshes `#content` that often; without, the page is still."""
    refresh, script = "", ""
    if refresh_ms is not None:
        refresh = f' data-refresh-ms="{refresh_ms}"'
        script = '<script src="/dashboard.js"></script>'
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} {_e(subtitle)}</title>"
        '<link rel="stylesheet" href="/dashboard.css"></head>'
        f'<body{refresh}><header><h1><a href="/">{_e(title)}</a></h1>'
        f'<span class="where">coordinator {_e(coordinator_address)}</span>'
        f'{tools}<span id="status" class="status"></span></header>'
        f'<main id="content">{main}</main>{script}</body></html>'
    )
