"""`corral run FILE --node NAME`: one node in this process until a signal stops it.

Signal handlers only post to a queue; the main thread does the work (starting, quieting,
stopping), so no handler ever runs node code re-entrantly. Semantics:
SIGTERM/SIGINT -> graceful stop, exit 0; a second SIGINT -> exit at once (1);
SIGTSTP -> worker quiet; SIGCONT -> worker resume. A worker the coordinator tells to terminate
(`corral terminate ID`) stops gracefully too (drains, deregisters) and exits 0.
"""

from __future__ import annotations

import gc
import logging
import os
import queue
import signal
import sys
from types import FrameType
from typing import Any

from nodes.config import load_config
from nodes.config.kinds import NodeConfig
from nodes.factory import build_node
from nodes.observe import logs

log = logging.getLogger("corral.node")

SUPERVISOR_PID_ENV = "CORRAL_SUPERVISOR_PID"
INSTANCE_ENV = "CORRAL_INSTANCE"  # a coordinator's `instance` (ping identify), set by the runner
PARENT_CHECK_INTERVAL_S = 1.0

STOP, FINISHED, QUIET, RESUME = "stop", "finished", "quiet", "resume"
TERMINATED = "terminated"  # the coordinator told this worker to terminate
TERMINATED_LINE = "terminated by the coordinator"  # logged then; the runner looks for it
# The cyclic GC's thresholds for a node process (CPython's are 700, 10, 10). A coordinator
# holds every queued job: with a million queued, one full collection stops every thread for
# ~0.4 s, and the default thresholds ran 28 of them (3.4 s) while the million were enqueued.
# These run young collections every 50,000 allocations and full ones 100 times more rarely:
# no full collection and a longest pause of 85 ms for the same million. corral's own code makes
# few reference cycles, so what the rarer full collections leave waiting is small.
GC_THRESHOLDS = (50_000, 20, 100)


def setup_logging(level: str, log_format: str = "text", **fields: Any) -> None:
    """Plain lines (or JSON, nodes/observe/logs.py) on stderr; the multi-process runner prefixes
    each with the node name."""
    logs.setup_logging(level, log_format, **fields)


class SignalInbox:
    """Turns signals into queue items for the main thread (SimpleQueue.put is reentrant)."""

    def __init__(self, worker: bool) -> None:
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self.interrupts = 0
        signal.signal(signal.SIGTERM, self._on_stop)
        signal.signal(signal.SIGINT, self._on_stop)
        if worker:
            signal.signal(signal.SIGTSTP, lambda *_: self.events.put(QUIET))
            signal.signal(signal.SIGCONT, lambda *_: self.events.put(RESUME))

    def _on_stop(self, signum: int, _: FrameType | None) -> None:
        if signum == signal.SIGINT:
            self.interrupts += 1
            if self.interrupts > 1:
                os.write(2, b"second interrupt: exiting at once\n")
                os._exit(1)
        self.events.put(STOP)

    def next(self) -> str:
        """The next event; a vanished supervisor counts as a stop, so no node is orphaned."""
        supervisor = os.environ.get(SUPERVISOR_PID_ENV)
        while True:
            try:
                return self.events.get(timeout=PARENT_CHECK_INTERVAL_S)
            except queue.Empty:
                if supervisor and os.getppid() != int(supervisor):
                    log.warning("supervisor %s is gone; stopping", supervisor)
                    return STOP


def tune_gc() -> None:
    """Set GC_THRESHOLDS: for processes that run a node, never for a service embedding one
    (the thresholds are the whole interpreter's)."""
    gc.set_threshold(*GC_THRESHOLDS)


def run_node(path: str, name: str) -> int:
    """Start node `name` of config `path`, serve until stopped, stop it gracefully."""
    tune_gc()
    config: NodeConfig = load_config(path).node(name)
    setup_logging(config.log_level, config.log_format, node=name, kind=config.kind)
    inbox = SignalInbox(worker=config.kind == "worker")
    overrides: dict[str, Any] = {}
    if config.kind == "producer":
        overrides["on_finish"] = lambda: inbox.events.put(FINISHED)
    elif config.kind == "worker":
        overrides["on_terminate"] = lambda: inbox.events.put(TERMINATED)
    elif os.environ.get(INSTANCE_ENV):
        overrides["instance"] = os.environ[INSTANCE_ENV]
    node = build_node(config, **overrides)
    try:
        node.start()
    except Exception as exc:  # a port in use, a store that cannot open: say it in one line
        log.error("%s %r could not start: %s: %s", config.kind, name, type(exc).__name__, exc)
        return 1
    log.info("%s %r started (pid %d)", config.kind, name, os.getpid())
    try:
        while True:
            event = inbox.next()
            if event == STOP:
                log.info("stopping %s %r", config.kind, name)
                break
            if event == TERMINATED:
                log.info("worker %r %s: stopping", name, TERMINATED_LINE)
                break
            if event == FINISHED:
                return 1 if node.exit_code is None else int(node.exit_code)
            if event == QUIET:
                log.info("quiet: finishing running jobs, fetching no more")
                node.quiet()
            elif event == RESUME:
                log.info("resume: fetching again")
                node.resume()
    finally:
        node.stop()
        log.info("%s %r stopped", config.kind, name)
        sys.stdout.flush()
    return 0
