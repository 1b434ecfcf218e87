"""examples/fastapi_service.py for real: its `app`, as `uvicorn examples.fastapi_service:app`
loads it, served by uvicorn on a loopback port, in front of a coordinator and a worker running
the example's `resize`, all in this process; requests go over HTTP with httpx."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
import uvicorn

from examples.fastapi_service import resize
from nodes.client import Client
from tests.conftest import wait_for

SERVER_DEADLINE_S = 10.0


@pytest.fixture
def service(coordinator, workers, monkeypatch) -> Iterator[tuple[httpx.Client, Client]]:
    """An HTTP client of the example served by uvicorn, and a corral Client of its
    coordinator (to pause a queue)."""
    node = coordinator()
    workers(node.address, handlers={"resize": resize}, concurrency=4)
    monkeypatch.setenv("CORRAL_CONNECT", node.address)  # read by the app's lifespan

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))  # bound here: the port is known and no one can take it
    port = listener.getsockname()[1]
    config = uvicorn.Config(
        "examples.fastapi_service:app", lifespan="on", log_level="warning", loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [listener]}, name="uvicorn", daemon=True
    )
    thread.start()
    try:
        wait_for(lambda: server.started or not thread.is_alive(), SERVER_DEADLINE_S)
        assert server.started, "uvicorn did not start (its error is in the log above)"
        with (
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
            Client(node.address, timeout=5) as client,
        ):
            yield http, client
    finally:
        server.should_exit = True  # the lifespan's end closes the app's AsyncClient
        thread.join(SERVER_DEADLINE_S)
        listener.close()
    assert not thread.is_alive(), f"uvicorn did not stop within {SERVER_DEADLINE_S} s"


def test_a_resize_is_enqueued_and_its_state_and_result_read_back(service):
    http, _ = service

    made = http.post("/resize", json={"path": "photos/cat.png", "width": 128})
    assert made.status_code == 202
    job_id = made.json()["job_id"]

    def completed() -> dict | None:
        view = http.get(f"/jobs/{job_id}").json()
        return view if view["state"] == "completed" else None

    view = wait_for(completed, what="the job to complete")
    assert view["result"] == {
        "source": "photos/cat.png",
        "width": 128,
        "thumbnail": "photos/cat-128w.png",
    }
    assert http.get("/jobs/no-such-job").status_code == 404
    assert http.post("/resize", json={"path": "a.png", "width": 0}).status_code == 422


def test_the_wait_route_answers_with_the_result_or_504_or_502(service):
    http, client = service

    done = http.post("/resize/wait", json={"path": "dog.jpg", "width": 64})
    assert done.status_code == 200
    assert done.json()["result"]["thumbnail"] == "dog-64w.jpg"

    # a job not done in time: 504, naming the job to poll later
    client.pause_queue("default")
    late = http.post("/resize/wait", params={"timeout": 0.2}, json={"path": "b.png", "width": 8})
    assert late.status_code == 504
    late_id = late.json()["detail"]["job_id"]
    assert http.get(f"/jobs/{late_id}").json()["state"] == "available"
    client.resume_queue("default")
    assert client.get(late_id, wait=5).state == "completed"

    # a job that failed: 502 with its errors
    failed = http.post("/resize/wait", json={"path": "notes.txt", "width": 8})
    assert failed.status_code == 502
    detail = failed.json()["detail"]
    assert detail["state"] == "discarded"
    assert detail["errors"][-1]["message"] == "not an image: notes.txt"
