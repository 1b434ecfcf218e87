"""Open a store from its URL: `memory`, or `sqlite:///relative.db` / `sqlite:////abs.db`."""

from __future__ import annotations

from actors.store.base import Store
from actors.store.memory import MemoryStore


def open_store(url: str) -> Store:
    """Build the store a config names; raise ValueError with the URL for anything else."""
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        from actors.store.sqlite import SqliteStore

        return SqliteStore(url.removeprefix("sqlite:///"))
    raise ValueError(f"unknown store {url!r}: use 'memory' or 'sqlite:///path.db'")
