"""Job storage behind one small interface: `memory` for tests and simulation, `sqlite` durable."""

from actors.store.base import Store
from actors.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
