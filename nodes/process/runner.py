"""`corral run FILE`: every node of a config in its own process, supervised.

Each node is a real child process (`python -m nodes.cli run FILE --node NAME`, nodes/process/
child.py) so it can be SIGKILLed like a production node. Before anything starts, every handler
and `expect` of the file is imported (nodes/factory.py `check_imports`): a typo is a config error
(exit 2), not a worker that dies after the coordinator started. Start order: coordinators (until
each answers a `ping {identify}` with the instance the runner gave it, so a coordinator of
another run on the same port is never taken for ours: nodes/process/startup.py), workers
(until they have registered, when producers wait on them), then producers. Children live in
their own session, so a terminal's Ctrl-C reaches only the runner, which then stops them in
order: workers and producers first (they deregister and report), coordinators last.

Supervised means (nodes/process/restarts.py): a worker that dies (a crash, the OOM killer's
SIGKILL) is started again after an exponential backoff, at most `limit` times within a window,
then the run stops with exit 1; a worker that exits 0 unasked (terminated by the coordinator)
is not restarted; a coordinator that exits unasked stops the whole run with exit 1.
"""

from __future__ import annotations

import functools
import queue
import signal
import sys
import threading
from pathlib import Path
from types import FrameType
from typing import TextIO

from actors.clock import SystemClock
from nodes.config import ClusterConfig, load_config
from nodes.config.kinds import CoordinatorConfig
from nodes.factory import check_imports
from nodes.process.child import Child, spawn
from nodes.process.restarts import Action, RestartPolicy, Restarts, action
from nodes.process.startup import Failed, await_coordinator, live_workers

WORKERS_READY_TIMEOUT_S = 15.0
READY_POLL_S = 0.1
STOP_MARGIN_S = 10.0  # on top of the longest worker shutdown_grace
COORDINATOR_STOP_TIMEOUT_S = 10.0
START_ORDER = ("coordinator", "gateway", "worker", "producer")

STOP, KILL, EXITED = "stop", "kill", "exited"


class Interrupted(Exception):
    """A stop signal arrived while the runner was starting the cluster."""


