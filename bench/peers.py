"""The same no-op workload on corral, Celery and Dramatiq, on one machine at one time.

    .venv/bin/python bench/peers.py [--jobs 5000] [--repeat 1]
    .venv/bin/python bench/peers.py --peer-python /path/to/venv/bin/python

Not needed by the tests, and nothing here is a dependency of corral. It needs:

- `redis-server` on PATH (Debian: `apt-get update && apt-get install -y redis-server`);
- a Python with `celery`, `dramatiq` and `redis` (by default `/tmp/peers-venv/bin/python`:
  `python3 -m venv /tmp/peers-venv`, then
  `/tmp/peers-venv/bin/pip install 'celery[redis]' 'dramatiq[redis]'`
  (plain `celery` lacks `packaging`, which its Redis transport imports));
- corral itself in the Python that runs this script (the project venv).

If one is missing, the script says how to install it and exits with status 2.

What runs (everything on 127.0.0.1, every wait has a deadline, every process is stopped in
`finally`):

- one private `redis-server` on a free loopback port, no persistence (`--save '' --appendonly
  no`), shared by Celery and Dramatiq (flushed before each of their runs);
- corral: `throughput.end_to_end` from bench/throughput.py, N no-op jobs, 2 worker processes x
  16 (its default layout), and 1 worker process x 4 (the same shape as the Dramatiq worker);
- Celery: one `celery worker --pool solo` process (Redis broker, no result backend, default
  prefetch), task enqueued with `delay()` one at a time;
- Dramatiq: one `dramatiq --processes 1 --threads 4` worker (RedisBroker, default middleware),
  actor enqueued with `send()` one at a time.

The Celery task and the Dramatiq actor do one thing: `INCR` a Redis counter. The clock starts at
the first enqueue and stops when the counter reaches N, polled every 50 ms, the way
throughput.py polls `stats()`. No result backend is used: the counter is cheaper than storing
N results and is the same one extra Redis round trip per job for both peers. Before the clock
starts, one warm-up job must come back, which proves the worker is consuming; the counter is
then reset. CPU per job is user+sys time from /proc during the timed window: for the peers the
"broker" column is redis-server and the "workers" column is the worker's whole process group;
for corral they are the coordinator and its worker processes. The enqueueing client's CPU is in
neither, for any system.

Prints a table, then one JSON line with `corral_jobs_per_s` (2 x 16), `celery_jobs_per_s`,
`dramatiq_jobs_per_s`, `ratio_vs_celery`, `ratio_vs_dramatiq` and `corral_1x4_jobs_per_s`;
medians over `--repeat` runs. A failed or timed-out scenario gives null and exit status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import common

DEFAULT_JOBS = 5_000
DEFAULT_TIMEOUT_S = 120.0
DEFAULT_PEER_PYTHON = "/tmp/peers-venv/bin/python"
WARMUP_TIMEOUT_S = 60.0
REDIS_START_TIMEOUT_S = 10.0
REDIS_URL_ENV = "CORRAL_PEERS_REDIS_URL"
COUNTER_KEY = "corral-peers:done"
INSTALL_PEERS = (
    "python3 -m venv /tmp/peers-venv &&"
    " /tmp/peers-venv/bin/pip install 'celery[redis]' 'dramatiq[redis]'"
)
INSTALL_REDIS = "apt-get update && apt-get install -y redis-server"


# --- peer side: runs in the peer Python (celery, dramatiq, redis installed) -----------------

_celery_app: Any = None
_dramatiq_actor: Any = None
_redis_client: Any = None


def _redis_url() -> str:
    url = os.environ.get(REDIS_URL_ENV)
    if not url:
        raise RuntimeError(f"{REDIS_URL_ENV} is not set")
    return url


def _counter() -> Any:
    """One Redis client per process (thread-safe: it has its own connection pool)."""
    global _redis_client
    if _redis_client is None:
        import redis

        _redis_client = redis.Redis.from_url(_redis_url())
    return _redis_client


def _build_celery_app() -> Any:
    global _celery_app
    if _celery_app is None:
        from celery import Celery

        app = Celery("corral_peers", broker=_redis_url())
        app.conf.update(
            task_ignore_result=True,
            broker_connection_retry_on_startup=True,
            worker_hijack_root_logger=False,
        )

        @app.task(name="corral_peers.noop")
        def noop() -> None:
            _counter().incr(COUNTER_KEY)

        _celery_app = app
    return _celery_app


def dramatiq_setup() -> Any:
    """`dramatiq peers:dramatiq_setup`: set the RedisBroker and declare the no-op actor."""
    global _dramatiq_actor
    if _dramatiq_actor is None:
        import dramatiq
        from dramatiq.brokers.redis import RedisBroker

        dramatiq.set_broker(RedisBroker(url=_redis_url()))

        @dramatiq.actor(actor_name="corral_peers_noop", max_retries=0)
        def noop() -> None:
            _counter().incr(COUNTER_KEY)

        _dramatiq_actor = noop
    return _dramatiq_actor


def __getattr__(name: str) -> Any:
    """`celery -A peers:celery_app` finds the app here; nothing imports Celery before that."""
    if name == "celery_app":
        return _build_celery_app()
    raise AttributeError(name)


def _group_cpu_seconds(pgid: int) -> float:
    """User + system CPU of every live process in process group `pgid` (Linux /proc)."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields: state, ppid, pgrp, ..., utime [11], stime [12]
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def _cpu(pgids: dict[str, int]) -> dict[str, float]:
    return {who: _group_cpu_seconds(pgid) for who, pgid in pgids.items()}


