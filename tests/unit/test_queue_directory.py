"""QueueDirectory: queue actors started on first use, and the live worker profiles sent to
every queue, old and new, without ever telling a queue while its lock is held."""

from __future__ import annotations

import threading
from typing import Any

from actors.context import QueueDirectory
from actors.mail import RoutingUpdate
from actors.routing import WorkerProfile


class InlineQueue:
    """Stands in for a queue whose handler runs on the teller's thread (actors/inbox.py) and,
    like a queue holding jobs for a new queue, comes back to the directory for another one."""

    def __init__(self, name: str, workers: tuple[WorkerProfile, ...], directory: Any) -> None:
        self.name = name
        self.started_with = workers
        self.told: list[Any] = []
        self.directory = directory

    def tell(self, message: Any) -> None:
        self.told.append(message)
        self.directory.get(f"{self.name}-next")


def make_directory() -> tuple[QueueDirectory, dict[str, InlineQueue]]:
    started: dict[str, InlineQueue] = {}
    holder: list[QueueDirectory] = []

    def start(name: str, workers: tuple[WorkerProfile, ...]) -> Any:
        started[name] = InlineQueue(name, workers, holder[0])
        return started[name]

    holder.append(QueueDirectory(start, limit=100))
    return holder[0], started


def finishes(action: Any, seconds: float = 5.0) -> bool:
    thread = threading.Thread(target=action, daemon=True)
    thread.start()
    thread.join(seconds)
    return not thread.is_alive()


def test_publishing_profiles_to_a_queue_that_handles_them_inline_does_not_deadlock():
    directory, started = make_directory()
    directory.get("a")
    profiles = (WorkerProfile.build("w-1", ["a"], [], {}),)
    assert finishes(lambda: directory.publish(profiles))  # the lock was held while telling
    assert started["a"].told == [RoutingUpdate(profiles)]
    assert "a-next" in started


def test_a_queue_started_after_a_publish_starts_with_the_published_profiles():
    directory, started = make_directory()
    profiles = (WorkerProfile.build("w-1", ["b"], [], {}),)
    directory.publish(profiles)
    directory.get("b")
    assert started["b"].started_with == profiles
    assert started["b"].told == []  # nothing to tell: it knew them from the start


def test_the_directory_refuses_a_queue_past_its_limit():
    directory = QueueDirectory(lambda name, workers: object(), limit=1)  # type: ignore[arg-type,return-value]
    directory.get("a")
    try:
        directory.get("b")
    except LookupError as exc:
        assert "at most 1 queues" in str(exc)
    else:
        raise AssertionError("a second queue was allowed past the limit of one")
