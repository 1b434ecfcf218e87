"""Endpoints: the coordinators a peer may reach, in order, and the one it uses now.

With PostgreSQL several coordinators share one database; one leads and the others answer
`not_leader` (with the leader's endpoint when they know it). A worker or client holds them
all and moves on when its coordinator is lost or not the leader: to the hinted one when the
hint names one of them, else to the next in order. Each endpoint carries what reaches it, a
`Connector` for a worker's link or a `Requester` for a client, so the rotation is written
once for both. Pure: no sockets, no clock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
U = TypeVar("U")


class Endpoints(Generic[T]):
    """Ordered `(address, reach)` pairs and the current one (the first, at the start)."""

    def __init__(self, pairs: Iterable[tuple[str, T]]) -> None:
        self._pairs = tuple(pairs)
        if not self._pairs:
            raise ValueError("at least one coordinator endpoint is needed")
        self.index = 0

    @classmethod
    def of(cls, addresses: Sequence[str], reach: Callable[[str], T]) -> Endpoints[T]:
        """One endpoint per address, `reach(address)` making what reaches it."""
        return cls((address, reach(address)) for address in addresses)

    def map(self, reach: Callable[[str, T], U]) -> Endpoints[U]:
        """The same addresses, each reached by `reach(address, old)`; the same current one."""
        mapped = Endpoints((address, reach(address, old)) for address, old in self._pairs)
        mapped.index = self.index
        return mapped

    def __len__(self) -> int:
        return len(self._pairs)

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(address for address, _ in self._pairs)

    @property
    def reaches(self) -> tuple[T, ...]:
        """What reaches each endpoint, in order."""
        return tuple(reach for _, reach in self._pairs)

    @property
    def address(self) -> str:
        return self._pairs[self.index][0]

    @property
    def current(self) -> T:
        return self._pairs[self.index][1]

    def advance(self, hint: str | None = None) -> str:
        """Move to the endpoint `hint` names when it is one of ours (a standby's `leader`),
        else to the next in order; returns the new current address."""
        addresses = self.addresses
        if hint is not None and hint in addresses and hint != self.address:
            self.index = addresses.index(hint)
        else:
            self.index = (self.index + 1) % len(self._pairs)
        return self.address


def addresses_of(connect: str | Sequence[str]) -> tuple[str, ...]:
    """`connect` as given to a node: one endpoint, or a list of them (in order)."""
    return (connect,) if isinstance(connect, str) else tuple(connect)
