"""What an operator sees of a running coordinator: Prometheus metrics over HTTP, `corral jobs`
and `corral get` against real sockets, JSON logs of a real node process, the dashboard's
admin-only retry and its view of a workflow.

Every wait is on a condition with a deadline; every process is killed at teardown.
"""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from actors.store.memory import MemoryStore
from nodes import Client, Coordinator, WorkerNode, chain, step
from nodes.observe.dashboard import Dashboard
from nodes.observe.metrics import MetricsExporter
from tests.conftest import wait_for
from tests.integration.conftest import Spawn, cli, corral_at_once, free_port

HTTP_TIMEOUT_S = 5.0
FAST_RETRY = {"initial_interval": 0.05, "jitter": False}


def disk_full(path: str) -> None:
    raise OSError(f"disk full while writing {path}")


HANDLERS = {"square": lambda x: x * x, "resize": disk_full}


def http(url: str, method: str = "GET", token: str | None = None) -> tuple[int, str]:
    request = urllib.request.Request(url, method=method)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def run_a_failing_job(client: Client) -> str:
    """A resize that fails twice and ends discarded; returns its id."""
    job = client.enqueue("resize", ["cat.png"], max_attempts=2, retry=FAST_RETRY)
    wait_for(lambda: client.get(job, wait=1).state == "discarded", 10, what="job discarded")
    return str(job)


# -- metrics ----------------------------------------------------------------------------------


def test_the_metrics_endpoint_shows_jobs_workers_rates_and_refused_requests(
    coordinator: Callable[..., Coordinator],
    workers: Callable[..., WorkerNode],
    raw_peer: Callable[[str], Any],
) -> None:
    exporter = MetricsExporter("127.0.0.1:0")
    node = coordinator(addons=[exporter])
    workers(node.address, handlers=HANDLERS, concurrency=2)
    with Client(node.address) as client:
        for x in range(3):
            assert client.enqueue("square", [x]).result(timeout=10) == x * x
        run_a_failing_job(client)
        client.pause_queue("images")
    raw_peer(node.address).send({"type": "nonsense", "rid": 1})

    def scraped() -> str:
        status, text = http(exporter.url)
        return text if status == 200 and "corral_bad_requests_total 1.0" in text else ""

    text = wait_for(scraped, 10, what="a scrape counting the bad request")
    series = {
        'corral_jobs{queue="default",state="completed"} 3.0',
        'corral_jobs{queue="default",state="discarded"} 1.0',
        'corral_jobs_enqueued_total{queue="default"} 4.0',
        'corral_jobs_completed_total{queue="default"} 3.0',
        'corral_jobs_retried_total{queue="default"} 1.0',
        'corral_job_failures_total{queue="default",reason="error"} 2.0',
        'corral_jobs_discarded_total{queue="default"} 1.0',
        'corral_workers{state="running"} 1.0',
        "corral_worker_slots 2.0",
        "corral_workers_joined_total 1.0",
        "corral_stats_up 1.0",
        'corral_queue_paused{queue="default"} 0.0',
        'corral_queue_paused{queue="images"} 1.0',
    }
    lines = set(text.splitlines())
    assert series <= lines, sorted(series - lines)
    assert re.search(
        r'^corral_job_run_seconds_count\{outcome="completed",queue="default"\} 3\.0$', text, re.M
    )
    assert re.search(r"^corral_messages_received_total [1-9]", text, re.M)
    assert re.search(r"^corral_sent_bytes_total [1-9]", text, re.M)
    assert 'corral_fetch_wait_seconds_bucket{le="+Inf",outcome="jobs"}' in text
    assert "process_cpu_seconds_total" in text


# -- corral jobs / corral get -----------------------------------------------------------------


