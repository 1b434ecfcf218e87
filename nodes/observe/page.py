"""The dashboard's HTML, CSS and JavaScript: pure functions of the overview data.

Every value that came from a peer (job types, queue names, error messages, hostnames, labels)
is HTML-escaped here: a job's error message is attacker-controlled text.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from nodes.observe import charts
from nodes.observe.formatting import (
    QUEUE_STATES,
    WAITING_STATES,
    error_text,
    format_ago,
    format_in,
    format_labels,
    live_workers,
    sorted_workers,
)


def _e(value: Any) -> str:
    return escape(str(value), quote=True)


def _table(headers: list[tuple[str, str]], rows: list[str], empty: str) -> str:
    """`headers` are (label, css class); rows are ready `<tr>` strings."""
    if not rows:
        return f'<p class="empty">{_e(empty)}</p>'
    head = "".join(f'<th class="{cls}">{_e(label)}</th>' for label, cls in headers)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _badge(state: str) -> str:
    return f'<span class="badge {_e(state)}">{_e(state)}</span>'


def _summary(view: dict[str, Any]) -> str:
    queues = view["queues"]
    total = {state: sum(c.get(state, 0) for c in queues.values()) for state in QUEUE_STATES}
    live = live_workers(view["workers"])
    busy = sum(w["active"] for w in live)
    slots = sum(w["concurrency"] for w in live)
    unroutable = sum(view.get("unroutable", {}).values())
    cards = [
        ("Workers", str(len(live)), f"{busy}/{slots} slots busy"),
        ("Waiting", str(sum(total[s] for s in WAITING_STATES)), f"{unroutable} with no worker"),
        ("Active", str(total["active"]), "running now"),
        ("Completed", str(total["completed"]), "kept for a day"),
        ("Dead", str(total["discarded"]), "discarded, retry by hand"),
    ]
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
    unroutable = view.get("unroutable", {})
    rows = []
    for name, counts in sorted(view["queues"].items()):
        cells = "".join(f'<td class="num">{counts.get(s, 0)}</td>' for s in QUEUE_STATES)
        stuck = unroutable.get(name, 0)
        warn = ' class="warn"' if stuck else ""
        rows.append(
            f'<tr><td class="name">{_e(name)}</td>{cells}<td class="num"{warn}>{stuck}</td></tr>'
        )
    headers = [("Queue", "name"), *((s.capitalize(), "num") for s in QUEUE_STATES)]
    headers.append(("No worker", "num"))
    return _table(headers, rows, "No queues yet.")


def _workers(view: dict[str, Any], now: float) -> str:
    rows = []
    for w in sorted_workers(view["workers"]):
        rows.append(
            f'<tr class="worker {_e(w["state"])}"><td class="id">{_e(w["worker_id"])}</td>'
            f'<td>{_e(w["hostname"])}</td><td class="num">{_e(w["pid"])}</td>'
            f"<td>{_badge(w['state'])}</td><td>{_e(', '.join(w.get('queues', [])))}</td>"
            f"<td>{_e(format_labels(w.get('labels', {})))}</td>"
            f'<td class="num">{w["active"]}/{w["concurrency"]}</td>'
            f"<td>{_e(format_ago(now - w['last_seen']))}</td></tr>"
        )
    headers = [
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
            f'<tr class="failure"><td class="id">{_e(job["id"])}</td><td>{_e(job["type"])}</td>'
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
            f'<tr class="dead"><td class="id">{_e(job["id"])}</td><td>{_e(job["type"])}</td>'
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
    refresh_ms = int(refresh_s * 1000)
    return (
        "<!doctype html>\n"
        '<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)} dashboard</title>"
        '<link rel="stylesheet" href="/dashboard.css"></head>'
        f'<body data-refresh-ms="{refresh_ms}"><header><h1>{_e(title)}</h1>'
        f'<span class="where">coordinator {_e(coordinator_address)}</span>'
        f'{token}<span id="status" class="status"></span></header>'
        f'<main id="content">{content(view)}</main>'
        '<script src="/dashboard.js"></script></body></html>'
    )


CSS = charts.CSS + """
:root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ee; --bg: #f6f7fb; --card: #fff;
  --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; --info: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px;
  background: #1d2330; color: #fff; flex-wrap: wrap; }
