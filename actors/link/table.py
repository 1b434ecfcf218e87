"""The link's lifecycle as one transition table (PROTOCOL.md sections 3-4, worker side).

    disconnected --connect--> greeting --welcomed--> registering --registered--> registered
    greeting / registering / registered --lost/dropped--> backoff --connect--> greeting
    any state --leave--> leaving (for good: nothing reconnects a link that deregistered)

Every other event the link handles (a beat falling due, a reply, outcomes, the worker's
state) changes no state; the table says in which states each one acts. A pair missing from
the table cannot happen (a reply is only expected while its request is pending, and requests
die with the connection they were sent on) and raises.
"""

from __future__ import annotations

from enum import Enum


class LinkState(Enum):
    DISCONNECTED = "disconnected"  # built, not yet told to connect
    GREETING = "greeting"  # hello sent on a fresh connection
    REGISTERING = "registering"  # a worker_id issued, register sent
    REGISTERED = "registered"  # serving: beats, fetches, outcomes
    BACKOFF = "backoff"  # the coordinator was lost; a reconnect is timed
    LEAVING = "leaving"  # deregistered (graceful stop): what is in flight is answered


class LinkEvent(Enum):
    CONNECT = "connect"  # the node's first Connect, or the backoff timer
    WELCOMED = "welcomed"  # hello answered with a worker_id
    REGISTERED = "registered"  # register answered
    LOST = "lost"  # no reply in time, or not_registered / unknown_worker / not_leader
    DROPPED = "dropped"  # the transport saw the connection drop (several endpoints only)
    LEAVE = "leave"  # the node stops gracefully
    BEAT = "beat"  # the beat timer, or the node's BeatNow: report state and jobs
    REPLY = "reply"  # any other reply (beat, fetch, outcomes, ack/fail, deregister)
    OUTCOMES = "outcomes"  # the worker finished jobs
    WORKER = "worker"  # the worker's state changed, or an abandoned handler returned


S, E = LinkState, LinkEvent
IGNORED = None  # the event changes nothing in that state

# (state, event) -> the next state; the same state when the event is handled in place.
TRANSITIONS: dict[tuple[LinkState, LinkEvent], LinkState | None] = {
    (S.DISCONNECTED, E.CONNECT): S.GREETING,
    (S.DISCONNECTED, E.LEAVE): S.LEAVING,
    (S.DISCONNECTED, E.BEAT): IGNORED,
    (S.DISCONNECTED, E.OUTCOMES): S.DISCONNECTED,  # kept until registered
    (S.DISCONNECTED, E.WORKER): S.DISCONNECTED,
    (S.GREETING, E.WELCOMED): S.REGISTERING,
    (S.GREETING, E.LOST): S.BACKOFF,
    (S.GREETING, E.DROPPED): S.BACKOFF,
    (S.GREETING, E.LEAVE): S.LEAVING,
    (S.GREETING, E.BEAT): S.GREETING,  # only checks for silence and expired requests
    (S.GREETING, E.OUTCOMES): S.GREETING,
    (S.GREETING, E.WORKER): S.GREETING,
    (S.REGISTERING, E.REGISTERED): S.REGISTERED,
    (S.REGISTERING, E.LOST): S.BACKOFF,
    (S.REGISTERING, E.DROPPED): S.BACKOFF,
    (S.REGISTERING, E.LEAVE): S.LEAVING,
    (S.REGISTERING, E.BEAT): S.REGISTERING,
    (S.REGISTERING, E.REPLY): S.REGISTERING,
    (S.REGISTERING, E.OUTCOMES): S.REGISTERING,
    (S.REGISTERING, E.WORKER): S.REGISTERING,
    (S.REGISTERED, E.LOST): S.BACKOFF,
    (S.REGISTERED, E.DROPPED): S.BACKOFF,
    (S.REGISTERED, E.LEAVE): S.LEAVING,
    (S.REGISTERED, E.BEAT): S.REGISTERED,
    (S.REGISTERED, E.REPLY): S.REGISTERED,
    (S.REGISTERED, E.OUTCOMES): S.REGISTERED,
    (S.REGISTERED, E.WORKER): S.REGISTERED,
    (S.BACKOFF, E.CONNECT): S.GREETING,
    (S.BACKOFF, E.LEAVE): S.LEAVING,
    (S.BACKOFF, E.BEAT): IGNORED,
    (S.BACKOFF, E.DROPPED): IGNORED,  # the connection just closed for the loss, reported late
    (S.BACKOFF, E.OUTCOMES): S.BACKOFF,  # kept until registered again
    (S.BACKOFF, E.WORKER): S.BACKOFF,
    (S.LEAVING, E.CONNECT): IGNORED,
    (S.LEAVING, E.WELCOMED): IGNORED,  # a hello answered after we left: never register
    (S.LEAVING, E.REGISTERED): IGNORED,
    (S.LEAVING, E.LOST): IGNORED,
    (S.LEAVING, E.DROPPED): IGNORED,
    (S.LEAVING, E.LEAVE): IGNORED,
    (S.LEAVING, E.BEAT): IGNORED,
    (S.LEAVING, E.REPLY): S.LEAVING,  # the deregister's and any in-flight outcome's
    (S.LEAVING, E.OUTCOMES): S.LEAVING,  # kept, never sent: the session is over
    (S.LEAVING, E.WORKER): S.LEAVING,
}


class LinkTransitionError(RuntimeError):
    """An event the link's table does not allow in its state: a bug, not a network fault."""


def next_state(state: LinkState, event: LinkEvent) -> LinkState | None:
    """The state after `event`, or None when the event is ignored in `state`; raises when the
    table has no such pair."""
    try:
        return TRANSITIONS[(state, event)]
    except KeyError:
        raise LinkTransitionError(f"link cannot handle {event.value} when {state.value}") from None
