"""The base every corral actor shares: typed message dispatch, crash-proof handlers, and an
activity count that lets a simulation run the whole system to quiescence."""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any, ClassVar

import pykka
from pykka.messages import _ActorStop  # private: the pin in pyproject.toml holds it

from actors.inbox import InlineInbox, Letter

log = logging.getLogger(__name__)


class Activity:
    """Counts messages in flight plus work in progress across a node or a whole cluster.

    Every `Mailbox.tell` adds one and the receiving actor removes it after handling, so
    `wait_idle()` returns only when no actor has anything left to do. Simulation tests call it
    between deliveries to make each step deterministic.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0

    def begin(self) -> None:
        with self._cond:
            self._busy += 1

    def end(self) -> None:
        with self._cond:
            self._busy -= 1
            if self._busy == 0:
                self._cond.notify_all()

    @property
    def busy(self) -> int:
        return self._busy

    def wait_idle(self, timeout: float) -> bool:
        """Block until nothing is in flight; False if `timeout` (real seconds) ran out."""
        with self._cond:
            return self._cond.wait_for(lambda: self._busy == 0, timeout)


class Untracked(Activity):
    """The production Activity: counting every message costs a lock round trip per tell that
    only a simulation needs, so real nodes skip it."""

    def begin(self) -> None:
        pass

    def end(self) -> None:
        pass

    def wait_idle(self, timeout: float) -> bool:
        raise RuntimeError("wait_idle needs a counting Activity (simulation only)")


class Mailbox:
    """A tell-only handle on an actor that keeps the activity count honest."""

    __slots__ = ("_activity", "_ref")

    def __init__(self, ref: pykka.ActorRef[Any], activity: Activity) -> None:
        self._ref = ref
        self._activity = activity

    def tell(self, message: object) -> None:
        self._activity.begin()
        try:
            self._ref.tell(message)
        except pykka.ActorDeadError:
            self._activity.end()
            log.debug("dropped %s for a stopped actor", type(message).__name__)

    def post(self, message: object) -> None:
        """Like `tell`, but never handled on this thread: the actor's own thread takes it.

        For many threads telling one actor at once (a worker's handler pool): run inline, they
        would take turns at its run lock, and what queues behind a busy actor is what gets
        handled in one go.
        """
        self._activity.begin()
        if self._ref.is_alive():
            self._ref.actor_inbox.defer(Letter(message))  # type: ignore[attr-defined]
        else:
            self._activity.end()
            log.debug("dropped %s for a stopped actor", type(message).__name__)

    def stop(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self._ref.stop(block=True, timeout=timeout)

    @property
    def alive(self) -> bool:
        return self._ref.is_alive()


class CorralActor(pykka.ThreadingActor):
    """Dispatches each message to `handlers()[type(message)]`.

    A handler that raises an `Exception` is logged and the actor lives on: one bad message must
    never stop a queue or the worker supervisor (pykka would otherwise stop an actor on an
    exception from a `tell`). A `BaseException` that is not an `Exception` (`SystemExit`,
    `KeyboardInterrupt`) gets pykka's own answer instead: see `_halt`.

    The pykka members overridden here and in actors/inbox.py are private; the pin in
    pyproject.toml and tests/unit/test_pykka_contract.py hold them to the series they were
    written against.
    """

    def __init__(self, activity: Activity) -> None:
        super().__init__()
        self.activity = activity
        self._halted = False  # a handler raised a BaseException: see `_halt`
        self.actor_inbox.bind(self._receive_envelope, self.actor_stopped.is_set)
        self._handlers: dict[type, Callable[[Any], None]] = self.handlers()

    # An idle actor handles a tell on the sender's thread (actors/inbox.py): most of an idle
    # job's actor hops cost no thread hand-off at all. False for an actor that exists to take
    # slow work off its senders' threads (the ListingActor's store walks).
    inline_tells: ClassVar[bool] = True

    @classmethod
    def _create_actor_inbox(cls) -> Any:
        return InlineInbox(inline=cls.inline_tells)

    def _actor_loop_setup(self) -> None:
        try:
            super()._actor_loop_setup()
        finally:
            self.actor_inbox.run_lock.release()  # senders may now run tells inline

    def _actor_loop_running(self) -> None:
        while not self.actor_stopped.is_set():
            self.actor_inbox.run_queued()
        if self._halted:
            # The rest of pykka's answer to a BaseException, on the actor's own thread (the
            # handler may have run inline on a sender's): on_stop, then every other actor.
            try:
                self.on_stop()
            except Exception:
                self._handle_failure(*sys.exc_info())
            pykka.ActorRegistry.stop_all()

    def _receive_envelope(self, envelope: Any) -> None:
        """Handle one envelope, on whichever thread holds the run lock."""
        try:
            response = self._handle_receive(envelope.message)
        except Exception:
            if envelope.reply_to is None:
                log.exception("%s failed on %s", type(self).__name__, envelope.message)
            else:
                envelope.reply_to.set_exception()
            return
        except BaseException:
            self._halt(envelope)
            return
        if envelope.reply_to is not None:
            envelope.reply_to.set(response)

    def _halt(self, envelope: Any) -> None:
        """pykka 4.5's answer to a BaseException in a handler (`Actor._actor_loop_running`):
        stop this actor without handling the rest of its inbox, then stop every other actor.

        Here it may be raised inline on a sender's thread, so the sender is not interrupted:
        the actor is marked stopped at once and its own thread, woken, runs `on_stop` and stops
        the others. One difference from pykka: an ask gets the exception, where pykka leaves
        its asker waiting for ever.
        """
        error = sys.exc_info()[1]
        log.error("%r in %s: stopping all actors", error, type(self).__name__, exc_info=True)
        if envelope.reply_to is not None:
            envelope.reply_to.set_exception()
        self._halted = True
        pykka.ActorRegistry.unregister(self.actor_ref)
        self.actor_stopped.set()
        self.actor_inbox.wake()

    def handlers(self) -> dict[type, Callable[[Any], None]]:
        raise NotImplementedError

    def mailbox(self) -> Mailbox:
        return Mailbox(self.actor_ref, self.activity)

    def on_receive(self, message: Any) -> Any:
        try:
            handler = self._handlers.get(type(message))
            if handler is None:
                log.error("%s got an unknown message %r", type(self).__name__, message)
            else:
                handler(message)
                self.after_message()
        except Exception:
            log.exception("%s failed on %s", type(self).__name__, type(message).__name__)
            self.on_handler_error(message)
        finally:
            self.activity.end()
        return None

    def after_message(self) -> None:
        """Hook: runs after each handled message, still counted as activity."""

    def on_handler_error(self, message: Any) -> None:
        """Hook: e.g. answer the requester with `internal`."""

    def _actor_loop_teardown(self) -> None:
        # Tells still queued when the actor stops are never handled: settle their count so a
        # simulation that killed this actor can still reach quiescence. Asks get what pykka's
        # own teardown gives them: None for a stop, ActorDeadError for anything else.
        while not self.actor_inbox.empty():
            envelope = self.actor_inbox.get()
            if envelope.reply_to is None:
                self.activity.end()
            elif isinstance(envelope.message, _ActorStop):
                envelope.reply_to.set(None)
            else:
                dead = pykka.ActorDeadError(f"{self.actor_ref} stopped before handling the message")
                envelope.reply_to.set_exception((pykka.ActorDeadError, dead, None))


def start(actor_class: type[CorralActor], activity: Activity, *args: Any) -> Mailbox:
    """Start an actor (its first constructor argument is the Activity) and return its Mailbox."""
    return Mailbox(actor_class.start(activity, *args), activity)
