"""The dashboard's page of one workflow (`/workflows/<id>`): pure functions of a `workflow_get`
reply (docs/PROTOCOL.md, "Workflows"), in the main page's layout and stylesheet.

It shows the workflow's state, its counts per state and its steps as the tree `corral workflow
get` draws (`nodes.cli.workflow.tree_rows`): each step under the last made of the steps it
waits for, a chain down one column. Step types and ids are a peer's text: escaped here.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from nodes.observe.page import _badge, _cards, _e, _table, shell
from nodes.observe.workflow_tree import SHORT_ID, tree_rows
from transport.jobspec import JOB_STATES

STEPS_SHOWN = 500  # the first steps made, whose parents are always among them


def page(reply: dict[str, Any], *, title: str, coordinator_address: str) -> str:
    """The whole page: a still view, reloaded by hand (no script)."""
    return shell(
        content(reply),
        title=title,
        coordinator_address=coordinator_address,
        subtitle=f"workflow {reply['workflow_id']}",
    )


def content(reply: dict[str, Any]) -> str:
    """The workflow's state and counts, then its steps; a line says how many are not drawn."""
    counts = reply["counts"]
    total = f"of {reply['total']} steps"
    cards = [("Steps", str(reply["total"]), "made by this workflow")]
    cards += [
        (state.capitalize(), str(counts[state]), total) for state in JOB_STATES if state in counts
    ]
    steps = reply["steps"]
    left_out = reply["total"] - len(steps)
    more = (
        f'<p class="note">... and {left_out} more not shown (the first {len(steps)} '
        f"of {reply['total']} steps are drawn).</p>"
        if left_out
        else ""
    )
    return (
        f'<section id="workflow"><h2>Workflow</h2><p class="workflow">'
        f'<span class="id">{_e(reply["workflow_id"])}</span> {_badge(reply["state"])}</p>'
        f"{_cards(cards)}</section>"
        f'<section id="steps"><h2>Steps</h2>{steps_table(steps)}{more}</section>'
        '<p class="stamp">A still view: reload the page for the latest states.</p>'
    )


def steps_table(steps: list[dict[str, Any]]) -> str:
    """One row per step in the tree's order: its tree prefix, type, and how many steps it
    waits for when more than one (a callback); its short id, linked to `/api/jobs/<id>`;
    its state and attempt."""
    rows = []
    for prefix, index in tree_rows(steps):
        step = steps[index]
        parents = len(step["after"])
        note = f' <span class="after">after {parents} steps</span>' if parents > 1 else ""
        job_id = str(step["id"])
        link = f"/api/jobs/{quote(job_id, safe='')}"
        rows.append(
            f'<tr class="step"><td class="step"><span class="tree">{_e(prefix)}</span>'
            f'{_e(step["type"])}{note}</td><td class="id"><a href="{_e(link)}" '
            f'title="{_e(job_id)}">{_e(job_id[-SHORT_ID:])}</a></td>'
            f'<td>{_badge(step["state"])}</td><td class="num">{_e(step["attempt"])}</td></tr>'
        )
    headers = [("Step", "step"), ("Job", "id"), ("State", ""), ("Attempt", "num")]
    return _table(headers, rows, "No steps to draw.")
