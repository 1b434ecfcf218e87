"""`corral get` and `corral status`, run as real commands against a real coordinator on TCP
loopback, show the progress a running handler of a real worker reported (extension
"Progress"): the handler reports, then holds its job active until the test lets it go."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from actors.worker import current_job
from nodes import Client, Coordinator, WorkerNode
from tests.conftest import wait_for
from tests.integration.conftest import CLI_TIMEOUT_S, REPO

HOLD_S = 20.0  # the handler's longest hold: the test releases it well before
# The `corral` entry point (nodes.cli.main, what `python -m nodes.cli` runs) called once per
# command in one child process: starting Python and importing corral takes about 1 s, and two
# children side by side on a 2-CPU machine 1.8 s. Each command's output ends with its exit.
COMMANDS = """
import json, sys
from nodes.cli import main
for argv in json.loads(sys.argv[1]):
    code = main(argv)
    print(f"=== exit {code}", flush=True)
"""


def corral_commands(*commands: list[str]) -> list[str]:
    """Run each `corral` command line in turn in one child process; the output of each."""
    ran = subprocess.run(
        [sys.executable, "-c", COMMANDS, json.dumps(commands)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT_S,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr
    parts = re.split(r"^=== exit (\d+)\n", ran.stdout, flags=re.M)
    assert parts[1::2] == ["0"] * len(commands), ran.stdout + ran.stderr
    return parts[0::2][: len(commands)]


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown too, so a failing test never leaves a handler holding its worker."""
    event = threading.Event()
    yield event
    event.set()


def test_get_and_status_show_a_running_job_s_progress_and_its_message(
    coordinator: Callable[..., Coordinator],
    workers: Callable[..., WorkerNode],
    release: threading.Event,
) -> None:
    def render(pages: int) -> int:
        job = current_job()
        assert job is not None
        job.progress(0.6, f"rendering page 3 of {pages} <fast>")
        release.wait(HOLD_S)
        return pages

    node = coordinator(heartbeat_interval=0.1)  # the beat that carries progress, every 0.1 s
    workers(node.address, handlers={"render": render}, name="renderer")
    with Client(node.address) as client:
        handle = client.enqueue("render", [5])
        wait_for(lambda: client.get(handle).raw.get("progress"), what="the progress reported")

        got, status = corral_commands(
            ["get", handle.id, "--pretty", "--connect", node.address],
            ["status", "--connect", node.address],
        )

        assert re.search(
            r"^progress +\[######----\]  60%  rendering page 3 of 5 <fast>  "
            r"\(updated \d+\.\ds ago\)$",
            got,
            re.M,
        ), got
        table = status.partition("In progress\n")[2]
        assert re.search(
            rf"^ ?{handle.id} +renderer +\[######----\]  60% +rendering page 3 of 5 <fast> +"
            r"\d+\.\ds ago$",
            table,
            re.M,
        ), status

        release.set()
        assert handle.result(timeout=10) == 5