def test_corral_jobs_lists_a_failed_job_and_corral_get_shows_its_error_history(
    coordinator: Callable[..., Coordinator], workers: Callable[..., WorkerNode]
) -> None:
    node = coordinator()
    workers(node.address, handlers=HANDLERS)
    with Client(node.address) as client:
        assert client.enqueue("square", [3]).result(timeout=10) == 9
        failed = run_a_failing_job(client)

    dead, as_json, shown, piped = corral_at_once(
        ("jobs", "--state", "discarded", "--connect", node.address),
        ("jobs", "--type", "square", "--json", "--connect", node.address),
        ("get", failed, "--pretty", "--connect", node.address),
        ("get", failed, "--connect", node.address),  # scripts still get JSON
    )
    assert dead.returncode == 0, dead.stderr
    [row] = [line for line in dead.stdout.splitlines() if failed in line]
    assert re.search(
        r"resize +default +discarded +2/2 .* OSError: disk full while writing cat", row
    )
    assert "square" not in dead.stdout

    assert [job["type"] for job in json.loads(as_json.stdout)] == ["square"]

    assert shown.returncode == 0, shown.stderr
    assert re.search(r"state +discarded", shown.stdout)
    assert "Errors (2)" in shown.stdout
    errors_part = shown.stdout.split("Errors (2)")[1].split("Last backtrace")[0]
    history = [line for line in errors_part.splitlines() if "disk full while writing" in line]
    assert [line.split()[0] for line in history] == ["1", "2"]  # one row per attempt, in order
    assert "Last backtrace" in shown.stdout

    assert [e["attempt"] for e in json.loads(piped.stdout)["errors"]] == [1, 2]


# -- JSON logs of a node process ----------------------------------------------------------------


def test_json_logs_parse_as_json_and_a_dead_worker_is_logged_with_its_id(
    tmp_path: Path, workers: Callable[..., WorkerNode], spawn: Spawn
) -> None:
    port = free_port()
    config = tmp_path / "cluster.yaml"
    config.write_text(
        "nodes:\n"
        "  coordinator:\n"
        "    kind: coordinator\n"
        f"    bind: tcp://127.0.0.1:{port}\n"
        "    heartbeat_interval: 0.25\n"
        "    heartbeat_timeout: 1\n"
        "    reaper_interval: 0.1\n"
        "    log_format: json\n"
    )
    node = spawn("coordinator", *cli("run", str(config), "--node", "coordinator"), stdout=False)
    address = f"tcp://127.0.0.1:{port}"

    worker = workers(address, handlers=HANDLERS)
    worker_id = wait_for(lambda: worker.worker_id, 10, what="the worker to register")
    worker.kill()  # no deregister: the coordinator must notice the silence

    def death_logged() -> dict[str, Any] | None:
        for line in list(node.lines):
            entry = json.loads(line)
            if entry.get("event") == "worker_lost" and entry.get("worker_id") == worker_id:
                return entry
        return None

    death = wait_for(death_logged, 10, what="the worker's death in the log")
    assert death["reason"] == "timeout"
    assert worker_id in death["message"]
    assert (death["level"], death["node"], death["kind"]) == (
        "WARNING",
        "coordinator",
        "coordinator",
    )
    entries = [json.loads(line) for line in list(node.lines)]  # every line is JSON
    assert any(
        e.get("event") == "worker_joined" and e["worker_id"] == worker_id for e in entries
    )


# -- dashboard API ----------------------------------------------------------------------------


