"""`corral workflow get|cancel` as an operator runs them, over TCP against a real coordinator
process and a worker process (tests/integration/node_script.py): a workflow that ran to the
end shows every step completed, `--json` is the reply, an unknown id is one line and exit 1,
and cancelling a workflow whose first step blocks cancels it and the step waiting for it.

Every wait is on a condition with a deadline; the processes are killed by `spawn`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from nodes import chain, group, step
from nodes.cli.workflow import SHORT_ID
from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import Spawn, corral, corral_at_once
from tests.integration.real_cluster import start_coordinator, start_worker

WORKFLOW_TIMEOUT_S = 20.0


def after() -> dict[str, Any]:
    """A step waiting for others: `sleep` takes no result of its parents."""
    return step("sleep", [0], pass_results=False)


def test_get_shows_every_step_of_a_finished_workflow_and_json_gives_the_reply(
    spawn: Spawn, tmp_path: Path
) -> None:
    _, address = start_coordinator(spawn, tmp_path, "c1")
    start_worker(spawn, address, "w1")
    with Client(address, timeout=10) as client:
        made = client.enqueue_workflow(
            chain(step("sleep", [0]), group(after(), after(), callback=after()))
        )
        workflow_id = made["workflow_id"]
        wait_for(
            lambda: client.workflow(workflow_id)["state"] == "completed",
            timeout=WORKFLOW_TIMEOUT_S,
            what="the workflow completed",
        )
        reply = client.workflow(workflow_id)

    shown, as_json, missing = corral_at_once(
        ("workflow", "get", workflow_id, "--connect", address),
        ("workflow", "get", workflow_id, "--json", "--connect", address),
        ("workflow", "get", "no-such-workflow", "--connect", address),
    )
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert lines[:2] == [f"Workflow {workflow_id}: completed", "4 steps: 4 completed"]
    rows = [line for line in lines if any(job[-SHORT_ID:] in line for job in made["job_ids"])]
    assert [row.split()[:-3] for row in rows] == [
        ["sleep"],
        ["├─", "sleep"],
        ["└─", "sleep"],
        ["└─", "sleep", "(after", "2", "steps)"],
    ]
    assert all(row.split()[-2:] == ["completed", "1"] for row in rows), shown.stdout

    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {
        k: v for k, v in reply.items() if k not in ("type", "rid")
    }
    assert [s["id"] for s in json.loads(as_json.stdout)["steps"]] == made["job_ids"]

    assert (missing.returncode, missing.stdout) == (1, "")
    assert missing.stderr == "error: unknown_job: no workflow no-such-workflow\n"


def test_cancel_stops_a_blocked_first_step_and_the_step_waiting_for_it(
    spawn: Spawn, tmp_path: Path
) -> None:
    _, address = start_coordinator(spawn, tmp_path, "c1")
    start_worker(spawn, address, "w1")
    release, started = tmp_path / "release", tmp_path / "started"  # `release` is never made
    with Client(address, timeout=10) as client:
        made = client.enqueue_workflow(
            chain(
                step("hold", [str(release), str(started)]),
                after(),
            )
        )
        workflow_id = made["workflow_id"]
        wait_for(started.exists, timeout=WORKFLOW_TIMEOUT_S, what="the first step running")
        assert client.workflow(workflow_id)["counts"] == {"active": 1, "deferred": 1}

        cancelled = corral("workflow", "cancel", workflow_id, "--connect", address)
        assert cancelled.returncode == 0, cancelled.stderr
        assert cancelled.stdout == f"workflow {workflow_id}: 2 steps asked to cancel\n"
        wait_for(
            lambda: client.workflow(workflow_id)["state"] == "cancelled",
            timeout=WORKFLOW_TIMEOUT_S,
            what="the workflow cancelled",
        )
        assert client.workflow(workflow_id)["counts"] == {"cancelled": 2}

    shown = corral("workflow", "get", workflow_id, "--connect", address)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[:2] == [
        f"Workflow {workflow_id}: cancelled",
        "2 steps: 2 cancelled",
    ]
    again = corral("workflow", "cancel", workflow_id, "--connect", address)
    assert (again.returncode, again.stdout) == (
        0,
        f"workflow {workflow_id}: 0 steps asked to cancel\n",
    )
