"""Paused queues: a paused queue takes enqueues but hands out no job until it is resumed.

The state is one store setting per paused queue (actors.store.base.Store.settings), so it is
durable in every store and outlives a restart or a failover. The queue's actor owns it
(queue_actor.QueueActor, `SetPaused`); `stats` reads it from the store.
"""

from __future__ import annotations

PREFIX = "paused:"
PAUSED = b"1"  # the value of a paused queue's setting (a resumed queue has none)


def key(queue: str) -> str:
    """The setting that says `queue` is paused."""
    return PREFIX + queue


def paused_queues(settings: dict[str, bytes]) -> list[str]:
    """The paused queues among a store's settings, sorted."""
    return sorted(name.removeprefix(PREFIX) for name in settings if name.startswith(PREFIX))
