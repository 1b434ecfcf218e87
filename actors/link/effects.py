"""What the link's core asks its shell to do: small frozen values, performed in order."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class TimerKind(Enum):
    BEAT = "beat"  # fires BeatDue
    CONNECT = "connect"  # fires Connect (the end of a backoff)


@dataclass(frozen=True, slots=True)
class Open:
    """Close the current connection (if any) and open connection number `link_id`."""

    link_id: int


@dataclass(frozen=True, slots=True)
class Close:
    """Close the current connection."""


@dataclass(frozen=True, slots=True)
class Send:
    """Send one encoded frame on the current connection."""

    frame: bytes


@dataclass(frozen=True, slots=True)
class Arm:
    """(Re)start the `timer` to fire once after `delay` seconds, cancelling the one running."""

    timer: TimerKind
    delay: float


@dataclass(frozen=True, slots=True)
class Tell:
    """Tell the WorkerActor `message` (Jobs, Directive, Resumed)."""

    message: object


Effect = Open | Close | Send | Arm | Tell
