"""`nodes.web.server.WebServer`, the runner under the dashboard and the gateway: a real uvicorn
on a thread of its own, asked over real sockets with httpx.

No test sleeps: `start()` returns once the server listens and `stop()` once its thread ended.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from nodes.web.server import WebServer

NAME = "corral-test-web"
HTTP_TIMEOUT_S = 5.0


def hello(request: Request) -> PlainTextResponse:
    return PlainTextResponse(f"hello {request.query_params.get('who', 'you')}")


APP = Starlette(routes=[Route("/hello", hello)])


def running(name: str = NAME) -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == name]


@pytest.fixture
def server() -> Iterator[WebServer]:
    made = WebServer(APP, "127.0.0.1", 0, name=NAME)
    made.start()
    yield made
    made.stop()


def test_it_binds_port_zero_and_serves_the_app_before_start_returns(server: WebServer) -> None:
    assert server.port != 0
    assert server.url == f"http://127.0.0.1:{server.port}/"
    reply = httpx.get(server.url + "hello?who=corral", timeout=HTTP_TIMEOUT_S)
    assert (reply.status_code, reply.text) == (200, "hello corral")
    assert reply.headers["server"] == NAME
    assert httpx.get(server.url + "nope", timeout=HTTP_TIMEOUT_S).status_code == 404


def test_it_leaves_the_process_s_signal_handlers_alone() -> None:
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = WebServer(APP, "127.0.0.1", 0, name=NAME)
    server.start()
    try:
        assert {sig: signal.getsignal(sig) for sig in before} == before
    finally:
        server.stop()
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_port_in_use_raises_os_error_from_start_and_starts_no_thread() -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        server = WebServer(APP, "127.0.0.1", port, name=NAME)
        with pytest.raises(OSError, match="in use"):
            server.start()
    assert running() == []
    server.stop()  # nothing to stop: still fine


def test_stop_is_idempotent_ends_the_thread_and_frees_the_port() -> None:
    server = WebServer(APP, "127.0.0.1", 0, name=NAME)
    server.start()
    port = server.port
    with httpx.Client(timeout=HTTP_TIMEOUT_S) as http:
        assert http.get(server.url + "hello").status_code == 200  # a kept-alive connection
        server.stop()
        server.stop()
        assert running() == []
        with pytest.raises(httpx.ConnectError):
            http.get(server.url + "hello")

    again = WebServer(APP, "127.0.0.1", port, name=NAME)
    again.start()  # the same port, at once: the first server let go of it
    try:
        reply = httpx.get(again.url + "hello", timeout=HTTP_TIMEOUT_S)
        assert (again.port, reply.text) == (port, "hello you")
    finally:
        again.stop()


def test_stop_before_start_does_nothing() -> None:
    WebServer(APP, "127.0.0.1", 0, name=NAME).stop()
