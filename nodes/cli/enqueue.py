"""`corral enqueue`: every JobSpec option as a flag, and a warning when no worker can take the
job (it would otherwise wait forever in silence)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from actors.clock import SystemClock
from nodes.cli import flags
from nodes.cli.commands import _client, parse_arg, to_json
from nodes.cli.takers import no_taker
from nodes.client import Client, Job

DEFAULT_RESULT_WAIT_S = 30.0
# The coordinator fills in what a flag leaves out (PROTOCOL.md section 4, JobSpec).
STILL_WAITING = "a job still waiting when --wait runs out exits 1 (as `get --wait` does)"


def add_parser(sub: argparse._SubParsersAction, client: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The `enqueue` subcommand, each option with its help and the default the coordinator
    applies when it is left out."""
    enqueue = sub.add_parser(
        "enqueue",
        parents=[client],
        help="enqueue a job, print its id",
        description="Enqueue one job and print its id. Left-out options take the coordinator's "
        "defaults, shown below.",
    )
    add = enqueue.add_argument
    add("type", metavar="TYPE", help="the job type (a worker's handler name)")
    add("args", nargs="*", metavar="ARGS", help="job arguments: JSON values, else strings")
    add("--queue", help="the queue (default: default)")
    add("--priority", type=flags.PRIORITY, help="higher runs first (default: 0)")
    when = enqueue.add_mutually_exclusive_group()
    when.add_argument(
        "--in",
        dest="delay",
        type=flags.SECONDS_OR_ZERO,
        metavar="SECONDS",
        help="run no sooner than SECONDS from now (default: now)",
    )
    when.add_argument(
        "--at",
        dest="scheduled_at",
        type=flags.UNIX_TIME,
        metavar="UNIX_S",
        help="run no sooner than this UNIX time (default: now)",
    )
    add(
        "--max-attempts", type=flags.COUNT, metavar="N", help="attempts before discard (default: 3)"
    )
    add(
        "--unique-key",
        metavar="K",
        help="while a job with this key waits, return it (default: none)",
    )
    add(
        "--job-timeout",
        type=flags.SECONDS,
        metavar="S",
        help="visibility timeout of this job (default: the coordinator's, 30 s)",
    )
    add("--retry-initial", type=flags.SECONDS, metavar="S", help="first retry delay (default: 1.0)")
    add(
        "--retry-backoff",
        type=flags.POSITIVE_NUMBER,
        metavar="X",
        help="each retry delay is X times the last (default: 2.0)",
    )
    add("--retry-max", type=flags.SECONDS, metavar="S", help="longest retry delay (default: 300.0)")
    add("--no-jitter", action="store_true", help="retry delays without jitter (default: jitter)")
    add("--meta", metavar="JSON", help="a JSON map kept with the job (default: {})")
    add(
        "--route",
        action="append",
        type=flags.route_pair,
        default=[],
        metavar="K=V",
        help="a routing label; repeat the flag for more (default: none)",
    )
    add(
        "--wait",
        nargs="?",
        type=flags.SECONDS_OR_ZERO,
        const=DEFAULT_RESULT_WAIT_S,
        metavar="SECONDS",
        help=f"wait for the result (default: do not wait; {DEFAULT_RESULT_WAIT_S:g} s with no "
        f"value) and print it; {STILL_WAITING}",
    )


def job_options(args: argparse.Namespace) -> dict[str, Any]:
    """The JobSpec options the flags set (None: the coordinator's default)."""
    options: dict[str, Any] = {
        "queue": args.queue,
        "priority": args.priority,
        "max_attempts": args.max_attempts,
        "unique_key": args.unique_key,
        "route": dict(args.route) or None,
        "timeout": args.job_timeout,
        "meta": flags.meta(args.meta) if args.meta is not None else None,
    }
    if args.delay is not None:
        options["scheduled_at"] = SystemClock().now() + args.delay
    elif args.scheduled_at is not None:
        options["scheduled_at"] = args.scheduled_at
    retry = {
        "initial_interval": args.retry_initial,
        "backoff_coefficient": args.retry_backoff,
        "max_interval": args.retry_max,
        "jitter": False if args.no_jitter else None,
    }
    options["retry"] = {key: value for key, value in retry.items() if value is not None} or None
    return options


def enqueue(args: argparse.Namespace) -> int:
    options = job_options(args)
    with _client(args) as client:
        handle = client.enqueue(args.type, [parse_arg(arg) for arg in args.args], **options)
        print(handle, flush=True)
        warning = untaken(client, args.type, options["queue"] or "default", options["route"])
        if warning:
            print(f"warning: job {handle}: {warning}", file=sys.stderr, flush=True)
        if args.wait is None:
            return 0
        job = client.get(handle, wait=args.wait)
        if job.state == "completed":
            print(to_json(job.result))
            return 0
        if job.terminal:
            last = job.errors[-1] if job.errors else {}
            detail = f": {last.get('type')}: {last.get('message')}" if last else ""
            print(f"error: job {job.id} {job.state}{detail}", file=sys.stderr)
            return 1
        reason = untaken(client, job.type, job.queue, job.raw.get("route"))
    return waited_out(job, args.wait, reason)


def untaken(client: Client, job_type: str, queue: str, route: dict[str, str] | None) -> str | None:
    """Why no worker can take such a job (None if one can), from the coordinator's `stats`."""
    return no_taker(job_type, queue, route or {}, client.stats()["workers"])


def waited_out(job: Job, waited: float, reason: str | None) -> int:
    """A job not finished when `--wait` ran out: say so, and why if no worker can take it; exit
    1, the same for `enqueue --wait` and `get --wait`."""
    because = f": {reason}" if reason else ""
    print(f"error: job {job.id} still {job.state} after {waited:g} s{because}", file=sys.stderr)
    return 1