def peer_client(which: str, jobs: int, timeout: float, pgids: dict[str, int]) -> dict[str, Any]:
    """Warm up, then time `jobs` no-op enqueues until the counter says all ran."""
    if which == "celery":
        task = _build_celery_app().tasks["corral_peers.noop"]
        send = task.delay
    else:
        send = dramatiq_setup().send
    counter = _counter()
    counter.delete(COUNTER_KEY)
    send()
    deadline = time.perf_counter() + WARMUP_TIMEOUT_S
    while int(counter.get(COUNTER_KEY) or 0) < 1:
        if time.perf_counter() >= deadline:
            raise common.BenchError(f"{which}: warm-up job not done within {WARMUP_TIMEOUT_S} s")
        time.sleep(common.POLL_INTERVAL_S)
    counter.delete(COUNTER_KEY)

    cpu_before = _cpu(pgids)
    started = time.perf_counter()
    for _ in range(jobs):
        send()
    enqueued = time.perf_counter()
    deadline = started + timeout
    done = 0
    while True:
        done = int(counter.get(COUNTER_KEY) or 0)
        if done >= jobs or time.perf_counter() >= deadline:
            break
        time.sleep(common.POLL_INTERVAL_S)
    elapsed = time.perf_counter() - started
    cpu_after = _cpu(pgids)
    cpu_us = {
        f"{who}_cpu_us_per_job": (cpu_after[who] - cpu_before[who]) / max(done, 1) * 1e6
        for who in pgids
    }
    return {
        "jobs": jobs,
        "completed": done,
        "timed_out": done < jobs,
        "enqueue_s": enqueued - started,
        "elapsed_s": elapsed,
        "jobs_per_s": done / elapsed if elapsed > 0 else float("nan"),
        **cpu_us,
    }


# --- bench side: runs in the project venv ----------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _redis_command(port: int, *words: str, timeout: float = 2.0) -> bytes:
    """One inline command over a raw socket (the bench Python needs no redis package)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(" ".join(words).encode() + b"\r\n")
        return s.recv(1024)


def _stop_group(proc: subprocess.Popen[bytes], grace: float = common.KILL_GRACE_S) -> None:
    """SIGTERM the process group we started (its pgid is its leader's pid), then SIGKILL."""
    pgid = proc.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)
    # children of a worker (Dramatiq's forked process) may outlive the leader: kill the group
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(grace)


@contextlib.contextmanager
def redis_server(binary: str):  # type: ignore[no-untyped-def]
    """A private redis-server on a free loopback port; yields (port, process)."""
    port = _free_port()
    proc = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.perf_counter() + REDIS_START_TIMEOUT_S
        while True:
            with contextlib.suppress(OSError):
                if _redis_command(port, "PING").startswith(b"+PONG"):
                    break
            if proc.poll() is not None:
                raise common.BenchError(f"redis-server exited early (code {proc.returncode})")
            if time.perf_counter() >= deadline:
                raise common.BenchError(f"redis-server not up within {REDIS_START_TIMEOUT_S} s")
            time.sleep(common.POLL_INTERVAL_S)
        yield port, proc
    finally:
        _stop_group(proc)


