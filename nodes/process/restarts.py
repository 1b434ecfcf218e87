"""What `corral run` does when one of its node processes ends, and when it restarts one. Pure.

    | kind \\ ended      | asked   | clean (exit 0) | failed (exit != 0, or a signal) |
    | ----------------- | ------- | -------------- | ------------------------------- |
    | coordinator       | nothing | stop the run   | stop the run                    |
    | worker            | nothing | left           | restart (backoff) or give up    |
    | producer          | nothing | finished       | finished                        |

`asked`: the runner stopped it. A worker that exits 0 unasked was told to terminate by the
coordinator (or signalled by someone): it left on purpose and is not restarted. A coordinator is
never restarted: with the memory store its jobs died with it, and a restart would hide that loss
behind a cluster that looks healthy; a run over a durable store can be restarted by the operator
(the workers reconnect and resume their jobs, PROTOCOL.md section 6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Ended(Enum):
    ASKED = "asked"
    CLEAN = "clean"
    FAILED = "failed"


class Action(Enum):
    NOTHING = "nothing"  # an exit the runner asked for
    STOP_RUN = "stop the run"  # exit 1 with the reason
    LEFT = "left"  # not restarted; the cluster goes on
    RESTART = "restart"  # after the backoff, unless it died too often
    FINISHED = "finished"  # a producer's end; the run ends when every producer has


ACTIONS: dict[tuple[str, Ended], Action] = {
    ("coordinator", Ended.ASKED): Action.NOTHING,
    ("coordinator", Ended.CLEAN): Action.STOP_RUN,
    ("coordinator", Ended.FAILED): Action.STOP_RUN,
    ("worker", Ended.ASKED): Action.NOTHING,
    ("worker", Ended.CLEAN): Action.LEFT,
    ("worker", Ended.FAILED): Action.RESTART,
    ("producer", Ended.ASKED): Action.NOTHING,
    ("producer", Ended.CLEAN): Action.FINISHED,
    ("producer", Ended.FAILED): Action.FINISHED,
}


def action(kind: str, code: int, asked: bool) -> Action:
    """What to do about a `kind` node process that ended with `code` (negative: a signal)."""
    ended = Ended.ASKED if asked else Ended.CLEAN if code == 0 else Ended.FAILED
    return ACTIONS[(kind, ended)]


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff from `initial` to `maximum` seconds; at most `limit` restarts of one
    node within `window` seconds, then the run stops (exit 1)."""

    initial: float = 1.0
    maximum: float = 30.0
    limit: int = 10
    window: float = 300.0


class Restarts:
    """The restarts of each node within the policy's window."""

    def __init__(self, policy: RestartPolicy | None = None) -> None:
        self.policy = policy or RestartPolicy()
        self._times: dict[str, list[float]] = {}

    def delay(self, name: str, now: float) -> float | None:
        """Node `name` died at `now`: seconds to wait before starting it again, doubling with
        each restart still within the window, or None when it had `limit` of them (give up)."""
        policy = self.policy
        recent = [t for t in self._times.get(name, ()) if now - t < policy.window]
        self._times[name] = recent
        if len(recent) >= policy.limit:
            return None
        recent.append(now)
        return float(min(policy.initial * 2 ** (len(recent) - 1), policy.maximum))
