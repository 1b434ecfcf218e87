"""`corral jobs` (a filtered listing) and `corral get` (one job, with its error history).

Tables on a terminal, JSON for scripts: `jobs` prints a table unless `--json`; `get` prints
JSON when its output is piped (as it always has, so scripts keep working) and the readable
view on a terminal, `--pretty` / `--json` forcing either.
"""

from __future__ import annotations

import argparse
import json
import sys

from actors.clock import SystemClock
from nodes.cli import views
from nodes.cli.commands import _client, to_json
from nodes.cli.enqueue import untaken, waited_out
from transport.jobspec import JOB_STATES

MAX_LIMIT = 1000


def add_parsers(sub: argparse._SubParsersAction, client: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    """The `jobs` subcommand (the `get` flags are added by `add_get_flags`)."""
    jobs = sub.add_parser("jobs", parents=[client], help="list jobs, newest first")
    jobs.add_argument("--queue", metavar="Q")
    jobs.add_argument(
        "--state",
        choices=JOB_STATES,
    )
    jobs.add_argument("--type", dest="job_type", metavar="TYPE")
    jobs.add_argument(
        "--limit",
        type=int,
        default=50,
        metavar="N",
        help=f"at most N jobs (default 50, max {MAX_LIMIT})",
    )
    jobs.add_argument("--json", action="store_true", help="the jobs as a JSON list")


def add_get_flags(get: argparse.ArgumentParser) -> None:
    shape = get.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="JSON (the default when piped)")
    shape.add_argument("--pretty", action="store_true", help="fields and error history")


def jobs(args: argparse.Namespace) -> int:
    if not 1 <= args.limit <= MAX_LIMIT:
        print(f"error: --limit must be between 1 and {MAX_LIMIT}", file=sys.stderr)
        return 2
    with _client(args) as client:
        found = client.jobs(args.queue, args.state, args.job_type, args.limit)
    wires = [job.raw for job in found]
    if args.json:
        print(json.dumps(wires, indent=2, sort_keys=True, default=str))
        return 0
    views.show(sys.stdout, views.jobs_table(wires, SystemClock().now()))
    return 0


def get(args: argparse.Namespace) -> int:
    """Print the job; for one not finished, say on stderr if no worker can take it. After
    `--wait S`, a job still waiting exits 1, as `enqueue --wait` does."""
    with _client(args) as client:
        job = client.get(args.job_id, wait=args.wait)
        waiting = not job.terminal
        reason = untaken(client, job.type, job.queue, job.raw.get("route")) if waiting else None
    pretty = getattr(args, "pretty", False) or (
        not getattr(args, "json", False) and sys.stdout.isatty()
    )
    if pretty:
        views.show(sys.stdout, views.job_view(job.raw, SystemClock().now()))
    else:
        print(to_json(job.raw))
    if waiting and args.wait > 0:
        return waited_out(job, args.wait, reason)
    if reason:
        print(f"warning: job {job.id} is {job.state}: {reason}", file=sys.stderr)
    return 0
