"""WarmStandby: while a coordinator stands by, a copy of the jobs kept current on a thread.

It loads the jobs once (actors/store/follower.py), then every `interval` reads the rows
written since. A promotion takes the copy (`take`), catches it up under its new term and
opens the store over it: with a million jobs queued, a takeover then reads seconds of changes
instead of every job (bench/takeover.py). While the coordinator leads the copy is the store's
index; when its term ends, `resume` loads a new one (the old index may hold changes that
never landed).

Reads run on this thread, never on the lease keeper's, so a slow read never delays a lease
call. With an `activity` (simulation) each queued read counts as work.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING

from actors.base import Activity, Untracked
from transport.errors import CorralError

if TYPE_CHECKING:
    from actors.clock import Clock, Timer
    from actors.store.follower import Follower
    from nodes.leadership.database import SharedDatabase

log = logging.getLogger(__name__)
STOP_TIMEOUT_S = 30.0


class WarmStandby:
    """Keeps a Follower of `database` current while the coordinator is not leading."""

    def __init__(
        self,
        database: SharedDatabase,
        *,
        clock: Clock,
        interval: float,
        name: str,
        activity: Activity | None = None,
    ) -> None:
        self.database = database
        self.clock = clock
        self.interval = interval
        self._activity = activity or Untracked()
        self._follower: Follower | None = None
        self._following = True  # False from a promotion's take() until resume()
        self._lock = threading.Lock()  # held by a load, a catch-up, take() and stop()
        self._events: queue.SimpleQueue[bool] = queue.SimpleQueue()  # True: refresh, False: end
        self._timer: Timer | None = None
        self._trouble: str | None = None  # the last failure logged, until a read works
        self._thread = threading.Thread(target=self._run, name=f"warm-{name}", daemon=True)

    def start(self) -> WarmStandby:
        self._post(True)
        self._thread.start()
        return self

    def ready(self) -> bool:
        """Whether the copy is loaded (a promotion would only catch it up)."""
        return self._follower is not None

    def take(self) -> Follower | None:
        """Stop following and hand over the copy (None if none is loaded). Waits for a load or
        a catch-up in progress: the copy it makes is worth more than a load begun anew."""
        with self._lock:
            self._following = False
            follower, self._follower = self._follower, None
            return follower

    def resume(self) -> None:
        """Follow again, from a new load: the coordinator stands by anew."""
        with self._lock:
            self._following = True
        self._post(True)

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        self._post(False)
        if self._thread.is_alive():
            self._thread.join(timeout)
        with self._lock:
            self._following = False
            if self._timer is not None:
                self._timer.cancel()
            if self._follower is not None:
                self._follower.close()
                self._follower = None

    def _post(self, refresh: bool) -> None:
        self._activity.begin()
        self._events.put(refresh)

    def _run(self) -> None:
        while True:
            refresh = self._events.get()
            try:
                if refresh:
                    self._refresh()
            except Exception:
                log.exception("standby copy: a read failed")
            finally:
                self._activity.end()
            if not refresh:
                return

    def _refresh(self) -> None:
        with self._lock:
            if not self._following:
                return  # leading: the next resume() starts over
            try:
                self._read()
            except CorralError as exc:
                if exc.message != self._trouble:
                    log.warning("standby copy: %s; retrying in %.1f s", exc.message, self.interval)
                    self._trouble = exc.message
            else:
                if self._trouble is not None:
                    log.info("standby copy: the database is readable again")
                    self._trouble = None
            if self._timer is not None:
                self._timer.cancel()
            self._timer = self.clock.call_later(self.interval, lambda: self._post(True))

    def _read(self) -> None:
        """Load the copy if there is none, else catch it up."""
        if self._follower is not None:
            self._follower.catch_up(self.clock.now())
            return
        began = time.perf_counter()
        self._follower = self.database.follow()
        log.info(
            "standby copy of %s loaded: %d jobs in %.1f s",
            self.database.name,
            sum(sum(by_state.values()) for by_state in self._follower.index.counts().values()),
            time.perf_counter() - began,
        )
