"""Job storage behind one small interface: `memory` for tests and simulation, `sqlite` durable,
`postgres` shared by coordinators that take turns by a lease (`lease`; `shared` stands in for
that database in simulation)."""

from actors.store.base import Store
from actors.store.memory import MemoryStore

__all__ = ["MemoryStore", "Store"]