def test_retrying_from_the_dashboard_needs_the_admin_token(
    coordinator: Callable[..., Coordinator], workers: Callable[..., WorkerNode]
) -> None:
    guarded = Dashboard("127.0.0.1:0", admin_token="s3cret")
    read_only = Dashboard("127.0.0.1:0")
    node = coordinator(addons=[guarded, read_only])
    workers(node.address, handlers=HANDLERS)
    with Client(node.address) as client:
        failed = run_a_failing_job(client)

        retry = f"api/jobs/{failed}/retry"
        assert http(read_only.url + retry, "POST", token="s3cret")[0] == 403
        assert http(guarded.url + retry, "POST")[0] == 401
        assert http(guarded.url + retry, "POST", token="wrong")[0] == 401
        assert client.get(failed).state == "discarded"

        status, body = http(guarded.url + retry, "POST", token="s3cret")
        assert (status, json.loads(body)["state"]) == (200, "available")
        wait_for(lambda: client.get(failed, wait=1).state == "discarded", 10, what="failed again")
        assert client.get(failed).attempt == 4  # one more full round, history kept

    status, body = http(guarded.url + f"api/jobs/{failed}")
    assert status == 200 and len(json.loads(body)["job"]["errors"]) == 4
    assert http(guarded.url + "api/jobs/nope")[0] == 404
    overview = json.loads(http(guarded.url + "api/overview")[1])
    assert [job["id"] for job in overview["dead"]] == [failed]


def test_the_dashboard_shows_a_workflow_as_json_and_as_a_page_of_its_steps(
    coordinator: Callable[..., Coordinator], workers: Callable[..., WorkerNode]
) -> None:
    dashboard = Dashboard("127.0.0.1:0")
    node = coordinator(addons=[dashboard])
    workers(node.address, handlers=HANDLERS)
    workflow_id = "report/42 <x>"  # the client's request id: any text, even a slash
    with Client(node.address) as client:
        made = client.enqueue_workflow(
            chain(step("square", [3]), step("square")), request_id=workflow_id
        )
        first, second = made["job_ids"]
        wait_for(lambda: client.workflow(workflow_id)["state"] == "completed", 10, what="done")
        assert client.get(second).result == 81  # 3 squared, then squared again

    status, body = http(dashboard.url + "api/workflows/" + quote(workflow_id, safe=""))
    assert status == 200, body
    shown = json.loads(body)["workflow"]
    assert (shown["workflow_id"], shown["state"], shown["total"]) == (workflow_id, "completed", 2)
    assert shown["counts"] == {"completed": 2}
    assert [(s["id"], s["type"], s["state"], s["after"]) for s in shown["steps"]] == [
        (first, "square", "completed", []),
        (second, "square", "completed", [0]),
    ]
    status, body = http(dashboard.url + "api/workflows/nope")
    assert (status, json.loads(body)) == (404, {"error": "no workflow nope"})

    status, html = http(dashboard.url + "workflows/" + quote(workflow_id, safe=""))
    assert status == 200
    assert "report/42 &lt;x&gt;" in html and "<x>" not in html
    assert html.count('<tr class="step">') == 2
    assert html.count('<span class="badge completed">completed</span>') == 3  # workflow, steps
    assert http(dashboard.url + "workflows/nope")[0] == 404


class HeldListings(MemoryStore):
    """A memory store whose `list` waits until released: a listing that takes a long time."""

    def __init__(self) -> None:
        super().__init__()
        self.listing = threading.Event()
        self.release = threading.Event()

    def list(self, *args: Any, **kwargs: Any) -> list[dict[str, Any]]:
        self.listing.set()
        assert self.release.wait(10), "the test never released the listing"
        return super().list(*args, **kwargs)


def test_a_slow_jobs_listing_does_not_hold_up_other_peers(coordinator, raw_peer):
    store = HeldListings()
    node = coordinator(store=store)
    operator, other = raw_peer(node.address), raw_peer(node.address)
    rid = operator.rid()
    operator.send({"type": "jobs", "rid": rid, "limit": 5})
    assert store.listing.wait(5)
    try:
        assert other.request("ping")["type"] == "pong"  # answered while the walk is held
        enqueued = other.request("enqueue", job={"type": "t"})
        assert enqueued["type"] == "reply", enqueued
    finally:
        store.release.set()
    listed = operator.reply_to(rid)
    assert listed["type"] == "reply" and [job["type"] for job in listed["jobs"]] == ["t"]