class Runner:
    """Starts, watches, restarts and stops the node processes of one config."""

    def __init__(
        self,
        config: ClusterConfig,
        out: TextIO | None = None,
        restarts: RestartPolicy | None = None,
    ) -> None:
        self.config = config
        self.path = str(Path(config.path).resolve())
        self.out = out or sys.stdout
        self.clock = SystemClock()
        self.children: dict[str, Child] = {}
        self.events: queue.SimpleQueue[tuple[str, str]] = queue.SimpleQueue()
        self.width = max(len(name) for name in [*config.nodes, "runner"])
        self.restarts = Restarts(restarts)
        self.due: dict[str, float] = {}  # node -> when it is started again
        self.failure: str | None = None  # why the run failed, once it has
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
            return self._supervise()
        except Interrupted:
            self.stop_all()
            return 0
        except Failed as exc:
            self.failure = str(exc)
            self.say(f"error: {exc}")
            self.stop_all()
            return 1

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
                    child, curve = self.children[node.name], self.curves[node.name]
                    pause = functools.partial(self._pause, READY_POLL_S, awaited=node.name)
                    await_coordinator(node, child, curve, pause, self.clock)
            if kind == "worker" and self.config.of_kind("producer"):
                self._wait_for_workers()

    def _spawn(self, name: str, kind: str) -> None:
        child = spawn(self.path, name, kind, self._write, lambda n: self.events.put((EXITED, n)))
        self.children[name] = child
        self.say(f"started {kind} {name!r} (pid {child.process.pid})")

    def _pause(self, seconds: float, awaited: str | None = None) -> None:
        """Wait, but give up at once on a stop signal or a coordinator's end (the `awaited`
        one's end is for its waiter to tell; stash the other events for the supervisor loop)."""
        try:
            kind, detail = self.events.get(timeout=seconds)
        except queue.Empty:
            return
        if kind in (STOP, KILL):
            self.say(f"{detail}: stopping")
            raise Interrupted
        child = self.children[detail]
        if detail == awaited:
            return
        if child.kind == "coordinator" and not child.stopping:
            raise self._coordinator_gone(child)
        self.events.put((kind, detail))  # a worker's end: the supervisor loop handles it
        threading.Event().wait(READY_POLL_S)

    def _wait_for_workers(self) -> None:
        """Let workers register before producers start, so throughput is measured warm."""
        coordinators = self.config.coordinators()
        deadline = self.clock.now() + WORKERS_READY_TIMEOUT_S
        live = wanted = 0
        while self.clock.now() < deadline:
            # a worker process that died is not awaited (the supervisor loop restarts it)
            wanted = sum(1 for c in self.children.values() if c.kind == "worker" and c.alive)
            live = sum(live_workers(node, self.curves[node.name]) for node in coordinators)
            if live >= wanted:
                dead = len(self.config.workers()) - wanted
                self.say(f"{live} workers registered" + (f" ({dead} exited)" if dead else ""))
                return
            self._pause(READY_POLL_S)
        self.say(f"only {live} of {wanted} workers registered; starting producers anyway")

    # -- supervising --------------------------------------------------------------------------

    def _supervise(self) -> int:
        while True:
            try:
                kind, detail = self.events.get(timeout=self._until_due())
            except queue.Empty:
                self._restart_due()
                continue
            if kind == STOP:
                self.say(f"{detail}: stopping the cluster")
                self.stop_all()
                return 0
            if kind == KILL:
                self.kill_all("second interrupt")
                return 1
            code = self._exited(self.children[detail])
            if code is not None:
                return code

    def _exited(self, child: Child) -> int | None:
        """Act on a child's end by the table of nodes/process/restarts.py; the run's exit code
        when the run is over."""
        code = child.process.returncode
        todo = action(child.kind, code, child.stopping)
        if todo is Action.STOP_RUN:
            raise self._coordinator_gone(child)
        if todo is Action.FINISHED:
            return self._producer_finished(child.name, code)
        if todo is Action.LEFT:
            why = "terminated by the coordinator" if child.terminated else "exited 0"
            self.say(f"worker {child.name!r} {why}: not restarted")
            self._any_workers_left()
        elif todo is Action.RESTART:
            delay = self.restarts.delay(child.name, self.clock.now())
            if delay is None:
                policy = self.restarts.policy
                raise Failed(
                    f"worker {child.name!r} died ({child.ended()}) after {policy.limit} "
                    f"restarts within {policy.window:.0f} s: giving up"
                )
            self.say(f"worker {child.name!r} died ({child.ended()}): restarting in {delay:g} s")
            self.due[child.name] = self.clock.now() + delay
        return None

    def _coordinator_gone(self, child: Child) -> Failed:
        node = self.config.node(child.name)
        bind = node.bind if isinstance(node, CoordinatorConfig) else "?"
        return Failed(f"coordinator {child.name!r} on {bind} exited unexpectedly ({child.ended()})")

    def _producer_finished(self, name: str, code: int) -> int | None:
        producers = {node.name for node in self.config.of_kind("producer")}
        self._producer_codes[name] = code if code >= 0 else 1
        self.say(f"producer {name!r} finished with exit code {code}")
        if set(self._producer_codes) != producers:
            return None
        self.say("every producer finished: stopping the cluster")
        self.stop_all()
        return max(self._producer_codes.values())

    def _any_workers_left(self) -> None:
        workers = [c for c in self.children.values() if c.kind == "worker"]
        if not any(c.alive or c.name in self.due for c in workers):
            self.say("no workers left: the coordinator keeps running for new ones (Ctrl-C stops)")

    def _until_due(self) -> float | None:
        if not self.due:
            return None
        return max(0.0, min(self.due.values()) - self.clock.now())

    def _restart_due(self) -> None:
        now = self.clock.now()
        for name, at in list(self.due.items()):
            if at <= now:
                del self.due[name]
                self._spawn(name, self.children[name].kind)

    # -- stopping -----------------------------------------------------------------------------

    def stop_all(self) -> None:
        """SIGTERM workers and producers, wait for their graceful stop, then coordinators."""
        self.due.clear()
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
    """`corral run FILE`: check FILE (handlers import), start and supervise every node of it.
    A failed run ends with its reason as one line on stderr too."""
    config = load_config(path)
    check_imports(config)
    runner = Runner(config)
    code = runner.run()
    if runner.failure is not None:
        print(f"error: {runner.failure}", file=sys.stderr)
    return code