header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
header .where { color: #b8c0d4; font-family: ui-monospace, monospace; font-size: 12px; }
header .token { margin-left: auto; color: #b8c0d4; font-size: 12px; }
header .token input { margin-left: 6px; padding: 3px 6px; border-radius: 4px; border: 0; }
header .status { color: #f6ad55; font-size: 12px; }
main { padding: 16px 24px 32px; max-width: 1400px; }
h2 { font-size: 15px; margin: 24px 0 8px; text-transform: uppercase; letter-spacing: .6px;
  color: var(--muted); }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(170px, 1fr)); gap: 12px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 12px 14px; }
.card .label { color: var(--muted); font-size: 12px; text-transform: uppercase; }
.card .value { font-size: 28px; font-weight: 600; }
.card .note { color: var(--muted); font-size: 12px; }
table { width: 100%; border-collapse: collapse; background: var(--card);
  border: 1px solid var(--line); border-radius: 8px; overflow: hidden; }
th, td { padding: 6px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { background: #eef0f6; font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.id { font-family: ui-monospace, monospace; font-size: 12px; white-space: nowrap; }
td.error { color: var(--bad); font-family: ui-monospace, monospace; font-size: 12px;
  word-break: break-word; }
td.warn { color: var(--warn); font-weight: 600; }
tr.terminated td { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  background: #edf2f7; }
.badge.running, .badge.completed { background: #e6f6ec; color: var(--ok); }
.badge.quiet, .badge.retryable, .badge.scheduled { background: #fdf3e1; color: var(--warn); }
.badge.terminate, .badge.terminated, .badge.discarded { background: #fde8e8; color: var(--bad); }
.badge.active, .badge.available { background: #e6effa; color: var(--info); }
.empty, .note, .stamp { color: var(--muted); }
.banner { background: #fde8e8; color: var(--bad); padding: 8px 12px; border-radius: 6px; }
button.retry { padding: 3px 12px; border: 1px solid var(--info); color: var(--info);
  background: #fff; border-radius: 4px; cursor: pointer; }
button.retry:hover { background: var(--info); color: #fff; }
"""

JS = """
"use strict";
(function () {
  var content = document.getElementById("content");
  var status = document.getElementById("status");
  var token = document.getElementById("token");
  var every = parseInt(document.body.getAttribute("data-refresh-ms"), 10) || 2000;
  var refreshes = 0;
  if (token) {
    token.value = sessionStorage.getItem("corral-admin-token") || "";
    token.addEventListener("change", function () {
      sessionStorage.setItem("corral-admin-token", token.value);
    });
  }
  function refresh() {
    fetch("/fragment", {cache: "no-store"}).then(function (response) {
      if (!response.ok) { throw new Error("HTTP " + response.status); }
      return response.text();
    }).then(function (html) {
      content.innerHTML = html;
      status.textContent = "";
      refreshes += 1;
      document.body.setAttribute("data-refreshes", String(refreshes));
    }).catch(function (error) {
      status.textContent = "dashboard unreachable (" + error.message + "); retrying";
    });
  }
  document.addEventListener("click", function (event) {
    var button = event.target.closest("button.retry");
    if (!button) { return; }
    var id = button.getAttribute("data-job-id");
    var secret = token ? token.value : "";
    if (!secret) { status.textContent = "enter the admin token to retry jobs"; return; }
    button.disabled = true;
    fetch("/api/jobs/" + encodeURIComponent(id) + "/retry", {
      method: "POST", headers: {"Authorization": "Bearer " + secret}
    }).then(function (response) {
      return response.json().then(function (body) {
        status.textContent = response.ok ? "job " + id + " is " + body.state
                                         : "retry refused: " + body.error;
        refresh();
      });
    }).catch(function (error) { status.textContent = "retry failed: " + error.message; });
  });
  setInterval(refresh, every);
})();
"""
