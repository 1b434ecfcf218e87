"""`corral run FILE`: every node of a config in its own process, supervised.

Each node is a real child process (`python -m nodes.cli run FILE --node NAME`) so it can be
SIGKILLed like a production node. Start order: coordinators (until they answer a ping), workers
(until they have registered, when producers wait on them), then producers. Children live in
their own session, so a terminal's Ctrl-C reaches only the runner, which then stops them in
order: workers and producers first (they deregister and report), coordinators last.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import TextIO

from actors.clock import SystemClock
from nodes.client import Client
from nodes.config import ClusterConfig, load_config
from nodes.config.kinds import CoordinatorConfig
from nodes.process.node import SUPERVISOR_PID_ENV
from transport.errors import CorralError

COORDINATOR_READY_TIMEOUT_S = 15.0
WORKERS_READY_TIMEOUT_S = 15.0
PING_TIMEOUT_S = 0.5
READY_POLL_S = 0.1
STOP_MARGIN_S = 10.0  # on top of the longest worker shutdown_grace
COORDINATOR_STOP_TIMEOUT_S = 10.0
START_ORDER = ("coordinator", "worker", "producer")

STOP, KILL, EXITED = "stop", "kill", "exited"


class Interrupted(Exception):
    """A stop signal arrived while the runner was starting the cluster."""


@dataclass
class Child:
    """One node process and whether its exit is expected."""

    name: str
    kind: str
    process: subprocess.Popen[str]
    stopping: bool = False
    reader: threading.Thread | None = field(default=None, repr=False)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


class Runner:
    """Starts, watches and stops the node processes of one config."""

    def __init__(self, config: ClusterConfig, out: TextIO | None = None) -> None:
        self.config = config
        self.path = str(Path(config.path).resolve())
        self.out = out or sys.stdout
        self.clock = SystemClock()
        self.children: dict[str, Child] = {}
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.width = max(len(name) for name in [*config.nodes, "runner"])
        self._out_lock = threading.Lock()
        self._interrupts = 0
        self._producer_codes: dict[str, int] = {}
        # keys for the runner's own pings and stats (found before any node starts, so a
        # secured config without a usable client key fails at once with ConfigError)
        self.curves = {node.name: config.client_curve(node) for node in config.coordinators()}

    # -- entry point --------------------------------------------------------------------------

    def run(self) -> int:
        """Run the cluster; returns the process exit code."""
        signal.signal(signal.SIGINT, self._on_signal)
        signal.signal(signal.SIGTERM, self._on_signal)
        try:
            self._start_all()
        except Interrupted:
            self.stop_all()
            return 0
        except RuntimeError as exc:
            self.say(f"error: {exc}")
            self.stop_all()
            return 1
        return self._supervise()

    def _on_signal(self, signum: int, _: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self._interrupts += 1
        self.events.put((KILL if self._interrupts > 1 else STOP, signal.Signals(signum).name))

    # -- starting -----------------------------------------------------------------------------

    def _start_all(self) -> None:
        for kind in START_ORDER:
            for node in self.config.of_kind(kind):
                self._spawn(node.name, kind)
                if isinstance(node, CoordinatorConfig):
                    self._wait_until_answers(node)
            if kind == "worker" and self.config.of_kind("producer"):
                self._wait_for_workers()

    def _spawn(self, name: str, kind: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", SUPERVISOR_PID_ENV: str(os.getpid())}
        process = subprocess.Popen(
            [sys.executable, "-m", "nodes.cli", "run", self.path, "--node", name],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
            env=env,
            start_new_session=True,  # Ctrl-C goes to the runner only; it orders the stop
        )
        child = Child(name, kind, process)
        child.reader = threading.Thread(
            target=self._relay, args=(child,), name=f"corral-relay-{name}", daemon=True
        )
        child.reader.start()
        self.children[name] = child
        self.say(f"started {kind} {name!r} (pid {process.pid})")

    def _relay(self, child: Child) -> None:
        """Copy a child's output with its name in front; report its end."""
        assert child.process.stdout is not None
        for line in child.process.stdout:
            self._write(child.name, line.rstrip("\n"))
        child.process.wait()
        self.events.put((EXITED, child.name))

    def _pause(self, seconds: float) -> None:
        """Wait, but give up at once on a stop signal (stash other events for later)."""
        try:
            kind, detail = self.events.get(timeout=seconds)
        except queue.Empty:
            return
        if kind in (STOP, KILL):
            self.say(f"{detail}: stopping")
            raise Interrupted
        self.events.put((kind, detail))  # an exit: the supervisor loop reports it
        threading.Event().wait(READY_POLL_S)

    def _wait_until_answers(self, node: CoordinatorConfig) -> None:
        child = self.children[node.name]
        deadline = self.clock.now() + COORDINATOR_READY_TIMEOUT_S
        curve = self.curves[node.name]
        with Client(node.connect_address, timeout=PING_TIMEOUT_S, curve=curve) as client:
            while True:
                if not child.alive:
                    raise RuntimeError(
                        f"coordinator {node.name!r} exited with code {child.process.returncode}"
                    )
                try:
                    client.ping()
                    return
                except CorralError:
                    if self.clock.now() > deadline:
                        raise RuntimeError(
                            f"coordinator {node.name!r} did not answer on "
                            f"{node.connect_address} within {COORDINATOR_READY_TIMEOUT_S:.0f} s"
                        ) from None
                self._pause(READY_POLL_S)

    def _wait_for_workers(self) -> None:
        """Let workers register before producers start, so throughput is measured warm."""
        coordinators = self.config.coordinators()
        deadline = self.clock.now() + WORKERS_READY_TIMEOUT_S
        live = wanted = 0
        while self.clock.now() < deadline:
            # a worker process that died (say, a handler that does not import) is not awaited
            wanted = sum(1 for c in self.children.values() if c.kind == "worker" and c.alive)
            live = sum(self._live_workers(node) for node in coordinators)
            if live >= wanted:
                dead = len(self.config.workers()) - wanted
                self.say(f"{live} workers registered" + (f" ({dead} exited)" if dead else ""))
                return
            self._pause(READY_POLL_S)
        self.say(f"only {live} of {wanted} workers registered; starting producers anyway")

    def _live_workers(self, node: CoordinatorConfig) -> int:
        curve = self.curves[node.name]
        try:
            with Client(node.connect_address, timeout=PING_TIMEOUT_S, curve=curve) as client:
                workers = client.stats()["workers"]
        except CorralError:
            return 0
        return sum(1 for worker in workers if worker["state"] != "terminated")

    # -- supervising --------------------------------------------------------------------------

    def _supervise(self) -> int:
        producers = {node.name for node in self.config.of_kind("producer")}
        while True:
            kind, detail = self.events.get()
            if kind == STOP:
                self.say(f"{detail}: stopping the cluster")
                self.stop_all()
                return 0
            if kind == KILL:
                self.kill_all("second interrupt")
                return 1
            child = self.children[detail]
            code = child.process.returncode
            if detail in producers:
                self._producer_codes[detail] = code if code >= 0 else 1
                self.say(f"producer {detail!r} finished with exit code {code}")
                if set(self._producer_codes) == producers:
                    self.say("every producer finished: stopping the cluster")
                    self.stop_all()
                    return max(self._producer_codes.values())
            elif not child.stopping:
                self.say(f"{child.kind} {detail!r} exited unexpectedly with code {code}")
                if not any(c.alive for c in self.children.values()):
                    return 1

    # -- stopping -----------------------------------------------------------------------------

    def stop_all(self) -> None:
        """SIGTERM workers and producers, wait for their graceful stop, then coordinators."""
        first = [c for c in self.children.values() if c.kind != "coordinator"]
        grace = max((worker.shutdown_grace for worker in self.config.workers()), default=0.0)
        self._terminate(first, grace + STOP_MARGIN_S)
        coordinators = [c for c in self.children.values() if c.kind == "coordinator"]
        self._terminate(coordinators, COORDINATOR_STOP_TIMEOUT_S)

    def _terminate(self, children: list[Child], timeout: float) -> None:
        for child in children:
            child.stopping = True
            if child.alive:
                child.process.send_signal(signal.SIGTERM)
        deadline = self.clock.now() + timeout
        while any(child.alive for child in children):
            remaining = deadline - self.clock.now()
            if remaining <= 0:
                self.kill_all(f"still running after {timeout:.0f} s")
                return
            try:
                kind, _ = self.events.get(timeout=min(remaining, READY_POLL_S))
            except queue.Empty:
                continue
            if kind == KILL:
                self.kill_all("second interrupt")
                return
        for child in children:
            if child.reader is not None:
                child.reader.join(timeout=1.0)  # let the last lines through

    def kill_all(self, reason: str) -> None:
        for child in self.children.values():
            if child.alive:
                self.say(f"killing {child.kind} {child.name!r}: {reason}")
                child.stopping = True
                child.process.kill()
        for child in self.children.values():
            child.process.wait()

    # -- output -------------------------------------------------------------------------------

    def say(self, message: str) -> None:
        self._write("runner", message)

    def _write(self, name: str, line: str) -> None:
        with self._out_lock:
            self.out.write(f"{name:<{self.width}} | {line}\n")
            self.out.flush()


def run_cluster(path: str) -> int:
    """`corral run FILE`: start and supervise every node of FILE."""
    return Runner(load_config(path)).run()
