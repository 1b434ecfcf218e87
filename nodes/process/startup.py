"""How the `corral run` runner knows its nodes started: its own coordinator answers (not another
one bound to the same address), and how many workers have registered."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from actors.clock import Clock
from nodes.client import Client
from nodes.config.kinds import CoordinatorConfig
from nodes.process.child import Child
from transport.errors import CorralError

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

COORDINATOR_READY_TIMEOUT_S = 15.0
PING_TIMEOUT_S = 0.5


class Failed(Exception):
    """The run cannot go on; the message is the one-line reason."""


def await_coordinator(
    node: CoordinatorConfig,
    child: Child,
    curve: CurveClientConfig | None,
    pause: Callable[[], None],
    clock: Clock,
) -> None:
    """Return once `child` answers `ping {identify}` with the instance the runner gave it.

    A pong from another coordinator on the address (a second run of the same file) does not
    count; `child`'s end, or no answer within COORDINATOR_READY_TIMEOUT_S, raises Failed with
    the reason. `pause` waits between pings (and raises on a stop signal).
    """
    deadline = clock.now() + COORDINATOR_READY_TIMEOUT_S
    address = node.connect_address
    with Client(address, timeout=PING_TIMEOUT_S, curve=curve) as client:
        while True:
            answer = instance_answering(client)
            if answer == child.instance:
                return
            if not child.alive:
                if answer is not None:
                    raise Failed(
                        f"coordinator {node.name!r}: cannot bind {node.bind}: address "
                        "already in use (another corral run?)"
                    )
                raise Failed(
                    f"coordinator {node.name!r} exited ({child.ended()}) before answering "
                    f"on {address}"
                )
            if clock.now() > deadline:
                other = " (another coordinator answers there)" if answer else ""
                raise Failed(
                    f"coordinator {node.name!r} did not answer on {address} within "
                    f"{COORDINATOR_READY_TIMEOUT_S:.0f} s{other}"
                )
            pause()


def instance_answering(client: Client) -> str | None:
    """The instance of whichever coordinator answers, "" if it does not say, None if none."""
    try:
        return str(client.request("ping", identify=True).get("instance", ""))
    except CorralError:
        return None


def live_workers(node: CoordinatorConfig, curve: CurveClientConfig | None) -> int:
    """How many workers coordinator `node` counts as not terminated (0 when it does not answer)."""
    try:
        with Client(node.connect_address, timeout=PING_TIMEOUT_S, curve=curve) as client:
            workers = client.stats()["workers"]
    except CorralError:
        return 0
    return sum(1 for worker in workers if worker["state"] != "terminated")
