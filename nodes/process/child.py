"""One node process of `corral run FILE`: started, its output relayed line by line, its end told."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from nodes.process.node import INSTANCE_ENV, SUPERVISOR_PID_ENV, TERMINATED_LINE


@dataclass
class Child:
    """One node process and whether its exit is expected."""

    name: str
    kind: str
    process: subprocess.Popen[str]
    instance: str = ""  # a coordinator's `ping {identify}` answer
    stopping: bool = False  # the runner asked it to stop
    terminated: bool = False  # a worker that said the coordinator told it to terminate
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def ended(self) -> str:
        """How the process ended, for the runner's lines."""
        code = self.process.returncode
        if code is not None and code < 0:
            return f"killed by {signal.Signals(-code).name}"
        return f"exit code {code}"


def spawn(
    path: str,
    name: str,
    kind: str,
    write: Callable[[str, str], None],
    on_exit: Callable[[str], None],
) -> Child:
    """Start node `name` of config `path` in its own session; each output line goes to
    `write(name, line)`, and `on_exit(name)` is called once the process ended."""
    instance = secrets.token_hex(8) if kind == "coordinator" else ""
    env = {**os.environ, "PYTHONUNBUFFERED": "1", SUPERVISOR_PID_ENV: str(os.getpid())}
    env[INSTANCE_ENV] = instance
    process = subprocess.Popen(
        [sys.executable, "-m", "nodes.cli", "run", path, "--node", name],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env=env,
        start_new_session=True,  # Ctrl-C goes to the runner only; it orders the stop
    )
    child = Child(name, kind, process, instance)

    def relay() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if TERMINATED_LINE in line:
                child.terminated = True
            write(name, line.rstrip("\n"))
        process.wait()
        on_exit(name)

    child.reader = threading.Thread(target=relay, name=f"corral-relay-{name}", daemon=True)
    child.reader.start()
    return child
