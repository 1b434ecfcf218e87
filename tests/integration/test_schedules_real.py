"""Schedules as a user runs them: a coordinator process started from YAML with `schedules:` on
a SQLite file, a worker process, the `corral schedule` commands over TCP. The coordinator is
SIGKILLed and started again on the same file: the schedule goes on, no slot makes two jobs,
and the jobs it made say so in `corral jobs`."""

from __future__ import annotations

import json
import signal
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest

from nodes.client import Client
from tests.conftest import wait_for
from tests.integration.conftest import NodeProcess, Spawn, cli, corral, free_port

EVERY_S = 1.0
START_TIMEOUT_S = 20.0


def write(tmp_path: Path, port: int) -> Path:
    path = tmp_path / "scheduled.yaml"
    path.write_text(
        textwrap.dedent(
            f"""
            nodes:
              coordinator:
                kind: coordinator
                bind: tcp://127.0.0.1:{port}
                store: sqlite:///{tmp_path / "corral.db"}
                reaper_interval: 0.1
                schedules:
                  - name: squares
                    every: {EVERY_S}
                    job: {{type: square, args: [4]}}
              worker:
                kind: worker
                connect: tcp://127.0.0.1:{port}
                concurrency: 2
                handlers: {{square: "nodes.demo:square"}}
            """
        )
    )
    return path


def scheduled_slots(client: Client) -> list[float]:
    jobs = client.jobs(limit=1000)
    return sorted(j.raw["meta"]["slot"] for j in jobs if j.raw.get("meta", {}).get("schedule"))


def start(spawn: Spawn, path: Path, node: str) -> NodeProcess:
    return spawn(node, *cli("run", str(path), "--node", node))


@pytest.mark.slow  # the suite's five minutes: run in the slow tier (README)
def test_a_yaml_schedule_survives_a_sigkill_of_the_coordinator_without_a_slot_made_twice(
    spawn: Spawn, tmp_path: Path
) -> None:
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    path = write(tmp_path, port)
    coordinator = start(spawn, path, "coordinator")
    start(spawn, path, "worker")
    with Client(address, timeout=10) as client:
        wait_for(lambda: len(scheduled_slots(client)) >= 3, START_TIMEOUT_S, what="3 slots")
        listed = corral("schedule", "list", "--json", "--connect", address)
        assert listed.returncode == 0, listed.stderr
        [schedule] = json.loads(listed.stdout)
        assert (schedule["name"], schedule["every"], len(schedule["next_runs"])) == (
            "squares", EVERY_S, 3,
        )  # fmt: skip
        before = scheduled_slots(client)

    coordinator.signal(signal.SIGKILL)
    coordinator.wait()
    coordinator = start(spawn, path, "coordinator")
    with Client(address, timeout=10) as client:
        wait_for(
            lambda: len(scheduled_slots(client)) >= len(before) + 3,
            START_TIMEOUT_S,
            what="3 more slots after the restart",
        )
        slots = scheduled_slots(client)
        assert len(slots) == len(set(slots)), "a slot made two jobs"
        assert slots[: len(before)] == before
        steps = {round((b - a) / EVERY_S, 6) for a, b in pairwise(slots)}
        assert all(step == int(step) for step in steps), f"off the schedule's grid: {steps}"
        made = [j for j in client.jobs(limit=1000) if j.raw.get("meta", {}).get("schedule")]
        wait_for(
            lambda: all(client.get(j.id).state == "completed" for j in made[-3:]),
            10,
            what="the last jobs run",
        )
        assert {client.get(j.id).result for j in made[-3:]} == {16}

        # The commands an operator uses
        shown = corral("jobs", "--limit", "3", "--connect", address)
        assert "square (schedule squares)" in shown.stdout, shown.stdout
        paused = corral("schedule", "pause", "squares", "--connect", address)
        assert paused.returncode == 0 and "schedule squares: paused" in paused.stdout
        added = corral(
            "schedule", "add", "hourly", "square", "2", "--cron", "@hourly",
            "--timezone", "Europe/Riga", "--connect", address,
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        assert "schedule hourly: next run" in added.stdout
        table = corral("schedule", "list", "--connect", address)
        assert "hourly" in table.stdout and "@hourly (Europe/Riga)" in table.stdout
        assert "paused" in table.stdout
        bad = corral("schedule", "add", "bad", "square", "--cron", "61 * * * *",
                     "--connect", address)  # fmt: skip
        assert bad.returncode == 1 and "bad cron expression" in bad.stderr
