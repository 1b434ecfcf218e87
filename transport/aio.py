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

from transport import codec
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
    ) -> None:
        self.address = address
        self._context = context
        self._curve = curve
        self._socket: zmq.asyncio.Socket | None = None
        self._reader: asyncio.Task[None] | None = None
        self._waiting: dict[int, asyncio.Future[Reply]] = {}
        self._rids = itertools.count(1)
        self.closed = False

    async def request(self, body: Reply, timeout: float) -> Reply | None:
        """Send `body` (its `rid` is set here); the reply, or None after `timeout` seconds."""
        if self.closed:
            return None
        socket = self._open()
        rid = next(self._rids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
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
            socket = connected_dealer(self._context, self.address, self._curve)  # type: ignore[arg-type]
            self._socket = socket  # type: ignore[assignment]
            self._reader = asyncio.get_running_loop().create_task(self._read())
        assert self._socket is not None
        return self._socket

    async def _read(self) -> None:
        assert self._socket is not None
        while True:
            try:
                frame = await self._socket.recv()
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
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
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
    ) -> None:
        self._endpoints: Endpoints[AsyncLink] = Endpoints.of(
            addresses, lambda address: AsyncLink(address, context, curve=curve)
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
