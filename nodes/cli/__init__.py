"""The `corral` command: parse arguments and call the public API (nothing else lives here).

Exit codes: 0 success; 1 the coordinator refused (`error: <code>: <message>`) or a job failed;
2 a usage or config error, or no answer from the coordinator within `--timeout`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nodes.cli import commands, jobs
from nodes.config.fields import ConfigError
from transport.errors import ConnectionLost, CorralError

DEFAULT_CONNECT = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_RESULT_WAIT_S = 30.0
DEFAULT_WATCH_INTERVAL_S = 2.0
DIRECT_COMMANDS = ("quiet", "terminate", "resume")  # `direct` needs the admin role


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="corral", description="A job coordinator over ZeroMQ: run nodes, manage jobs."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser("run", help="run every node of a config (or one with --node)")
    run.add_argument("file", metavar="FILE", help="YAML config")
    run.add_argument("--node", metavar="NAME", help="run only this node, in this process")

    client = argparse.ArgumentParser(add_help=False)
    where = client.add_mutually_exclusive_group()
    where.add_argument(
        "--connect", metavar="ENDPOINT", help=f"coordinator address (default {DEFAULT_CONNECT})"
    )
    where.add_argument("--config", metavar="FILE", help="use the first coordinator of FILE")
    client.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"how long to wait for the coordinator (default {DEFAULT_TIMEOUT_S:.0f})",
    )
    keys = client.add_mutually_exclusive_group()
    keys.add_argument(
        "--keys",
        metavar="DIR",
        help="CURVE keys from `corral keys generate DIR` (client.key_secret, coordinator.key)",
    )
    keys.add_argument("--secret-key-file", metavar="FILE", help="this client's *.key_secret")
    client.add_argument("--server-key-file", metavar="FILE", help="the coordinator's *.key")

    enqueue = sub.add_parser("enqueue", parents=[client], help="enqueue a job, print its id")
    enqueue.add_argument("type", metavar="TYPE")
    enqueue.add_argument("args", nargs="*", metavar="ARGS", help="JSON values, else strings")
    enqueue.add_argument("--queue", default=None)
    enqueue.add_argument("--priority", type=int, default=None)
    enqueue.add_argument("--in", dest="delay", type=float, metavar="SECONDS", default=None)
    enqueue.add_argument("--max-attempts", type=int, default=None, metavar="N")
    enqueue.add_argument("--unique-key", default=None, metavar="K")
    enqueue.add_argument("--at", dest="scheduled_at", type=float, default=None, metavar="UNIX_S")
    enqueue.add_argument(
        "--job-timeout",
        dest="job_timeout",
        type=float,
        default=None,
        metavar="S",
        help="visibility timeout of this job",
    )
    enqueue.add_argument("--retry-initial", type=float, default=None, metavar="S")
    enqueue.add_argument("--retry-backoff", type=float, default=None, metavar="X")
    enqueue.add_argument("--retry-max", type=float, default=None, metavar="S")
    enqueue.add_argument("--no-jitter", action="store_true", help="retry delays without jitter")
    enqueue.add_argument(
        "--meta", default=None, metavar="JSON", help="a JSON map kept with the job"
    )
    enqueue.add_argument(
        "--route", action="extend", nargs="+", default=[], metavar="K=V", help="label routing"
    )
    enqueue.add_argument(
        "--wait",
        nargs="?",
        type=float,
        const=DEFAULT_RESULT_WAIT_S,
        metavar="SECONDS",
        help=f"wait for the result (default {DEFAULT_RESULT_WAIT_S:.0f} s) and print it",
    )

    get = sub.add_parser("get", parents=[client], help="print a job as JSON")
    get.add_argument("job_id", metavar="JOB_ID")
    get.add_argument("--wait", type=float, default=0.0, metavar="SECONDS")
    jobs.add_get_flags(get)  # --json / --pretty

    cancel = sub.add_parser("cancel", parents=[client], help="cancel a job, print its state")
    cancel.add_argument("job_id", metavar="JOB_ID")

    retry = sub.add_parser("retry", parents=[client], help="retry a discarded job, print its state")
    retry.add_argument("job_id", metavar="JOB_ID")

    jobs.add_parsers(sub, client)  # corral jobs
    status = sub.add_parser("status", parents=[client], help="queues and workers")
    status.add_argument("--json", action="store_true", help="the raw stats as JSON")
    status.add_argument(
        "--watch",
        nargs="?",
        type=float,
        const=DEFAULT_WATCH_INTERVAL_S,
        metavar="SECONDS",
        help="refresh until Ctrl-C",
    )

    for state, verb in (("quiet", "quiet"), ("terminate", "terminate"), ("running", "resume")):
        direct = sub.add_parser(verb, parents=[client], help=f"direct a worker to {state}")
        direct.add_argument("worker_id", metavar="WORKER_ID")
        direct.set_defaults(state=state)

    keys = sub.add_parser("keys", help="CURVE key pairs")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    generate = keys_sub.add_parser("generate", help="write coordinator/worker/client key pairs")
    generate.add_argument("directory", metavar="DIR")
    generate.add_argument("--force", action="store_true", help="overwrite existing keys")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `corral` console script; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return dispatch(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ConnectionLost:
        address = getattr(args, "address", "the coordinator")
        print(
            f"error: no answer from the coordinator at {address} within {args.timeout:g} s "
            "(is it running? are the CURVE keys right? see --connect / --config / --keys / "
            "--timeout)",
            file=sys.stderr,
        )
        return 2
    except CorralError as exc:
        print(f"error: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        if args.node:
            from nodes.process.node import run_node

            return run_node(args.file, args.node)
        from nodes.process.runner import run_cluster

        return run_cluster(args.file)
    if args.command == "keys":
        return commands.generate_keys(args.directory, force=args.force)
    args.address = commands.resolve_address(args.connect, args.config, DEFAULT_CONNECT)
    role = "admin" if args.command in DIRECT_COMMANDS else "client"
    args.curve = commands.resolve_curve(args, role)
    handler = {
        "enqueue": commands.enqueue,
        "get": jobs.get,
        "jobs": jobs.jobs,
        "cancel": commands.cancel,
        "retry": commands.retry,
        "status": commands.status,
        "quiet": commands.direct,
        "terminate": commands.direct,
        "resume": commands.direct,
    }[args.command]
    return handler(args)

