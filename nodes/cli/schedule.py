"""`corral schedule add|list|remove|pause|resume`: periodic jobs (docs/PROTOCOL.md,
Extensions). `list` needs the client role, the others admin."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime
from typing import Any

from rich.table import Table

from nodes.cli import flags, views
from nodes.cli.commands import _client, parse_arg, to_json

ADMIN_ACTIONS = ("add", "remove", "pause", "resume")


def add_parsers(sub: argparse._SubParsersAction, client: argparse.ArgumentParser) -> None:  # type: ignore[type-arg]
    schedule = sub.add_parser("schedule", help="periodic jobs: add, list, remove, pause, resume")
    actions = schedule.add_subparsers(dest="schedule_command", metavar="ACTION", required=True)
    add = actions.add_parser(
        "add", parents=[client], help="create or replace a schedule (admin role)"
    )
    add.add_argument("name", metavar="NAME")
    add.add_argument("type", metavar="TYPE", help="the job type")
    add.add_argument("args", nargs="*", metavar="ARGS", help="job arguments: JSON, else strings")
    when = add.add_mutually_exclusive_group(required=True)
    when.add_argument("--cron", metavar="EXPR", help='5 fields ("0 3 * * *") or @hourly-style')
    when.add_argument("--every", type=flags.SECONDS, metavar="SECONDS", help="a fixed interval")
    add.add_argument("--timezone", default="UTC", help="IANA zone the cron is read in (UTC)")
    add.add_argument(
        "--overlap",
        choices=("skip", "allow"),
        default="skip",
        help="skip a slot while the last run is unfinished (default), or allow it",
    )
    add.add_argument(
        "--misfire",
        choices=("once", "skip"),
        default="once",
        help="after downtime: run once for the missed slots (default), or skip them",
    )
    add.add_argument("--queue", help="the jobs' queue (default: default)")
    add.add_argument("--priority", type=flags.PRIORITY, help="higher runs first (default: 0)")
    listing = actions.add_parser("list", parents=[client], help="schedules and their next runs")
    listing.add_argument("--json", action="store_true", help="the raw reply as JSON")
    for action, says in (
        ("remove", "delete a schedule (admin role)"),
        ("pause", "make no job until resumed (admin role)"),
        ("resume", "make jobs again from the next slot (admin role)"),
    ):
        actions.add_parser(action, parents=[client], help=says).add_argument("name", metavar="NAME")


def schedule(args: argparse.Namespace) -> int:
    with _client(args) as client:
        action = args.schedule_command
        if action == "list":
            listed = client.schedules()
            if args.json:
                print(to_json(listed))
            else:
                views.show(sys.stdout, table(listed))
            return 0
        if action == "add":
            options = {"queue": args.queue, "priority": args.priority}
            shown = client.put_schedule(
                args.name,
                args.type,
                [parse_arg(a) for a in args.args],
                cron=args.cron,
                every=args.every,
                timezone=args.timezone,
                overlap=args.overlap,
                misfire=args.misfire,
                **{k: v for k, v in options.items() if v is not None},
            )
        elif action == "remove":
            client.remove_schedule(args.name)
            print(f"schedule {args.name} removed")
            return 0
        elif action == "pause":
            shown = client.pause_schedule(args.name)
        else:
            shown = client.resume_schedule(args.name)
    state = "paused" if shown["paused"] else f"next run {when(shown['next_runs'][0])}"
    print(f"schedule {shown['name']}: {state}")
    return 0


def when(moment: float) -> str:
    return datetime.fromtimestamp(moment).strftime("%Y-%m-%d %H:%M:%S")


def table(listed: list[dict[str, Any]]) -> Table | str:
    if not listed:
        return "no schedules"
    out = views.titled_table("Schedules")
    for column in ("NAME", "WHEN", "JOB", "NEXT RUNS", "MADE", "SKIPPED", "LAST JOB"):
        out.add_column(column, overflow="fold")
    for s in listed:
        every = f"every {s['every']:g} s" if s.get("every") else f"{s['cron']} ({s['timezone']})"
        job = s["job"]
        out.add_row(
            s["name"],
            every,
            f"{job['type']} on {job.get('queue', 'default')}",
            "paused" if s["paused"] else ", ".join(when(t) for t in s["next_runs"]),
            str(s["fired"]),
            str(s["skipped"]),
            s.get("last_job_id") or "-",
        )
    return out
