"""The dashboard's stylesheet and script, served as /dashboard.css and /dashboard.js (static
files: the page's Content-Security-Policy allows no inline style or script)."""

from __future__ import annotations

from nodes.observe import charts

CSS = (
    charts.CSS
    + """
:root { --fg: #1d2330; --muted: #6b7385; --line: #e3e6ee; --bg: #f6f7fb; --card: #fff;
  --ok: #1f8a4c; --warn: #b7791f; --bad: #c53030; --info: #2b6cb0; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 16px; padding: 14px 24px;
  background: #1d2330; color: #fff; flex-wrap: wrap; }
header h1 { margin: 0; font-size: 20px; letter-spacing: .5px; }
header h1 a { color: inherit; text-decoration: none; }
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
td.bar { white-space: nowrap; }
td.bar progress { width: 120px; height: 10px; vertical-align: middle; accent-color: var(--info); }
td.bar .percent { display: inline-block; min-width: 3.5em; text-align: right;
  font-variant-numeric: tabular-nums; }
td.message { overflow-wrap: anywhere; max-width: 48em; }
td.warn { color: var(--warn); font-weight: 600; }
span.paused { color: var(--warn); font-weight: 600; margin-left: 0.4em; }
span.schedule { color: var(--muted); margin-left: 0.4em; }
a.workflow { color: var(--info); margin-left: 0.4em; }
p.workflow .id { font-family: ui-monospace, monospace; margin-right: 0.4em; }
td.step .tree { color: var(--muted); font-family: ui-monospace, monospace; white-space: pre; }
td.step .after { color: var(--muted); margin-left: 0.4em; font-size: 12px; }
td.id a { color: inherit; }
tr.terminated td { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  background: #edf2f7; }
.badge.running, .badge.completed { background: #e6f6ec; color: var(--ok); }
.badge.quiet, .badge.retryable, .badge.scheduled { background: #fdf3e1; color: var(--warn); }
.badge.terminate, .badge.terminated, .badge.discarded, .badge.failed { background: #fde8e8;
  color: var(--bad); }
.badge.active, .badge.available { background: #e6effa; color: var(--info); }
.empty, .note, .stamp { color: var(--muted); }
.banner { background: #fde8e8; color: var(--bad); padding: 8px 12px; border-radius: 6px; }
button.retry { padding: 3px 12px; border: 1px solid var(--info); color: var(--info);
  background: #fff; border-radius: 4px; cursor: pointer; }
button.retry:hover { background: var(--info); color: #fff; }
"""
)

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
