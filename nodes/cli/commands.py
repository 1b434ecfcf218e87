"""What each client command of `corral` does, over the public Client API."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nodes.cli.status import watch_status
from nodes.client import Client
from nodes.config import load_config
from nodes.config.fields import ConfigError
from transport.errors import Unauthorized

if TYPE_CHECKING:
    from transport.zmq import CurveClientConfig

KEY_NAMES = ("coordinator", "worker", "client")
SECRET_KEY_MODE = 0o600


def resolve_address(
    connect: tuple[str, ...] | None, config: str | None, default: str
) -> tuple[str, ...]:
    """`--connect` (one endpoint or several), else the first coordinator of `--config` (with
    the standbys sharing its database), else the default endpoint."""
    if connect:
        return connect
    if config:
        addresses = load_config(config).client_addresses()
        if not addresses:
            raise ConfigError(f"{config}: no coordinator node to connect to")
        return addresses
    return (default,)


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


def to_json(value: Any) -> str:
    """Pretty JSON; binary (msgpack bin) shown as text so nothing makes the CLI crash."""

    def fallback(obj: Any) -> Any:
        if isinstance(obj, bytes):
            return obj.decode("utf-8", errors="replace")
        return repr(obj)

    return json.dumps(value, indent=2, sort_keys=True, default=fallback)


def _client(args: argparse.Namespace) -> Client:
    return Client(args.address, timeout=args.timeout, curve=getattr(args, "curve", None))


def cancel(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.cancel(args.job_id))
    return 0


def retry(args: argparse.Namespace) -> int:
    with _client(args) as client:
        print(client.retry(args.job_id))
    return 0


def delete(args: argparse.Namespace) -> int:
    """`corral delete JOB_ID` (admin role): an ended job is forgotten for good."""
    with _client(args) as client:
        client.delete(args.job_id)
    print(f"job {args.job_id} deleted")
    return 0


def queue(args: argparse.Namespace) -> int:
    """`corral queue pause|resume QUEUE` (admin role)."""
    with _client(args) as client:
        if args.queue_command == "pause":
            client.pause_queue(args.queue)
            print(f"queue {args.queue} paused: it takes enqueues and hands out no job")
        else:
            client.resume_queue(args.queue)
            print(f"queue {args.queue} resumed")
    return 0


def direct(args: argparse.Namespace) -> int:
    with _client(args) as client:
        try:
            workers = client.stats()["workers"]
        except Unauthorized:  # an admin-only key may direct but not read `stats`: ids only
            workers = []
        worker_id = find_worker(workers, args.worker_id)
        client.direct(worker_id, args.state)
    named = "" if worker_id == args.worker_id else f" ({args.worker_id})"
    print(f"worker {worker_id}{named} directed to {args.state}")
    return 0


def find_worker(workers: list[dict[str, Any]], given: str) -> str:
    """The live worker `given` names: its id, its node name, or a unique prefix of its id.

    Nothing matching is left to the coordinator to refuse (`unknown_worker`); several matches
    are a usage error listing them.
    """
    live = [w for w in workers if w.get("state") != "terminated"]
    for matches in (
        [w for w in live if w["worker_id"] == given],
        [w for w in live if w.get("name") == given],
        [w for w in live if str(w["worker_id"]).startswith(given)],
    ):
        if len(matches) == 1:
            return str(matches[0]["worker_id"])
        if matches:
            candidates = ", ".join(
                f"{w['worker_id']}" + (f" ({w['name']})" if w.get("name") else "") for w in matches
            )
            raise ConfigError(f"{given!r} names {len(matches)} workers: {candidates}")
    return given


def status(args: argparse.Namespace) -> int:
    with _client(args) as client:
        address = ",".join(args.address)
        return watch_status(client, as_json=args.json, interval=args.watch, address=address)


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
