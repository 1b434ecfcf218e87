"""The `corral` command: parse arguments and call the public API (nothing else lives here).

Exit codes: 0 success; 1 the coordinator refused (`error: <code>: <message>`), a job failed,
or a job is still waiting when `--wait` runs out; 2 a usage or config error, or no answer from
the coordinator within `--timeout`. Every error is one line on stderr: an unexpected one adds
"run with --debug for the traceback".
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from importlib import metadata
from typing import NoReturn

from nodes.cli import commands, enqueue, flags, jobs, schedule, workflow
from nodes.config.fields import ConfigError
from transport.errors import ConnectionLost, CorralError

DEFAULT_CONNECT = "tcp://127.0.0.1:5555"
DEFAULT_TIMEOUT_S = 5.0
DEFAULT_WATCH_INTERVAL_S = 2.0
# `direct`, `pause_queue`, `resume_queue` and `delete` need the admin role
ADMIN_COMMANDS = ("quiet", "terminate", "resume", "queue", "delete")
DEBUG_HELP = "on an unexpected error, print its traceback"
STILL_WAITING_HELP = enqueue.STILL_WAITING.replace("`get --wait`", "`enqueue --wait`")
DISTRIBUTION = "corral"


def _version() -> str:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


class Parser(argparse.ArgumentParser):
    """argparse, with a usage mistake said in one line (the usage is one `--help` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="corral", description="A job coordinator over ZeroMQ: run nodes, manage jobs."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help=DEBUG_HELP)
    # --debug after the command too; SUPPRESS keeps a top-level --debug from being reset
    common = Parser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=DEBUG_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = sub.add_parser(
        "run", parents=[common], help="run every node of a config (or one with --node)"
    )
    run.add_argument("file", metavar="FILE", help="YAML config")
    run.add_argument("--node", metavar="NAME", help="run only this node, in this process")

    client = Parser(add_help=False, parents=[common])
    where = client.add_mutually_exclusive_group()
    where.add_argument(
        "--connect",
        metavar="ENDPOINT[,ENDPOINT...]",
        help=f"coordinator address, or several sharing one database (default {DEFAULT_CONNECT})",
    )
    where.add_argument("--config", metavar="FILE", help="use the first coordinator of FILE")
    client.add_argument(
        "--timeout",
        type=flags.SECONDS,
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

    enqueue.add_parser(sub, client)
    get = sub.add_parser("get", parents=[client], help="print a job as JSON")
    get.add_argument("job_id", metavar="JOB_ID")
    get.add_argument(
        "--wait",
        type=flags.SECONDS_OR_ZERO,
        default=0.0,
        metavar="SECONDS",
        help=f"wait up to SECONDS for the job to finish (default 0); {STILL_WAITING_HELP}",
    )
    jobs.add_get_flags(get)  # --json / --pretty

    cancel = sub.add_parser("cancel", parents=[client], help="cancel a job, print its state")
    cancel.add_argument("job_id", metavar="JOB_ID")

    retry = sub.add_parser("retry", parents=[client], help="retry a discarded job, print its state")
    retry.add_argument("job_id", metavar="JOB_ID")

    delete = sub.add_parser(
        "delete",
        parents=[client],
        help="forget an ended job for good, before its retention would (admin role)",
    )
    delete.add_argument("job_id", metavar="JOB_ID")

    jobs.add_parsers(sub, client)  # corral jobs
    status = sub.add_parser("status", parents=[client], help="queues and workers")
    status.add_argument("--json", action="store_true", help="the raw stats as JSON")
    status.add_argument(
        "--watch",
        nargs="?",
        type=flags.SECONDS,
        const=DEFAULT_WATCH_INTERVAL_S,
        metavar="SECONDS",
        help=f"refresh every SECONDS (default {DEFAULT_WATCH_INTERVAL_S:g}) until Ctrl-C",
    )

    for state, verb in (("quiet", "quiet"), ("terminate", "terminate"), ("running", "resume")):
        direct = sub.add_parser(verb, parents=[client], help=f"direct a worker to {state}")
        direct.add_argument(
            "worker_id",
            metavar="WORKER",
            help="the worker's id, a unique prefix of it, or its node name (names and "
            "prefixes need a key with the client role too, to read `stats`)",
        )
        direct.set_defaults(state=state)

    queue = sub.add_parser("queue", help="pause or resume a queue (admin role)")
    queue_sub = queue.add_subparsers(dest="queue_command", metavar="ACTION", required=True)
    for action, says in (
        ("pause", "stop handing out the queue's jobs (enqueues still land); durable"),
        ("resume", "hand out the queue's jobs again"),
    ):
        queue_sub.add_parser(action, parents=[client], help=says).add_argument(
            "queue", metavar="QUEUE"
        )

    schedule.add_parsers(sub, client)
    workflow.add_parsers(sub, client)

    keys = sub.add_parser("keys", help="CURVE key pairs")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    generate = keys_sub.add_parser(
        "generate", parents=[common], help="write coordinator/worker/client key pairs"
    )
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
        address = ",".join(getattr(args, "address", ("the coordinator",)))
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
    except OSError as exc:  # the socket could not be made or connected
        print(f"error: {exc.strerror or exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # a bug: still one line, unless asked for the whole story
        if args.debug:
            traceback.print_exc()
        hint = "" if args.debug else " (run with --debug for the traceback)"
        print(f"error: unexpected {type(exc).__name__}: {exc}{hint}", file=sys.stderr)
        return 2


def dispatch(args: argparse.Namespace) -> int:
    if args.command == "run":
        if args.node:
            from nodes.process.node import run_node

            return run_node(args.file, args.node)
        from nodes.process.runner import run_cluster

        return run_cluster(args.file)
    if args.command == "keys":
        return commands.generate_keys(args.directory, force=args.force)
    connect = flags.endpoints(args.connect) if args.connect else None
    args.address = commands.resolve_address(connect, args.config, DEFAULT_CONNECT)
    admin = args.command in ADMIN_COMMANDS or (
        args.command == "schedule" and args.schedule_command in schedule.ADMIN_ACTIONS
    )
    role = "admin" if admin else "client"
    args.curve = commands.resolve_curve(args, role)
    handler = {
        "enqueue": enqueue.enqueue,
        "get": jobs.get,
        "jobs": jobs.jobs,
        "cancel": commands.cancel,
        "retry": commands.retry,
        "delete": commands.delete,
        "status": commands.status,
        "quiet": commands.direct,
        "terminate": commands.direct,
        "resume": commands.direct,
        "queue": commands.queue,
        "schedule": schedule.schedule,
        "workflow": workflow.workflow,
    }[args.command]
    return handler(args)