def _worker_argv(which: str, peer_python: str) -> list[str]:
    if which == "celery":
        return [
            peer_python, "-m", "celery", "-A", "peers:celery_app", "worker",
            "--pool", "solo", "--concurrency", "1", "--loglevel", "WARNING",
            # no cluster chatter between workers; only helps Celery
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ]  # fmt: skip
    return [
        peer_python, "-m", "dramatiq", "peers:dramatiq_setup",
        "--processes", "1", "--threads", "4",
    ]  # fmt: skip


def run_peer(
    which: str, peer_python: str, port: int, redis_pid: int, jobs: int, timeout: float
) -> dict[str, Any]:
    """Start one peer worker, run the timed client in the peer Python, stop the worker."""
    _redis_command(port, "FLUSHALL")
    env = dict(os.environ)
    env[REDIS_URL_ENV] = f"redis://127.0.0.1:{port}/0"
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(common.BENCH_DIR), env.get("PYTHONPATH")])
    )
    with tempfile.TemporaryFile() as log:
        worker = subprocess.Popen(
            _worker_argv(which, peer_python),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            cwd=str(common.BENCH_DIR),
            env=env,
            start_new_session=True,
        )
        try:
            argv = [
                peer_python, str(Path(__file__).resolve()), "--peer-client", which,
                "--jobs", str(jobs), "--timeout", str(timeout),
                "--cpu-pgid", f"workers={worker.pid}", "--cpu-pgid", f"broker={redis_pid}",
            ]  # fmt: skip
            try:
                done = subprocess.run(
                    argv,
                    env=env,
                    cwd=str(common.BENCH_DIR),
                    stdin=subprocess.DEVNULL,
                    capture_output=True,
                    timeout=timeout + WARMUP_TIMEOUT_S + 30,
                )
            except subprocess.TimeoutExpired as exc:
                raise common.BenchError(
                    f"{which} client did not finish in {exc.timeout} s"
                ) from exc
            lines = done.stdout.decode(errors="replace").strip().splitlines()
            if done.returncode != 0 or not lines:
                log.seek(0)
                worker_log = log.read().decode(errors="replace")[-2000:]
                raise common.BenchError(
                    f"{which} client failed (code {done.returncode}):\n"
                    f"{done.stderr.decode(errors='replace')[-2000:]}\nworker log:\n{worker_log}"
                )
            if worker.poll() is not None:
                raise common.BenchError(f"{which} worker exited (code {worker.returncode})")
            return json.loads(lines[-1])
        finally:
            _stop_group(worker)


def run_corral(jobs: int, workers: int, concurrency: int, timeout: float) -> dict[str, Any]:
    import throughput

    result = throughput.end_to_end(jobs, workers, concurrency, timeout=timeout)
    result["broker_cpu_us_per_job"] = result.pop("coordinator_cpu_us_per_job", None)
    return result


def missing_requirements(peer_python: str, redis_binary: str) -> list[str]:
    """What is not installed, each with how to install it."""
    problems = []
    if shutil.which(redis_binary) is None:
        problems.append(f"redis-server not found ({redis_binary!r}); install: {INSTALL_REDIS}")
    if not (shutil.which(peer_python) or os.access(peer_python, os.X_OK)):
        problems.append(f"peer Python {peer_python} not found; create it: {INSTALL_PEERS}")
    else:
        check = subprocess.run(
            [peer_python, "-c", "import celery, dramatiq, redis, kombu.transport.redis"],
            capture_output=True,
            timeout=60,
        )
        if check.returncode != 0:
            error = check.stderr.decode(errors="replace").strip().splitlines()[-1:]
            problems.append(
                f"{peer_python} lacks celery/dramatiq/redis ({' '.join(error)}); install:"
                f" {peer_python} -m pip install 'celery[redis]' 'dramatiq[redis]'"
            )
    try:
        import nodes  # noqa: F401
    except ImportError as exc:
        problems.append(f"corral not importable by {sys.executable} ({exc}); run this script"
                        " with the project venv: .venv/bin/python bench/peers.py")  # fmt: skip
    return problems


SCENARIOS = [
    ("corral", "2 proc x 16 (throughput.py)"),
    ("corral_1x4", "1 proc x 4"),
    ("celery", "1 proc, --pool solo"),
    ("dramatiq", "1 proc x 4 threads"),
]


