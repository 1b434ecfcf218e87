"""Handler threads that take turns: a worker's executor in a deterministic simulation.

A worker runs each job's handler on a pool thread (actors/pool.py), so two handlers run at
once and the order they finish in (with it the order of their outcomes, and all that follows)
is the operating system's. In a simulation (nodes/cluster.py) every worker gets a
`TurnExecutor` instead. Each handler still has a thread of its own, since it may block on the
virtual clock in `JobContext.sleep`, but only the thread that holds the cluster's one turn
runs, and the Cluster hands the turn out only when every actor is idle, like a frame.

The turn goes round in the order of one FIFO: a handler joins it when submitted, and a sleeping
one again when woken (by a timer, which the ManualClock fires one at a time in deadline order,
or by a cancel, which an actor's message makes). A handler gives the turn back when it
finishes or goes to sleep. A handler waiting in the FIFO does not count as `Activity`: the
Cluster drains the FIFO itself (`grant_next`), one turn per quiescent step.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import logging
import threading

from actors.base import Activity
from actors.event_loop import CoroutineFactory
from actors.pool import Task

log = logging.getLogger(__name__)


class Turn:
    """One handler thread's place in the rotation (compared by identity)."""

    __slots__ = ()


class Turns:
    """The one turn of a simulated cluster and the FIFO of handlers waiting for it."""

    def __init__(self, activity: Activity) -> None:
        self._activity = activity
        self._cond = threading.Condition()
        self._runnable: collections.deque[Turn] = collections.deque()
        self._holder: Turn | None = None
        self._closed = False
        self._local = threading.local()  # .turn: the Turn of the calling handler thread

    def executor(self) -> TurnExecutor:
        """An executor for one worker; all of a cluster's workers share the rotation."""
        return TurnExecutor(self)

    def grant_next(self) -> bool:
        """Let the first waiting handler run; False when none waits."""
        with self._cond:
            if not self._runnable or self._closed:
                return False
            if self._holder is not None:
                raise RuntimeError("the turn was granted while a handler still holds it")
            self._holder = self._runnable.popleft()
            self._activity.begin()  # it runs: busy until it finishes or sleeps
            self._cond.notify_all()
        return True

    def wait_free(self, timeout: float) -> bool:
        """Block until no handler holds the turn; False if `timeout` (real seconds) ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._holder is None, timeout)

    def close(self) -> None:
        """The simulation is over: every handler runs on unhindered (to its end, or to a sleep
        nobody will wake), so that none waits for a turn for ever."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def waiting(self) -> int:
        """How many handlers wait for the turn."""
        return len(self._runnable)

    def run(self, task: Task) -> None:
        """Queue `task` on a thread of its own; it runs when granted the turn."""
        turn = Turn()
        threading.Thread(
            target=self._serve, args=(turn, task), name="corral-turn", daemon=True
        ).start()
        self.enqueue(turn)

    def enqueue(self, turn: Turn) -> None:
        """`turn` is runnable: it joins the FIFO and stops counting as activity."""
        with self._cond:
            self._runnable.append(turn)
        self._activity.end()

    def current(self) -> Turn:
        """The Turn of the calling handler thread."""
        return self._local.turn  # type: ignore[no-any-return]

    def take(self, turn: Turn) -> None:
        """Block the calling thread until `turn` is granted."""
        with self._cond:
            self._cond.wait_for(lambda: self._holder is turn or self._closed)

    def give_back(self, turn: Turn) -> None:
        with self._cond:
            if self._holder is not turn:
                if self._closed:
                    return
                raise RuntimeError("a handler gave back a turn it did not hold")
            self._holder = None
            self._cond.notify_all()

    def _serve(self, turn: Turn, task: Task) -> None:
        self._local.turn = turn
        self.take(turn)
        try:
            task()
        except BaseException:  # like DaemonPool: logged, and the turn still goes round
            log.exception("a task raised; the turn passes on")
        finally:
            self.give_back(turn)


class TurnExecutor:
    """A worker's executor in a simulation: `actors.pool.Executor` over a shared `Turns`.

    An async handler runs on a loop of its own, on its own turn thread: a node-wide loop would
    run several handlers' steps between two turns, in an order the simulation does not choose.
    """

    shares_loop = False

    def __init__(self, turns: Turns) -> None:
        self._turns = turns

    def submit(self, task: Task) -> None:
        self._turns.run(task)

    def spawn(self, factories: list[CoroutineFactory]) -> None:
        for factory in factories:
            self._turns.run(functools.partial(_run_alone, factory))


    def shutdown(self) -> None:
        """Nothing to stop: DaemonPool has a free slot for every job the link hands over, so
        each submitted handler had started; here each still gets its turns, as it would."""

    def event(self) -> TurnEvent:
        """Made on the handler's own thread, by its first `JobContext.sleep`."""
        return TurnEvent(self._turns, self._turns.current())


class TurnEvent:
    """What a sleeping handler waits on: `wait` gives the turn back, `set` queues the sleeper,
    and `wait` returns once the sleeper's turn comes round again."""

    __slots__ = ("_set", "_turn", "_turns")

    def __init__(self, turns: Turns, turn: Turn) -> None:
        self._turns = turns
        self._turn = turn
        self._set = False

    def clear(self) -> None:
        self._set = False

    def set(self) -> None:
        """Called once a sleep by the waker (under the JobContext's lock); queues the sleeper."""
        if not self._set:
            self._set = True
            self._turns.enqueue(self._turn)

    def wait(self) -> bool:
        self._turns.give_back(self._turn)
        self._turns.take(self._turn)
        return True


def _run_alone(factory: CoroutineFactory) -> None:
    """An async handler in a simulation: a loop of its own on its turn thread."""
    asyncio.run(factory())
