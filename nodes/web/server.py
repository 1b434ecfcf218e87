"""`WebServer`: one ASGI app served by uvicorn on a background thread of its own (the dashboard,
the HTTP gateway).

The caller's thread makes the listening socket, so port 0 is resolved and a port in use raises
`OSError` there, before any thread starts; uvicorn then serves that socket in an event loop of
its own on the server's thread. It never touches signal handlers (the process's owner handles
SIGINT and SIGTERM and calls `stop()`), logs through `logging` only, warnings and up, and writes
no access log.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import socket
import threading
from collections.abc import Iterator

import uvicorn
from starlette.types import ASGIApp

log = logging.getLogger(__name__)

START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0  # past the graceful shutdown's own: its tick, the wait, the cancelling
GRACEFUL_SHUTDOWN_S = 1  # how long a request still running at stop() may take to finish
BACKLOG = 128
LIMIT_CONCURRENCY = 1000  # connections and requests at once; more are answered 503
HTTP_PARSER = "httptools" if importlib.util.find_spec("httptools") else "h11"  # the C one if there


class _ThreadServer(uvicorn.Server):
    """A uvicorn server that tells the starting thread when it listens, and leaves signals to
    the process: uvicorn only captures them on the main thread, this one never does."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()  # set once startup is over, whether it listens or not

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        try:
            await super().startup(sockets)
        finally:
            self.ready.set()


class WebServer:
    """Serves `app` on `host:port` (port 0: any free port) from `start()` to `stop()`.

    `name` names the thread and is sent as the `Server` header of every response.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, *, name: str) -> None:
        self.app = app
        self.host = host
        self.port = port
        self.name = name
        self._server: _ThreadServer | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def start(self) -> None:
        """Listen, then serve on a new thread; returns once uvicorn serves (port known).
        Raises OSError when it cannot listen, RuntimeError when uvicorn does not start."""
        if self._thread is not None:
            raise RuntimeError(f"{self.name} is already started")
        config = uvicorn.Config(
            self.app,
            loop="asyncio",
            http=HTTP_PARSER,
            ws="none",
            lifespan="off",
            log_config=None,
            log_level=logging.WARNING,
            access_log=False,
            proxy_headers=False,  # nothing stands in front: the peer's address is the client's
            server_header=False,
            headers=[("server", self.name)],
            limit_concurrency=LIMIT_CONCURRENCY,
            backlog=BACKLOG,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
        )
        config.load()  # a bad option fails here, in the caller's thread
        sock = _listen(self.host, self.port)
        self.port = sock.getsockname()[1]
        server = _ThreadServer(config)
        self._socket, self._server, self._failure = sock, server, None
        self._thread = threading.Thread(
            target=self._serve, args=(server, sock), name=self.name, daemon=True
        )
        self._thread.start()
        if not server.ready.wait(START_DEADLINE_S):
            self.stop()
            raise RuntimeError(f"{self.name} did not start within {START_DEADLINE_S:g} s")
        if not server.started:
            self.stop()  # joins the thread, which has recorded why
            raise RuntimeError(f"{self.name} failed to start: {self._failure!r}") from self._failure

    def _serve(self, server: _ThreadServer, sock: socket.socket) -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # uvicorn exits (SystemExit) when its startup fails
            self._failure = exc
            log.exception("%s stopped on an error", self.name)
        finally:
            server.ready.set()

    def stop(self) -> None:
        """Stop serving and free the port (idempotent). Requests still running get
        GRACEFUL_SHUTDOWN_S to finish; a thread still busy after STOP_DEADLINE_S is left
        behind (a daemon), with a warning."""
        server, thread, sock = self._server, self._thread, self._socket
        self._server = self._thread = self._socket = None
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(STOP_DEADLINE_S)
            if thread.is_alive():
                log.warning("%s did not stop within %g s", self.name, STOP_DEADLINE_S)
        if sock is not None:
            sock.close()  # uvicorn closes it on shutdown; not if it never got that far


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on `host:port` (IPv6 when `host` has a colon)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on accepted sockets whose
    # proto says TCP (they inherit it from this one). Without it a response written in two
    # parts (head, body) waits out the client's delayed ACK: about 40 ms a request.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        # Rebinding right after a stop must work, even with connections in TIME_WAIT; a port
        # another socket listens on is still refused.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except BaseException:
        sock.close()
        raise
    return sock
