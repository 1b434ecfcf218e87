"""What each client command of `corral` does, over the public Client API."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.clock import SystemClock
from nodes.cli.status import watch_status
from nodes.client import Client
from nodes.config import load_config
from nodes.config.fields import ConfigError

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

KEY_NAMES = ("coordinator", "worker", "client")
SECRET_KEY_MODE = 0o600


def resolve_address(connect: str | None, config: str | None, default: str) -> str:
    """`--connect`, else the first coordinator of `--config`, else the default endpoint."""
    if connect:
        return connect
    if config:
        address = load_config(config).client_address()
        if address is None:
            raise ConfigError(f"{config}: no coordinator node to connect to")
        return address
    return default


def resolve_curve(args: argparse.Namespace, role: str) -> CurveClientConfig | None:
    """CURVE keys: `--keys DIR`, or `--secret-key-file` + `--server-key-file`, or, with
    `--config`, a key with `role` found next to the coordinator's authorized keys."""
    from transport.auth import client_curve

    secret, server = args.secret_key_file, args.server_key_file
    if args.keys:
        secret = secret or str(Path(args.keys) / "client.key_secret")
        server = server or str(Path(args.keys) / "coordinator.key")
    if secret or server:
        if not (secret and server):
            raise ConfigError("--secret-key-file and --server-key-file go together")
        try:
            return client_curve(secret, server)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read the CURVE keys: {exc}") from None
    if args.config:
        return load_config(args.config).client_curve(role=role)
    return None


def parse_arg(text: str) -> Any:
    """A command-line job argument: JSON when it parses (7, true, [1,2]), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_route(pairs: list[str]) -> dict[str, str]:
    route = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ConfigError(f"--route expects KEY=VALUE, got {pair!r}")
        route[name] = value
    return route


def to_json(value: Any) -> str:
    """Pretty JSON; binary (msgpack bin) shown as text so nothing makes the CLI crash."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, bytes):
            return obj.decode("utf-8", errors="replace")
        return repr(obj)

    return json.dumps(value, indent=2, sort_keys=True, default=fallback)


def _client(args: argparse.Namespace) -> Client:
    return Client(args.address, timeout=args.timeout, curve=getattr(args, "curve", None))


def enqueue(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {
        "queue": args.queue,
        "priority": args.priority,
        "max_attempts": args.max_attempts,
        "unique_key": args.unique_key,
        "route": parse_route(args.route) or None,
    }
    if args.delay is not None:
        options["scheduled_at"] = SystemClock().now() + args.delay
    elif args.scheduled_at is not None:
        options["scheduled_at"] = args.scheduled_at
    options["timeout"] = args.job_timeout
    retry = {
        "initial_interval": args.retry_initial,
        "backoff_coefficient": args.retry_backoff,
        "max_interval": args.retry_max,
        "jitter": False if args.no_jitter else None,
    }
    options["retry"] = {key: value for key, value in retry.items() if value is not None} or None
    if args.meta is not None:
        meta = json.loads(args.meta)
        if not isinstance(meta, dict):
            raise ValueError("--meta must be a JSON map")
        options["meta"] = meta
    with _client(args) as client:
        handle = client.enqueue(args.type, [parse_arg(arg) for arg in args.args], **options)
        print(handle, flush=True)
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
    else:
        print(f"error: job {job.id} still {job.state} after {args.wait:g} s", file=sys.stderr)
    return 1


def get(args: argparse.Namespace) -> int:
    with _client(args) as client:
        job = client.get(args.job_id, wait=args.wait)
    print(to_json(job.raw))
    return 0


def cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.cancel(args.job_id))
    return 0


def retry(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.retry(args.job_id))
    return 0


def direct(args: argparse.Namespace) -> int:
    with _client(args) as client:
        client.direct(args.worker_id, args.state)
    print(f"worker {args.worker_id} directed to {args.state}")
    return 0


def status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        return watch_status(client, as_json=args.json, interval=args.watch, address=args.address)


def generate_keys(directory: str, *, force: bool = False) -> int:
    """Write a CURVE key pair for the coordinator, a worker and a client into `directory`."""
    import zmq.auth

    target = Path(directory)
    existing = [
        path
        for name in KEY_NAMES
        for path in (target / f"{name}.key", target / f"{name}.key_secret")
        if path.exists()
    ]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists; use --force to overwrite the keys")
    target.mkdir(parents=True, exist_ok=True)
    for name in KEY_NAMES:
        public, secret = zmq.auth.create_certificates(target, name)
        os.chmod(secret, SECRET_KEY_MODE)  # a secret key readable by others is not secret
        print(f"{name}: {public} (public), {secret} (secret)")
    return 0