def _median(runs: list[dict[str, Any]], key: str) -> float | None:
    values = [r[key] for r in runs if r.get(key) is not None]
    return statistics.median(values) if values else None


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; medians reported")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="per timed run")
    parser.add_argument(
        "--peer-python",
        default=DEFAULT_PEER_PYTHON if os.path.exists(DEFAULT_PEER_PYTHON) else sys.executable,
        help="a Python with celery, dramatiq and redis (default: /tmp/peers-venv/bin/python)",
    )
    parser.add_argument("--redis-server", default="redis-server")
    parser.add_argument("--peer-client", choices=["celery", "dramatiq"], help=argparse.SUPPRESS)
    parser.add_argument("--cpu-pgid", action="append", default=[], help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.peer_client:  # internal: the timed client, run in the peer Python
        pgids = {k: int(v) for k, v in (item.split("=", 1) for item in args.cpu_pgid)}
        print(json.dumps(peer_client(args.peer_client, args.jobs, args.timeout, pgids)))
        return 0

    problems = missing_requirements(args.peer_python, args.redis_server)
    if problems:
        print("bench/peers.py cannot run:", *problems, sep="\n  ", file=sys.stderr)
        return 2

    print(f"machine: {common.machine()}")
    print(
        f"peer Python: {args.peer_python}; {args.jobs:,} no-op jobs per run, {args.repeat} run(s)"
    )
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in SCENARIOS}
    failed = False
    with redis_server(args.redis_server) as (port, redis_proc):
        for rep in range(args.repeat):
            for name, _ in SCENARIOS:
                try:
                    if name == "corral":
                        result = run_corral(args.jobs, 2, 16, args.timeout)
                    elif name == "corral_1x4":
                        result = run_corral(args.jobs, 1, 4, args.timeout)
                    else:
                        result = run_peer(
                            name, args.peer_python, port, redis_proc.pid, args.jobs, args.timeout
                        )
                except Exception as exc:  # one scenario failing must not stop the others
                    print(f"run {rep + 1}: {name} FAILED: {exc}", file=sys.stderr)
                    failed = True
                    continue
                if result.get("timed_out"):
                    print(f"run {rep + 1}: {name} TIMED OUT", file=sys.stderr)
                    failed = True
                    result["jobs_per_s"] = None
                runs[name].append(result)
                print(
                    f"run {rep + 1}: {name:<10} {_fmt(result['jobs_per_s'], ',.0f'):>7} jobs/s"
                    f"  (load {os.getloadavg()[0]:.2f})",
                    flush=True,
                )
    print(f"load after: {os.getloadavg()}")

    rates = {name: _median(results, "jobs_per_s") for name, results in runs.items()}
    header = (
        "system", "layout", "jobs/s", "runs", "enqueue/total s", "broker/coord CPU/job",
        "workers CPU/job",
    )  # fmt: skip
    rows = []
    for name, layout in SCENARIOS:
        results = runs[name]
        broker_us = _median(results, "broker_cpu_us_per_job")
        workers_us = _median(results, "workers_cpu_us_per_job")
        rows.append((
            name, layout, _fmt(rates[name], ",.0f"),
            " / ".join(_fmt(r["jobs_per_s"], ",.0f") for r in results) or "-",
            f"{_fmt(_median(results, 'enqueue_s'), '.2f')}"
            f" / {_fmt(_median(results, 'elapsed_s'), '.2f')}",
            _fmt(broker_us, ".0f") + " us", _fmt(workers_us, ".0f") + " us",
        ))  # fmt: skip
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)))

    def ratio(peer: str) -> float | None:
        ours, theirs = rates["corral"], rates[peer]
        return ours / theirs if ours and theirs else None

    summary = {
        "corral_jobs_per_s": rates["corral"],
        "celery_jobs_per_s": rates["celery"],
        "dramatiq_jobs_per_s": rates["dramatiq"],
        "ratio_vs_celery": ratio("celery"),
        "ratio_vs_dramatiq": ratio("dramatiq"),
        "corral_1x4_jobs_per_s": rates["corral_1x4"],
    }
    print(f"corral/celery {_fmt(summary['ratio_vs_celery'], '.2f')}x, "
          f"corral/dramatiq {_fmt(summary['ratio_vs_dramatiq'], '.2f')}x")  # fmt: skip
    print(json.dumps(summary))
    return 1 if failed or None in summary.values() else 0


if __name__ == "__main__":
    sys.exit(main())
