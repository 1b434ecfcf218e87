"""HighAvailability: a coordinator over a database it shares with other coordinators.

The socket is bound at once and answers from the first moment: `not_leader` while standing
by (nodes/leadership/standby.py), the dispatcher while leading. The LeaseKeeper decides; this
class carries out its decisions on the coordinator: open the store under the new term and
start the actors (promote), route frames to them (serve), stop them and drop the store (step
down), and tell the event log and the metrics (the `leadership` event).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Protocol

from actors import events
from actors.leadership import Event, Role
from actors.store.lease import LOADING, STANDBY
from nodes.config.kinds import connect_address
from nodes.leadership.database import SharedDatabase
from nodes.leadership.keeper import LeaseKeeper
from nodes.leadership.standby import StandbyResponder, Switchboard
from nodes.leadership.warm import WarmStandby

if TYPE_CHECKING:
    from actors.base import Activity
    from actors.clock import Clock
    from actors.context import CoordinatorContext
    from actors.events import EventHub
    from actors.store.base import Store
    from transport.base import ServerTransport

log = logging.getLogger(__name__)
SETTLE_TIMEOUT_S = 60.0  # start() waits this long at most for its first poll (and promotion)
MEMBER_FRESH_TTLS = 3  # a standby unheard of for this many ttls is not listed in `stats`
CATCH_UP_TTLS = 1.0  # a standby reads the rows written since, every this many ttls


class Servable(Protocol):
    """What leadership drives of its coordinator (a `nodes.coordinator.Coordinator`)."""

    name: str
    instance: str
    advertise: str | None
    failover_timeout: float
    max_message_size: int
    clock: Clock
    activity: Activity
    events: EventHub
    ctx: CoordinatorContext | None
    wire: ServerTransport | None

    @property
    def address(self) -> str: ...

    def serve(self, store: Store) -> None:
        """Start the actors over `store` and build the dispatcher."""
        ...

    def unserve(self) -> None:
        """Stop the actors and close the store."""
        ...


class HighAvailability:
    """The keeper's host: turns leadership decisions into a serving or standing-by node."""

    def __init__(self, coordinator: Servable, database: SharedDatabase) -> None:
        self.coordinator = coordinator
        self.database = database
        self.endpoint = ""  # what peers are told to connect to: set once the socket is bound
        self.keeper: LeaseKeeper | None = None
        self.warm: WarmStandby | None = None
        self._stores: dict[int, Store] = {}  # term -> its store, while promoting or serving
        self._lock = threading.Lock()  # serializes promote / dismantle against each other

    def start(self) -> None:
        coordinator = self.coordinator
        wire = coordinator.wire
        assert wire is not None
        clock = coordinator.clock
        standby = StandbyResponder(
            wire.send, self.leader_endpoint, coordinator.instance, coordinator.max_message_size
        )
        self.switchboard = Switchboard(lambda: self.serving(clock.now()), standby)
        wire.start(self.switchboard)
        self.endpoint = coordinator.advertise or connect_address(coordinator.address)
        self.keeper = LeaseKeeper(
            self.database.lease(),
            self,
            name=coordinator.name,
            endpoint=self.endpoint,
            ttl=coordinator.failover_timeout,
            clock=clock,
            activity=coordinator.activity,
        )
        self.warm = WarmStandby(
            self.database,
            clock=clock,
            interval=coordinator.failover_timeout * CATCH_UP_TTLS,
            name=coordinator.name,
            activity=coordinator.activity,
        ).start()
        self.keeper.start()  # only once set: a promotion's thread reads it
        # Alone on the database it leads when start() returns; else it stands by at once.
        self.keeper.settled.wait(SETTLE_TIMEOUT_S)
        log.info(
            "coordinator %s standing by on %s (database %s)",
            coordinator.name,
            self.endpoint,
            self.database.name,
        )

    def stop(self, release: bool = True) -> None:
        if self.keeper is not None:
            self.keeper.stop(release=release)
        if self.warm is not None:
            self.warm.stop()

    # -- what peers and observers read -------------------------------------------------------

    def serving(self, now: float) -> bool:
        return self.keeper is not None and self.keeper.serving(now)

    def leader_endpoint(self) -> str | None:
        """Where the leader serves, for `not_leader` replies: None when unknown or lapsed."""
        keeper = self.keeper
        view = keeper.leader(self.coordinator.clock.now()) if keeper is not None else None
        return view.endpoint if view is not None else None

    def cluster(self) -> dict[str, Any]:
        """The `cluster` field of `stats` (docs/PROTOCOL.md, Extensions)."""
        keeper = self.keeper
        assert keeper is not None
        name, core, view = self.coordinator.name, keeper.core, keeper.view
        current = keeper.leader(self.coordinator.clock.now())
        if core.held is not None:
            leader = {"name": name, "endpoint": self.endpoint}
        elif current is not None:
            leader = {"name": current.holder, "endpoint": current.endpoint}
        else:
            leader = None
        fresh = core.ttl * MEMBER_FRESH_TTLS
        return {
            "name": name,
            "role": core.role.value,
            "term": core.term,
            "leader": leader,
            "standbys": [
                {
                    "name": m.name,
                    "endpoint": m.endpoint,
                    "seen_ago": round(m.seen_ago, 3),
                    "ready": m.role == STANDBY,
                }
                for m in (view.members if view is not None else ())
                if m.role in (STANDBY, LOADING) and m.name != name and m.seen_ago <= fresh
            ],
            "failover_timeout": core.ttl,
        }

    # -- the keeper's Host ---------------------------------------------------------------------

    def promote(self, term: int) -> None:
        """Open the store of `term` over the standby's copy, caught up now that the term is
        ours (every batch of the term before has landed or never will), or loaded anew."""
        keeper, warm = self.keeper, self.warm
        assert keeper is not None and warm is not None
        follower = warm.take()
        try:
            if follower is None:
                log.info("term %d: no standby copy yet; loading every job", term)
            else:
                read = follower.catch_up(self.coordinator.clock.now())
                log.info("term %d: taking over the standby copy (%d rows read since)", term, read)
            store = self.database.open(
                term, lambda: keeper.post(Event.DEPOSED, term=term), follower
            )
        except BaseException:
            if follower is not None:
                follower.close()
            warm.resume()
            raise
        with self._lock:
            self._stores[term] = store
            self.coordinator.serve(store)

    def serve(self, term: int) -> None:
        self.switchboard.dispatcher = self.coordinator.dispatcher

    def ready(self) -> bool:
        return self.warm is not None and self.warm.ready()

    def step_down(self, term: int, reason: str) -> None:
        self.switchboard.dispatcher = None
        self.dismantle(term)

    def dismantle(self, term: int) -> None:
        with self._lock:
            store = self._stores.pop(term, None)
            if store is None:
                return  # still loading: dismantled when its promotion reports back
            if self.coordinator.ctx is not None and self.coordinator.ctx.store is store:
                self.coordinator.unserve()
            else:
                store.close()
        if self.warm is not None:
            self.warm.resume()

    def changed(self, before: Role, after: Role, term: int, reason: str) -> None:
        """A role change: logged (JSON logs carry the fields) and published as an event."""
        self.coordinator.events.emit(
            events.LEADERSHIP,
            coordinator=self.coordinator.name,
            role=after.value,
            previous=before.value,
            term=term,
            reason=reason,
            endpoint=self.endpoint,
        )
