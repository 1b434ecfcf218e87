"""The OJS HTTP gateway against corral's own ZeroMQ protocol: enqueue, batch enqueue, fetch->ack.

    .venv/bin/python bench/http_gateway.py [--requests 2000] [--batch-jobs 20000] [--rounds 1000]
    .venv/bin/python bench/http_gateway.py --profile-gateway /tmp/gateway.prof

A coordinator process (memory store) and a gateway process (`bench/_node.py gateway`, the OJS
HTTP binding of nodes/gateway on a free 127.0.0.1 port) in front of it; this process makes the
load with httpx over HTTP/1.1 keep-alive connections, and the same operations over ZeroMQ
against the same coordinator, one right after the other, so a change in machine load hits both
alike:

- enqueue of single jobs (`POST /ojs/v1/jobs`), `--requests` of them: sequential on one
  connection (`httpx.Client`), then 16 requests in flight (16 threads, each with an
  `httpx.Client` of its own, one keep-alive connection, sending its share one after the
  other). ZeroMQ: `nodes.Client.enqueue` sequential.
- batch enqueue (`POST /ojs/v1/jobs/batch`) in batches of 100 and of 1,000, `--batch-jobs`
  jobs each, one batch in flight; ZeroMQ: `Client.enqueue_many` of the same batches.
- fetch -> ack, sequential, one worker: `POST /ojs/v1/workers/fetch` with count 1 then
  `POST /ojs/v1/workers/ack`, `--rounds` times (a round trip is the pair; p50/p99 of it); and
  fetches of 10, each followed by an ack of each of its 10 jobs (`--rounds` / 10 fetches, as
  many jobs). ZeroMQ: a raw DEALER worker session (hello, register, `fetch` with wait 0,
  `ack`), as limits.py and million.py use. The queue is filled (over ZeroMQ) before the clock.

Every request body is built before its clock starts, but for the acks (each names its job).
Each phase sends warm-up requests first (connections opened, the HTTP worker's session made).
Every reply's status is checked, and at the end `stats()` must count every job made as
available (enqueue) or completed (fetch -> ack). Beside each rate: the CPU time (user + sys,
/proc, 10 ms ticks: coarse on short phases) per job of the gateway, the coordinator and this
process, the load generator, which shares the same cores: on a sequential HTTP phase httpx's
own CPU is a large part of every round trip.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import common

if TYPE_CHECKING:
    import httpx  # imported where used: run.py's other scenarios run without it

MEDIA_TYPE = "application/openjobspec+json"
HEADERS = {"Content-Type": MEDIA_TYPE}
JOBS_PATH = "/ojs/v1/jobs"
BATCH_PATH = "/ojs/v1/jobs/batch"
FETCH_PATH = "/ojs/v1/workers/fetch"
ACK_PATH = "/ojs/v1/workers/ack"
JOB_TYPE = "bench.noop"
CONCURRENT = 16
BATCHES = (100, 1_000)
FETCH_COUNTS = (1, 10)
DEFAULT_REQUESTS = 2_000
DEFAULT_BATCH_JOBS = 20_000
DEFAULT_ROUNDS = 1_000
DEFAULT_WARMUP = 100
FILL_BATCH = 1_000
REQUEST_TIMEOUT_S = 10.0
DEFAULT_TIMEOUT_S = 120.0  # for each phase


class Meter:
    """Wall clock and CPU time (the gateway, the coordinator, this process) of one phase."""

    def __init__(self, gateway: common.NodeProcess, coordinator: common.NodeProcess) -> None:
        self.nodes = {"gateway": gateway, "coordinator": coordinator}
        self.started = self.elapsed = 0.0
        self.cpu: dict[str, float | None] = {}

    def _cpu(self) -> dict[str, float | None]:
        return {
            **{name: node.cpu_seconds() for name, node in self.nodes.items()},
            "bench": time.process_time(),
        }

    def start(self) -> None:
        self.cpu = self._cpu()
        self.started = time.perf_counter()

    def stop(self) -> None:
        self.elapsed = time.perf_counter() - self.started
        after = self._cpu()
        self.cpu = {name: _minus(after[name], before) for name, before in self.cpu.items()}

    def result(self, jobs: int) -> dict[str, Any]:
        return {
            "jobs": jobs,
            "elapsed_s": self.elapsed,
            "per_s": jobs / self.elapsed if self.elapsed > 0 else float("nan"),
            "cpu_us_per_job": {
                name: None if used is None else used / jobs * 1e6 for name, used in self.cpu.items()
            },
        }


def _minus(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _job(queue: str, n: int = 1) -> dict[str, Any]:
    return {"type": JOB_TYPE, "args": [n], "options": {"queue": queue}}


def _check(response: httpx.Response, status: int) -> Any:
    if response.status_code != status:
        raise common.BenchError(
            f"{response.request.method} {response.request.url.path}: {response.status_code}"
            f" {response.text[:300]}"
        )
    return response.json()


def _http(url: str, connections: int = 1) -> httpx.Client:
    import httpx

    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    return httpx.Client(base_url=url, headers=HEADERS, timeout=REQUEST_TIMEOUT_S, limits=limits)


def _deadline(timeout: float) -> Iterator[None]:
    """Yields until `timeout` seconds have passed, then raises."""
    deadline = time.perf_counter() + timeout
    while True:
        if time.perf_counter() >= deadline:
            raise common.BenchError(f"phase over its {timeout} s deadline")
        yield


# -- enqueue -------------------------------------------------------------------------------


def http_singles(
    url: str, queue: str, requests: int, warmup: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    body = json.dumps(_job(queue)).encode()
    warm = json.dumps(_job("bench-warmup")).encode()
    samples: list[float] = []
    with _http(url) as http:
        for _ in range(warmup):
            _check(http.post(JOBS_PATH, content=warm), 201)
        meter.start()
        for _ in zip(range(requests), _deadline(timeout), strict=False):
            started = time.perf_counter()
            _check(http.post(JOBS_PATH, content=body), 201)
            samples.append(time.perf_counter() - started)
        meter.stop()
    return meter.result(requests) | common.summary_ms(samples)


def http_concurrent(
    url: str, queue: str, requests: int, warmup: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    """`requests` single enqueues, CONCURRENT in flight: CONCURRENT threads, each with an
    `httpx.Client` of its own (one keep-alive connection) sending its share one after the
    other. (One `httpx.AsyncClient` with as many coroutines drove half the rate here, its
    pool taking ~3.5 ms of this process's CPU a request: encode/httpx#3215.)"""
    body = json.dumps(_job(queue)).encode()
    warm = json.dumps(_job("bench-warmup")).encode()
    shares = [requests // CONCURRENT + (i < requests % CONCURRENT) for i in range(CONCURRENT)]
    warm_each = max(1, warmup // CONCURRENT)
    warmed = threading.Barrier(CONCURRENT + 1, timeout=timeout)
    go = threading.Event()
    deadline = time.perf_counter() + timeout
    errors: list[BaseException] = []

    def send(http: httpx.Client, count: int) -> None:
        try:
            for _ in range(warm_each):  # the connection opened and used before the clock
                _check(http.post(JOBS_PATH, content=warm), 201)
            warmed.wait()
            if not go.wait(timeout):
                return
            for _ in range(count):
                if time.perf_counter() >= deadline:
                    raise common.BenchError(f"16 in flight: over the {timeout} s deadline")
                _check(http.post(JOBS_PATH, content=body), 201)
        except BaseException as exc:
            errors.append(exc)
            warmed.abort()

    clients = [_http(url) for _ in range(CONCURRENT)]
    threads = [
        threading.Thread(target=send, args=(http, n), name=f"http-{i}", daemon=True)
        for i, (http, n) in enumerate(zip(clients, shares, strict=True))
    ]
    try:
        for thread in threads:
            thread.start()
        try:
            warmed.wait()
        except threading.BrokenBarrierError:
            raise (errors or [common.BenchError("16 in flight: warm-up failed")])[0] from None
        meter.start()
        go.set()
        for thread in threads:
            thread.join(max(0.0, deadline - time.perf_counter()) + REQUEST_TIMEOUT_S)
        meter.stop()
        if any(thread.is_alive() for thread in threads):
            raise common.BenchError(f"16 in flight: threads still sending after {timeout} s")
        if errors:
            raise errors[0]
    finally:
        go.set()
        for http in clients:
            http.close()
    return meter.result(requests) | {"concurrent": CONCURRENT}


def http_batches(
    url: str, queue: str, jobs: int, batch: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    body = json.dumps({"jobs": [_job(queue, n) for n in range(batch)]}).encode()
    warm = json.dumps({"jobs": [_job("bench-warmup", n) for n in range(batch)]}).encode()
    count = max(1, jobs // batch)
    with _http(url) as http:
        _check(http.post(BATCH_PATH, content=warm), 201)
        meter.start()
        for _ in zip(range(count), _deadline(timeout), strict=False):
            made = _check(http.post(BATCH_PATH, content=body), 201)["count"]
            if made != batch:
                raise common.BenchError(f"a batch of {batch} made {made} jobs")
        meter.stop()
    return meter.result(count * batch) | {"batch": batch}


def zmq_singles(
    client: Any, queue: str, requests: int, warmup: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    samples: list[float] = []
    for _ in range(warmup):
        client.enqueue(JOB_TYPE, [1], queue="bench-warmup")
    meter.start()
    for _ in zip(range(requests), _deadline(timeout), strict=False):
        started = time.perf_counter()
        client.enqueue(JOB_TYPE, [1], queue=queue)
        samples.append(time.perf_counter() - started)
    meter.stop()
    return meter.result(requests) | common.summary_ms(samples)


def zmq_batches(
    client: Any, queue: str, jobs: int, batch: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    specs = [{"type": JOB_TYPE, "args": [n], "queue": queue} for n in range(batch)]
    client.enqueue_many([{**spec, "queue": "bench-warmup"} for spec in specs])
    count = max(1, jobs // batch)
    meter.start()
    for _ in zip(range(count), _deadline(timeout), strict=False):
        client.enqueue_many(specs)
    meter.stop()
    return meter.result(count * batch) | {"batch": batch}


# -- fetch -> ack --------------------------------------------------------------------------


def _fill(client: Any, queue: str, jobs: int) -> None:
    for start in range(0, jobs, FILL_BATCH):
        size = min(FILL_BATCH, jobs - start)
        client.enqueue_many([{"type": JOB_TYPE, "args": [1], "queue": queue}] * size)


def http_fetch_ack(
    url: str, queue: str, count: int, rounds: int, warmup: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    """`warmup` + `rounds` fetches of `count` by one HTTP worker, each followed by an ack of
    every job it got; one sample per fetch and its acks."""
    worker = f"bench-http-{count}"
    fetch = json.dumps({"queues": [queue], "count": count, "worker_id": worker}).encode()
    samples: list[float] = []
    with _http(url) as http:
        for i, _ in zip(range(warmup + rounds), _deadline(timeout), strict=False):
            if i == warmup:
                meter.start()
            started = time.perf_counter()
            jobs = _check(http.post(FETCH_PATH, content=fetch), 200)["jobs"]
            if len(jobs) != count:
                raise common.BenchError(f"a fetch of {count} got {len(jobs)} jobs")
            for job in jobs:
                ack = {"job_id": job["id"], "worker_id": worker, "result": None}
                _check(http.post(ACK_PATH, content=json.dumps(ack).encode()), 200)
            if i >= warmup:
                samples.append(time.perf_counter() - started)
        meter.stop()
    return meter.result(rounds * count) | {"count": count, **common.summary_ms(samples)}


def zmq_fetch_ack(
    address: str, queue: str, count: int, rounds: int, warmup: int, meter: Meter, timeout: float
) -> dict[str, Any]:
    """The same over a raw ZeroMQ worker session (a DEALER: hello, register, fetch, ack)."""
    import zmq

    context: zmq.Context[Any] = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    sock.connect(address)
    rid = itertools.count(1)
    samples: list[float] = []
    try:
        worker = common.raw_call(sock, common.hello_body(), next(rid))["worker_id"]
        register = common.register_body(worker, (queue,)) | {"concurrency": count}
        common.raw_call(sock, register, next(rid))
        fetch = {"type": "fetch", "worker_id": worker, "count": count, "queues": [queue], "wait": 0}
        for i, _ in zip(range(warmup + rounds), _deadline(timeout), strict=False):
            if i == warmup:
                meter.start()
            started = time.perf_counter()
            jobs = common.raw_call(sock, fetch, next(rid), REQUEST_TIMEOUT_S)["jobs"]
            if len(jobs) != count:
                raise common.BenchError(f"a fetch of {count} got {len(jobs)} jobs")
            for job in jobs:
                ack = {
                    "type": "ack",
                    "worker_id": worker,
                    "job_id": job["id"],
                    "attempt": job["attempt"],
                    "result": None,
                }
                common.raw_call(sock, ack, next(rid), REQUEST_TIMEOUT_S)
            if i >= warmup:
                samples.append(time.perf_counter() - started)
        meter.stop()
    finally:
        sock.close(0)
        context.term()
    return meter.result(rounds * count) | {"count": count, **common.summary_ms(samples)}


# -- the whole sitting -----------------------------------------------------------------------


@contextlib.contextmanager
def nodes(
    profile: str | None = None, gateway_profile: str | None = None
) -> Iterator[tuple[common.NodeProcess, common.NodeProcess]]:
    """A coordinator process and a gateway process in front of it; both stopped on exit."""
    started: list[common.NodeProcess] = []
    try:
        coordinator = common.start_coordinator_process("memory", profile)
        started.append(coordinator)
        args = ["--connect", coordinator.address, "--bind", "127.0.0.1:0"]
        if gateway_profile:
            args += ["--profile", gateway_profile]
        gateway = common.spawn_node("gateway", *args)
        started.append(gateway)
        if not gateway.address.startswith("http://127.0.0.1:"):
            raise common.BenchError(f"the gateway serves {gateway.address}, not loopback")
        yield coordinator, gateway
    finally:
        common.stop_all(started[::-1])  # the gateway first; profiles are written on SIGTERM


def run(
    requests: int = DEFAULT_REQUESTS,
    batch_jobs: int = DEFAULT_BATCH_JOBS,
    rounds: int = DEFAULT_ROUNDS,
    warmup: int = DEFAULT_WARMUP,
    *,
    timeout: float = DEFAULT_TIMEOUT_S,
    profile: str | None = None,
    gateway_profile: str | None = None,
) -> dict[str, Any]:
    """Every phase, HTTP then ZeroMQ, on one coordinator; the flat keys are the JSON summary's,
    `phases` has each phase's details (CPU per job, latencies)."""
    phases: dict[str, dict[str, Any]] = {}
    made: dict[str, int] = {}  # queue -> jobs that must be available at the end
    done: dict[str, int] = {}  # queue -> jobs that must be completed
    rounds10 = max(1, rounds // 10)
    with (
        nodes(profile, gateway_profile) as (coordinator, gateway),
        contextlib.closing(common.client(coordinator.address)) as client,
    ):
        client.timeout = timeout
        url, address = gateway.address, coordinator.address

        def phase(name: str, queue: str, fn: Any, *args: Any) -> None:
            phases[name] = result = fn(*args, Meter(gateway, coordinator), timeout)
            made[queue] = made.get(queue, 0) + result["jobs"]

        phase("http_enqueue", "h1", http_singles, url, "h1", requests, warmup)
        phase("zmq_enqueue", "z1", zmq_singles, client, "z1", requests, warmup)
        phase("http_enqueue_16", "h16", http_concurrent, url, "h16", requests, warmup)
        for batch in BATCHES:
            queue = f"hb{batch}"
            phase(f"http_batch_{batch}", queue, http_batches, url, queue, batch_jobs, batch)
            queue = f"zb{batch}"
            phase(f"zmq_batch_{batch}", queue, zmq_batches, client, queue, batch_jobs, batch)
        sides = (("http", http_fetch_ack, url), ("zmq", zmq_fetch_ack, address))
        for count, n in zip(FETCH_COUNTS, (rounds, rounds10), strict=True):
            warm = max(1, warmup // count)
            for side, fn, target in sides:
                queue = f"{side[0]}f{count}"
                _fill(client, queue, (warm + n) * count)
                meter = Meter(gateway, coordinator)
                phases[f"{side}_fetch{count}_ack"] = fn(
                    target, queue, count, n, warm, meter, timeout
                )
                done[queue] = (warm + n) * count
        queues = client.stats()["queues"]
    for queue, expected in made.items():
        if queues.get(queue, {}).get("available", 0) != expected:
            raise common.BenchError(f"queue {queue}: {expected} jobs made, {queues.get(queue)}")
    for queue, expected in done.items():
        if queues.get(queue, {}).get("completed", 0) != expected:
            raise common.BenchError(f"queue {queue}: {expected} jobs acked, {queues.get(queue)}")
    return {**summary(phases), "phases": phases}


SUMMARY_KEYS = (
    "http_enqueue_per_s",
    "http_enqueue_p50_ms",
    "http_enqueue_per_s_16",
    "http_batch_enqueue_per_s_100",
    "http_batch_enqueue_per_s_1000",
    "http_fetch_ack_per_s",
    "http_fetch_ack_p50_ms",
    "http_fetch_ack_p99_ms",
    "http_fetch10_ack_per_s",
    "zmq_enqueue_per_s",
    "zmq_enqueue_p50_ms",
    "zmq_batch_enqueue_per_s_100",
    "zmq_batch_enqueue_per_s_1000",
    "zmq_fetch_ack_per_s",
    "zmq_fetch_ack_p50_ms",
    "zmq_fetch_ack_p99_ms",
    "zmq_fetch10_ack_per_s",
)


def summary(phases: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The JSON keys (SUMMARY_KEYS): rates in jobs (fetch 1 -> ack: round trips, one job
    each) per second, latencies in ms."""
    keys: dict[str, float] = {}
    for side in ("http", "zmq"):
        keys[f"{side}_enqueue_per_s"] = phases[f"{side}_enqueue"]["per_s"]
        keys[f"{side}_enqueue_p50_ms"] = phases[f"{side}_enqueue"]["p50_ms"]
        if side == "http":
            keys["http_enqueue_per_s_16"] = phases["http_enqueue_16"]["per_s"]
        for batch in BATCHES:
            keys[f"{side}_batch_enqueue_per_s_{batch}"] = phases[f"{side}_batch_{batch}"]["per_s"]
        one, ten = phases[f"{side}_fetch1_ack"], phases[f"{side}_fetch10_ack"]
        keys[f"{side}_fetch_ack_per_s"] = one["per_s"]
        keys[f"{side}_fetch_ack_p50_ms"] = one["p50_ms"]
        keys[f"{side}_fetch_ack_p99_ms"] = one["p99_ms"]
        keys[f"{side}_fetch10_ack_per_s"] = ten["per_s"]
    return {key: keys[key] for key in SUMMARY_KEYS}


LINES = (
    ("enqueue, single jobs, sequential", "enqueue", "jobs/s"),
    ("enqueue, single jobs, 16 in flight", "enqueue_16", "jobs/s"),
    ("batch enqueue, batches of 100", "batch_100", "jobs/s"),
    ("batch enqueue, batches of 1,000", "batch_1000", "jobs/s"),
    ("fetch 1 -> ack, sequential", "fetch1_ack", "round trips/s"),
    ("fetch 10 -> 10 acks, sequential", "fetch10_ack", "jobs/s"),
)


def table(result: dict[str, Any]) -> list[str]:
    """One line per operation: HTTP, ZeroMQ, HTTP's share, and CPU per job of each process."""
    phases = result["phases"]

    def cpu(phase: dict[str, Any]) -> str:
        used = phase["cpu_us_per_job"]
        return ", ".join(f"{who} {us:.0f}" for who, us in used.items() if us is not None)

    lines = []
    for label, key, unit in LINES:
        http, zmq = phases.get(f"http_{key}"), phases.get(f"zmq_{key}")
        assert http is not None
        text = f"{label:<34} HTTP {http['per_s']:>8,.0f} {unit}"
        if zmq is not None:
            text += f" | ZeroMQ {zmq['per_s']:>8,.0f} (HTTP = {http['per_s'] / zmq['per_s']:.0%})"
        if "p50_ms" in http:
            text += f" | p50 {http['p50_ms']:.2f} ms, p99 {http['p99_ms']:.2f} ms"
            if zmq is not None:
                text += f" (ZeroMQ {zmq['p50_ms']:.2f} / {zmq['p99_ms']:.2f})"
        lines.append(text)
        lines.append(f"{'':<34}   CPU us/job, HTTP: {cpu(http)}")
        if zmq is not None:
            lines.append(f"{'':<34}   CPU us/job, ZeroMQ: {cpu(zmq)}")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=DEFAULT_REQUESTS)
    parser.add_argument("--batch-jobs", type=int, default=DEFAULT_BATCH_JOBS)
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--warmup", type=int, default=DEFAULT_WARMUP)
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    parser.add_argument("--profile", metavar="FILE", help="cProfile the coordinator into FILE")
    parser.add_argument("--profile-gateway", metavar="FILE", help="cProfile the gateway into FILE")
    args = parser.parse_args()
    result = run(
        args.requests,
        args.batch_jobs,
        args.rounds,
        args.warmup,
        timeout=args.timeout,
        profile=args.profile,
        gateway_profile=args.profile_gateway,
    )
    print(f"OJS HTTP gateway against ZeroMQ - {common.machine()}")
    for line in table(result):
        print(line)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
