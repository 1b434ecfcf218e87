"""`corral workflow get|cancel`: a workflow's state, its counts per state and its steps as a
tree, or cancel what has not ended (docs/PROTOCOL.md, "Workflows"; the client role).

The tree hangs each step under the last made of the steps it waits for; a step with several
parents (a callback) appears once, there, noting how many it waits for. A chain reads down one
column: the only child of a step, waiting for that step alone, goes on at its parent's level,
so a chain of 10,000 is as wide as one of 2. `--limit` bounds the steps drawn (the first ones
made, whose parents are always among them); a line says how many are left out.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text

from nodes.cli import flags, views
from nodes.cli.commands import _client, to_json
from nodes.observe.workflow_tree import SHORT_ID, tree_rows
from transport.jobspec import JOB_STATES

DEFAULT_LIMIT = 200
REPLY_ENVELOPE = ("type", "rid")  # not the workflow's: left out of `--json`
FAILED = "failed"  # a workflow state of its own: a step was discarded


def add_parsers(sub: argparse._SubParsersAction, client: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    workflow = sub.add_parser("workflow", help="workflows: see one as a tree of steps, cancel one")
    actions = workflow.add_subparsers(dest="workflow_command", metavar="ACTION", required=True)
    get = actions.add_parser(
        "get", parents=[client], help="the workflow's state, counts per state and tree of steps"
    )
    get.add_argument("workflow_id", metavar="WORKFLOW_ID")
    get.add_argument("--json", action="store_true", help="the raw reply as JSON")
    get.add_argument(
        "--limit",
        type=flags.COUNT,
        default=DEFAULT_LIMIT,
        metavar="N",
        help=f"at most N steps, the first made (default {DEFAULT_LIMIT})",
    )
    cancel = actions.add_parser(
        "cancel", parents=[client], help="cancel every step not ended, print how many"
    )
    cancel.add_argument("workflow_id", metavar="WORKFLOW_ID")


def workflow(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if args.workflow_command == "cancel":
            cancelling = client.cancel_workflow(args.workflow_id)
            print(f"workflow {args.workflow_id}: {_steps(cancelling)} asked to cancel")
            return 0
        reply = client.workflow(args.workflow_id, args.limit)
    if args.json:
        print(to_json({k: v for k, v in reply.items() if k not in REPLY_ENVELOPE}))
    else:
        views.show(sys.stdout, workflow_view(reply))
    return 0


def workflow_view(reply: dict[str, Any]) -> RenderableType:
    """`corral workflow get`: a `workflow_get` reply as its state, counts and tree of steps."""
    state = reply["state"]
    style = "red" if state == FAILED else views.STATE_STYLES.get(state, "")
    parts: list[RenderableType] = [
        Text.assemble(("Workflow ", "bold"), (reply["workflow_id"], "bold"), ": ", (state, style)),
        Text(f"{_steps(reply['total'])}: {_counts(reply['counts'])}"),
    ]
    steps = reply["steps"]
    if steps:
        parts.append(steps_table(steps))
    left_out = reply["total"] - len(steps)
    if left_out:
        shown = f"the first {len(steps)} of {_steps(reply['total'])}; --limit N shows more"
        parts.append(Text(f"... and {left_out} more not shown ({shown})", style="dim"))
    return Group(*parts)


def steps_table(steps: list[dict[str, Any]]) -> RenderableType:
    table = views.titled_table()
    table.add_column("STEP", no_wrap=True)
    table.add_column("JOB", no_wrap=True)
    table.add_column("STATE", no_wrap=True)
    table.add_column("ATTEMPT", justify="right")
    for prefix, index in tree_rows(steps):
        step = steps[index]
        parents = len(step["after"])
        note = f" (after {_steps(parents)})" if parents > 1 else ""
        table.add_row(
            Text.assemble((prefix, "dim"), step["type"], (note, "dim")),
            step["id"][-SHORT_ID:],
            views._state(step["state"]),
            str(step["attempt"]),
        )
    return table


def _counts(counts: dict[str, int]) -> str:
    """`1 active, 3 completed`: in the order of the job states, unknown ones last."""
    order = {state: position for position, state in enumerate(JOB_STATES)}
    ranked = sorted(counts.items(), key=lambda item: (order.get(item[0], len(order)), item[0]))
    return ", ".join(f"{n} {state}" for state, n in ranked if n)


def _steps(n: int) -> str:
    return f"{n} step" if n == 1 else f"{n} steps"
