"""Request/reply on asyncio: many requests in flight on one DEALER, matched to replies by `rid`.

`AsyncLink` is one connection to one coordinator, used from one event loop: a task reads every
reply and resolves the future waiting on its `rid`, so a thousand coroutines can share it
(pyzmq's asyncio sockets are not for sharing across threads or loops, and are not here).
`AsyncRequester` sends each request to the leader among several coordinators (a standby's
`not_leader` names it), as `transport.failover` does for threads.

A request that gets no reply within its timeout returns None. Its late reply, if one comes, is
dropped: rids are never reused on a link.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import zmq
import zmq.asyncio
from zmq.utils.monitor import parse_monitor_message

from transport import codec
from transport._zmq_loop import LOST_EVENTS
from transport.endpoints import Endpoints
from transport.zmq import connected_dealer

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

log = logging.getLogger(__name__)

Reply = dict[str, Any]
ATTEMPT_TIMEOUT_S = 3.0  # one coordinator's share of a request's time, as in transport.failover
ROUND_PAUSE_S = 0.2


class AsyncLink:
    """One DEALER to `address`, opened on first use, for coroutines of one event loop."""

    def __init__(
        self,
        address: str,
        context: zmq.asyncio.Context,
        *,
        curve: CurveClientConfig | None = None,
        watch: bool = False,
    ) -> None:
        """`watch` (a client with other coordinators to fail over to): fast ZMTP heartbeats,
        and a dropped or refused connection ends the requests waiting on it at once (None),
        as transport/requesters.py does for threads. Not for a worker session, which is bound
        to its connection: the socket is replaced after a drop."""
        self.address = address
        self._context = context
        self._curve = curve
        self._watch = watch
        self._socket: zmq.asyncio.Socket | None = None
        self._tasks: list[asyncio.Task[None]] = []  # the socket's reader (and watcher)
        self._waiting: dict[int, asyncio.Future[Reply | None]] = {}
        self._rids = itertools.count(1)
        self.closed = False

    async def request(self, body: Reply, timeout: float) -> Reply | None:
        """Send `body` (its `rid` is set here); the reply, or None after `timeout` seconds."""
        if self.closed:
            return None
        socket = self._open()
        rid = next(self._rids)
        future: asyncio.Future[Reply | None] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            await socket.send(codec.encode({**body, "rid": rid}))
            return await asyncio.wait_for(future, timeout)
        except (TimeoutError, zmq.ZMQError):
            return None
        finally:
            self._waiting.pop(rid, None)

    def _open(self) -> zmq.asyncio.Socket:
        if self._socket is None:
            socket: zmq.asyncio.Socket = connected_dealer(
                self._context,  # type: ignore[arg-type]
                self.address,
                self._curve,
                watched=self._watch,
            )
            self._socket = socket
            loop = asyncio.get_running_loop()
            self._tasks = [loop.create_task(self._read(socket))]
            if self._watch:
                monitor = socket.get_monitor_socket(LOST_EVENTS)
                self._tasks.append(loop.create_task(self._watch_lost(socket, monitor)))
        return self._socket

    async def _watch_lost(self, socket: zmq.asyncio.Socket, monitor: zmq.asyncio.Socket) -> None:
        """End the waiting requests once the connection drops or is refused; the socket goes
        too (LINGER 0), so a request it still queues can never run later."""
        try:
            while True:
                event = parse_monitor_message(await monitor.recv_multipart())
                if event["event"] & LOST_EVENTS:
                    break
        except (zmq.ZMQError, asyncio.CancelledError):
            return
        finally:
            socket.disable_monitor()
            monitor.close(linger=0)
        if self._socket is socket:
            self._socket = None
            for task in self._tasks:
                if task is not asyncio.current_task():
                    task.cancel()
            socket.close(linger=0)
        for future in self._waiting.values():
            if not future.done():
                future.set_result(None)

    async def _read(self, socket: zmq.asyncio.Socket) -> None:
        while True:
            try:
                frame = await socket.recv()
            except (zmq.ZMQError, asyncio.CancelledError):
                return
            try:
                reply = codec.decode(frame)
            except Exception:  # a bad reply is dropped, never fatal
                log.warning("undecodable reply from %s dropped", self.address)
                continue
            future = self._waiting.pop(reply.get("rid"), None)  # type: ignore[arg-type]
            if future is not None and not future.done():
                future.set_result(reply)

    async def close(self) -> None:
        """Close the socket; requests still waiting get None."""
        self.closed = True
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._socket is not None:
            self._socket.close(linger=0)
        for future in self._waiting.values():
            if not future.done():
                future.cancel()


class AsyncRequester:
    """Requests to the leader among `addresses` (one link each), found again when it moves."""

    def __init__(
        self,
        addresses: Sequence[str],
        context: zmq.asyncio.Context,
        *,
        curve: CurveClientConfig | None = None,
        attempt_timeout: float = ATTEMPT_TIMEOUT_S,
        watch: bool = False,
    ) -> None:
        """`watch`: pass a dropped or refused coordinator at once (AsyncLink), for clients."""
        self._endpoints: Endpoints[AsyncLink] = Endpoints.of(
            addresses, lambda address: AsyncLink(address, context, curve=curve, watch=watch)
        )
        self._attempt_timeout = attempt_timeout

    @property
    def address(self) -> str:
        return self._endpoints.address

    async def request(self, body: Reply, timeout: float) -> Reply | None:
        """The leader's reply, or the last answer (None or `not_leader`) when time runs out."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        single = len(self._endpoints) == 1
        attempt = self._attempt_timeout + float(body.get("wait", 0.0))
        failed, last = 0, None
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return last
            link = self._endpoints.current
            last = await link.request(body, remaining if single else min(attempt, remaining))
            if single or not _refused(last):
                return last
            self._endpoints.advance(last.get("leader") if last else None)
            failed += 1
            if failed % len(self._endpoints) == 0:
                await asyncio.sleep(min(ROUND_PAUSE_S, max(0.0, deadline - loop.time())))

    async def close(self) -> None:
        for link in self._endpoints.reaches:
            await link.close()


@dataclass(frozen=True)
class Reach:
    """Where the coordinators are and how to reach them; each requester made from it has
    links of its own (a worker session is bound to its connection)."""

    addresses: Sequence[str]
    context: zmq.asyncio.Context
    curve: CurveClientConfig | None = None

    def requester(self) -> AsyncRequester:
        return AsyncRequester(self.addresses, self.context, curve=self.curve)


def _refused(reply: Reply | None) -> bool:
    """No answer, or a standby's: try another coordinator."""
    return reply is None or (reply.get("type") == "error" and reply.get("code") == "not_leader")
