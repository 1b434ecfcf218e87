"""Bad input over HTTP: every route of the OJS gateway, given arbitrary JSON, arbitrary bytes,
wrong content types and methods, answers with a status below 500 and, when it refuses, the
binding's error object; the gateway and its coordinator keep serving, and nothing a refused
request sent was made. Real HTTP and real ZeroMQ sockets on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from nodes import Coordinator
from nodes.gateway.node import Gateway

JOB = "019a0000-0000-7000-8000-00000000f00d"
ROUTES = [
    ("POST", "/ojs/v1/jobs"),
    ("POST", "/ojs/v1/jobs/batch"),
    ("GET", f"/ojs/v1/jobs/{JOB}"),
    ("DELETE", f"/ojs/v1/jobs/{JOB}"),
    ("POST", "/ojs/v1/workers/fetch"),
    ("POST", "/ojs/v1/workers/ack"),
    ("POST", "/ojs/v1/workers/nack"),
    ("POST", "/ojs/v1/workers/heartbeat"),
    ("GET", "/ojs/v1/queues"),
    ("GET", "/ojs/v1/queues/q/stats"),
    ("POST", "/ojs/v1/queues/q/pause"),
    ("GET", "/ojs/v1/dead-letter?limit=5"),
    ("POST", f"/ojs/v1/dead-letter/{JOB}/retry"),
    ("DELETE", f"/ojs/v1/dead-letter/{JOB}"),
    ("GET", "/ojs/v1/cron"),
    ("POST", "/ojs/v1/cron"),
    ("DELETE", "/ojs/v1/cron/nightly"),
    ("POST", "/ojs/v1/workflows"),
    ("GET", f"/ojs/v1/workflows/{JOB}"),
    ("GET", "/ojs/v1/events?limit=3"),
]
finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers() | finite | st.text(max_size=40)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4)
    | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20,
)
# Bodies shaped like the binding's, so validation is reached deep, not only at the top
known_keys = st.sampled_from(
    ["type", "args", "options", "queue", "priority", "retry", "unique", "id", "meta", "jobs",
     "job_id", "worker_id", "queues", "count", "error", "result", "requeue", "active_jobs",
     "name", "expression", "job_template", "steps", "callbacks", "expires_at", "timeout_ms",
     "rate_limit", "scheduled_at", "delay_until", "visibility_timeout_ms", "backoff_strategy"]
)  # fmt: skip
shaped = st.dictionaries(known_keys, json_values, max_size=6)


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[Coordinator, httpx.Client]]:
    coordinator = Coordinator(bind="tcp://127.0.0.1:*", reaper_interval=0.05)
    coordinator.start()
    gateway = Gateway(coordinator.address, bind="127.0.0.1:0")
    gateway.start()
    try:
        with httpx.Client(base_url=gateway.url, timeout=10.0) as client:
            yield coordinator, client
    finally:
        gateway.stop()
        coordinator.stop()


def check(reply: httpx.Response) -> None:
    assert reply.status_code < 500, (reply.status_code, reply.text[:500])
    assert reply.headers["content-type"] == "application/openjobspec+json"
    if reply.status_code >= 400:
        error = reply.json()["error"]
        assert isinstance(error["code"], str) and error["code"]
        assert isinstance(error["message"], str) and error["message"]
        assert error["retryable"] is False


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), body=shaped | json_values)
def test_any_json_body_gets_an_answer_below_500(served: Any, route: Any, body: Any) -> None:
    _, client = served
    method, path = route
    reply = client.request(
        method, path, json=body, headers={"Content-Type": "application/openjobspec+json"}
    )
    check(reply)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    route=st.sampled_from(ROUTES),
    raw=st.binary(max_size=300),
    content_type=st.sampled_from(["application/json", "text/plain", "", "application/xml"]),
)
def test_any_bytes_get_an_answer_below_500(
    served: Any, route: Any, raw: bytes, content_type: str
) -> None:
    _, client = served
    method, path = route
    reply = client.request(method, path, content=raw, headers={"Content-Type": content_type})
    check(reply)


def test_after_the_campaign_both_nodes_serve_and_json_outside_the_standard_is_refused(
    served: Any,
) -> None:
    _, client = served
    assert client.get("/ojs/v1/health").json()["status"] == "ok"
    made = client.post("/ojs/v1/jobs", json={"type": "after.fuzz", "args": []})
    assert made.status_code == 201
    huge = client.post("/ojs/v1/jobs", content=b"[" * 2_000_000,
                       headers={"Content-Type": "application/json"})  # fmt: skip
    assert huge.status_code == 413
    for depth in (29, 500, 100_000):  # deeper than a frame may be, or than json can read
        body = b'{"type": "a.b", "args": ' + b"[" * depth + b"]" * depth + b"}"
        deep = client.post("/ojs/v1/jobs", content=body,
                           headers={"Content-Type": "application/json"})  # fmt: skip
        assert deep.status_code == 400, deep.text
    nested = b'{"type": "a.b", "args": ' + b"[" * 27 + b"]" * 27 + b"}"  # 28 levels: fine
    assert client.post("/ojs/v1/jobs", content=nested,
                       headers={"Content-Type": "application/json"}).status_code == 201
    for method in ("PUT", "PATCH"):
        assert client.request(method, "/ojs/v1/jobs").status_code == 405
    assert client.get("/ojs/v1/jobs/not-a-job").status_code == 404
    for constant in (b"NaN", b"Infinity", b"-Infinity"):  # Python's json reads them; JSON has none
        body = b'{"type": "a.b", "args": [' + constant + b"]}"
        refused = client.post("/ojs/v1/jobs", content=body,
                              headers={"Content-Type": "application/json"})  # fmt: skip
        assert refused.status_code == 400 and refused.json()["error"]["code"] == "invalid_payload"
