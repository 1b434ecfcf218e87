"""Integration fixtures shared by every file here: real node processes (started, signalled,
killed and reaped), free loopback ports, the `corral` command, connected clients and
in-process worker nodes.

Every process is SIGKILLed with its process group (a `corral run FILE` runner's nodes too) and
reaped at teardown, and its output printed then, so pytest shows it when a test fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from nodes import WorkerNode
from nodes.client import Client
from tests.conftest import wait_for

REPO = Path(__file__).resolve().parents[2]
NODE_SCRIPT = Path(__file__).resolve().with_name("node_script.py")
CLI_TIMEOUT_S = 20.0
LINE_TIMEOUT_S = 20.0
PROCESS_EXIT_TIMEOUT_S = 10.0
OUTPUT_SHOWN_CHARS = 6000


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cli(*args: str) -> tuple[str, ...]:
    """The Python arguments that run `corral ARGS...` (for `spawn`)."""
    return ("-m", "nodes.cli", *args)


def node_script(*args: str) -> tuple[str, ...]:
    """The Python arguments that run tests/integration/node_script.py (for `spawn`)."""
    return (str(NODE_SCRIPT), *args)


def corral(*args: str, timeout: float = CLI_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    """One short `corral` command, run to completion, its output captured."""
    return subprocess.run(
        [sys.executable, *cli(*args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def corral_at_once(*commands: tuple[str, ...]) -> list[subprocess.CompletedProcess[str]]:
    """Several `corral` commands that do not depend on each other, each in its own process,
    all started at once (their startups overlap); their results in the order given."""
    with ThreadPoolExecutor(len(commands), thread_name_prefix="corral") as pool:
        return list(pool.map(lambda args: corral(*args), commands))


class NodeProcess:
    """A child Python process whose output is collected line by line.

    Its stdout and stderr are read as one stream; with `stdout=False` only stderr is (a node
    whose log lines are checked one by one). It leads its own process group, so a kill reaches
    whatever it started.
    """

    def __init__(self, name: str, argv: tuple[str, ...], *, stdout: bool = True) -> None:
        self.name = name
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.process = subprocess.Popen(
            [sys.executable, *argv],
            cwd=REPO,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stdout else subprocess.DEVNULL,
            stderr=subprocess.STDOUT if stdout else subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        stream = self.process.stdout if stdout else self.process.stderr
        self._reader = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._reader.start()

    def _read(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def signal(self, signum: int) -> float:
        """Send `signum`; returns the wall-clock time it was sent (the coordinator's clock)."""
        sent_at = time.time()
        self.process.send_signal(signum)
        return sent_at

    def wait(self, timeout: float = PROCESS_EXIT_TIMEOUT_S) -> int:
        """The exit code, or fail if the process still runs after `timeout` s."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"{self.name} (pid {self.pid}) still running after {timeout} s:\n"
                        f"{self.output[-OUTPUT_SHOWN_CHARS:]}")  # fmt: skip
        self._reader.join(PROCESS_EXIT_TIMEOUT_S)
        return code

    def wait_for_line(self, pattern: str, timeout: float = LINE_TIMEOUT_S) -> re.Match[str]:
        """The first output line matching `pattern`; fail at the deadline or once the process
        has exited without printing one."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.lines:
                    if match := regex.search(line):
                        return match
                remaining = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self._reader.is_alive()
                if remaining <= 0 or ended:
                    pytest.fail(f"no line matching {pattern!r} from {self.name}:\n{self.output}")
                self._changed.wait(min(remaining, 0.5))

    def child_pids(self) -> list[int]:
        """The node processes a `corral run FILE` runner reported starting."""
        return [int(pid) for pid in re.findall(r"\(pid (\d+)\)", self.output)]

    def kill(self) -> None:
        """SIGKILL the process, its group and the nodes it reported (a stopped one too); reap."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signal.SIGKILL)
        for pid in [*self.child_pids(), self.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.process.wait(PROCESS_EXIT_TIMEOUT_S)


Spawn = Callable[..., NodeProcess]


@pytest.fixture
def spawn() -> Iterator[Spawn]:
    """Factory: `spawn(name, *python_args, stdout=True)` starts a NodeProcess (build the
    arguments with `cli(...)` or `node_script(...)`). At teardown every process is killed and
    reaped, then its output printed."""
    started: list[NodeProcess] = []

    def start(name: str, *argv: str, stdout: bool = True) -> NodeProcess:
        started.append(NodeProcess(name, argv, stdout=stdout))
        return started[-1]

    yield start
    for process in started:  # every process first, so nothing below can leave one running
        with contextlib.suppress(Exception):
            process.kill()
    for process in started:
        print(f"----- {process.name} (pid {process.pid}, exit {process.process.returncode})")
        print(process.output[-OUTPUT_SHOWN_CHARS:])


@pytest.fixture
def clients() -> Iterator[Callable[..., Client]]:
    """Factory: `clients(address, timeout=5)` connects a Client; all are closed at teardown."""
    opened: list[Client] = []

    def connect(address: str, timeout: float = 5.0) -> Client:
        client = Client(address, timeout=timeout)
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


@pytest.fixture
def workers() -> Iterator[Callable[..., WorkerNode]]:
    """Factory: `workers(address, **options)` starts an in-process WorkerNode and waits until
    it registered; all are stopped at teardown."""
    started: list[WorkerNode] = []

    def start(address: str, **options: Any) -> WorkerNode:
        node = WorkerNode(connect=address, **options).start()
        started.append(node)
        wait_for(lambda: node.status()["registered"], 10, what="the worker to register")
        return node

    yield start
    for node in started:
        node.stop(timeout=2)
