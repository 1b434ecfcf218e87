"""An actor inbox that lets an idle actor handle a tell on the sender's thread.

A hand-off between two threads costs 20 to 100 us on a 2-core VM (a futex wake, a context
switch, a GIL hand-off), and an idle enqueue-to-result round used to cross about fifteen of
them. So a `tell` to an actor that is idle (nothing queued, nothing being handled) runs at
once on the sender's thread, under the actor's run lock. That is a schedule the threaded actor
could have produced anyway (the sender paused right after its put while the actor ran), so the
actor rules hold: one message at a time, each sender's messages in the order it sent them.

Everything that handles a message holds `run_lock`: the actor's own thread, or a sender
running a tell inline. Only a holder takes messages off the queue, so a sender that finds the
lock free and the queue empty knows nothing is ahead of its message. A holder also handles the
tells that arrived while it held the lock (a reply from an actor it told, say) before letting
go, up to `DRAIN_LIMIT`, so a short conversation between two actors stays on one thread.

Asks (`reply_to` set: node start and stop, tests) are only ever handled on the actor's own
thread, and so are `on_start` and `on_stop`; a holder stops draining at the first one. An actor
that exists to take slow work off its senders' threads opts out (`inline=False`).

The rule this asks of callers: never tell while holding a lock that the receiving actor (or
any actor it tells) might take, or the inline handler could wait on its own thread.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable
from typing import Any

# Tells a holder handles from the queue before it lets go; the actor's thread takes the rest.
# Bounded so that the I/O thread, say, never ends up doing a busy actor's work for long.
DRAIN_LIMIT = 64

Receive = Callable[[Any], None]


class Letter:
    """A message posted to an inbox directly (`defer`); pykka's own envelopes, made by
    `ActorRef.tell` and `ask`, have the same two fields."""

    __slots__ = ("message", "reply_to")

    def __init__(self, message: Any) -> None:
        self.message = message
        self.reply_to = None


class InlineInbox:
    """The inbox of a `CorralActor` (pykka's `put`/`get`/`empty` plus the inline path)."""

    __slots__ = (
        "_holder",
        "_inline",
        "_messages",
        "_receive",
        "_signalled",
        "_stopped",
        "_wakeups",
        "run_lock",
    )

    def __init__(self, *, inline: bool = True) -> None:
        self._inline = inline
        self._messages: collections.deque[Any] = collections.deque()  # envelopes
        # One token per burst of queued envelopes wakes the actor's thread (like the wake byte
        # of transport/_zmq_loop.py); it clears `_signalled` before it drains.
        self._wakeups: queue.SimpleQueue[None] = queue.SimpleQueue()
        self._signalled = False
        # Held from creation until the actor's thread has run on_start.
        self.run_lock = threading.Lock()
        self.run_lock.acquire()
        self._holder = 0  # the thread id of the run lock's holder while it handles messages
        self._receive: Receive | None = None
        self._stopped: Callable[[], bool] = lambda: False

    def bind(self, receive: Receive, stopped: Callable[[], bool]) -> None:
        """Set how an envelope is handled and how to tell the actor has stopped."""
        self._receive = receive
        self._stopped = stopped

    def put(self, envelope: Any) -> None:
        """Handle a tell now if the actor is idle, else queue the envelope and wake the actor."""
        if envelope.reply_to is None:
            if self._holder == threading.get_ident():
                self._messages.append(envelope)  # told from its own handler: drained below
                return
            if self._inline and self.run_lock.acquire(blocking=False):
                try:
                    if not self._messages and not self._stopped():
                        self._hold(envelope)
                        return
                finally:
                    self.run_lock.release()
        self.defer(envelope)

    def defer(self, envelope: Any) -> None:
        """Leave the envelope to the actor's own thread (or a holder), whatever its state."""
        self._messages.append(envelope)
        if not self._signalled:
            self._signalled = True
            self._wakeups.put(None)

    def wake(self) -> None:
        """Wake the actor's thread whatever is queued (it has been stopped by a handler that
        ran inline, and must leave its loop)."""
        self._wakeups.put(None)

    def _hold(self, envelope: Any) -> None:
        """Under the run lock, on the sender's thread: this tell, then the tells it caused."""
        assert self._receive is not None
        self._holder = threading.get_ident()
        try:
            self._receive(envelope)
            messages = self._messages
            for _ in range(DRAIN_LIMIT):
                if not messages or messages[0].reply_to is not None or self._stopped():
                    break
                self._receive(messages.popleft())
        finally:
            self._holder = 0
        if self._messages and not self._signalled:
            self._signalled = True  # what is left (an ask, or past the limit) is the thread's
            self._wakeups.put(None)

    def run_queued(self) -> None:
        """The actor's thread: wait for a wake-up, then handle everything queued."""
        self._wakeups.get()
        self._signalled = False  # before draining: a later put wakes us again
        assert self._receive is not None
        with self.run_lock:
            self._holder = threading.get_ident()
            messages = self._messages
            try:
                while messages and not self._stopped():
                    self._receive(messages.popleft())
            finally:
                self._holder = 0

    def get(self) -> Any:
        """The next unhandled envelope (teardown only; raises IndexError when empty)."""
        return self._messages.popleft()

    def empty(self) -> bool:
        return not self._messages
