"""CURVE for the coordinator: the allow-list of public keys, its ZAP handler, the role table.

PROTOCOL.md section 7. The coordinator's ROUTER is a CURVE server whose ZAP requests are
answered by a `zmq.auth.thread.ThreadAuthenticator` on the server's own context: a key in the
allow-list passes the handshake with its Z85 text as ZAP User-Id, any other key (or a peer
without CURVE) fails it and never reaches the application. Past the handshake, each request
type needs one role (`REQUIRED_ROLE`); the dispatcher answers `unauthorized` when it is missing.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from transport.zmq import ZAP_DOMAIN, CurveClientConfig, CurveServerConfig

log = logging.getLogger(__name__)

WORKER, CLIENT, ADMIN = "worker", "client", "admin"
ROLES = frozenset({WORKER, CLIENT, ADMIN})
ANY_ALLOWED_KEY = ""  # the "role" of ping: any key in the allow-list
# Each request type and the role it needs (PROTOCOL.md section 7). `retry` is this project's
# extension and needs `client` like the other job requests; `delete` (extension "Delete")
# forgets a job for good and needs `admin`. Admin does not imply client.
REQUIRED_ROLE: Mapping[str, str] = {
    "hello": WORKER,
    "register": WORKER,
    "beat": WORKER,
    "fetch": WORKER,
    "ack": WORKER,
    "fail": WORKER,
    "outcomes": WORKER,
    "deregister": WORKER,
    "enqueue": CLIENT,
    "get": CLIENT,
    "cancel": CLIENT,
    "stats": CLIENT,
    "retry": CLIENT,
    "jobs": CLIENT,
    "delete": ADMIN,
    "direct": ADMIN,
    "pause_queue": ADMIN,
    "resume_queue": ADMIN,
    "schedule_put": ADMIN,
    "schedule_remove": ADMIN,
    "schedule_pause": ADMIN,
    "schedule_resume": ADMIN,
    "schedules": CLIENT,
    "workflow": CLIENT,
    "workflow_get": CLIENT,
    "workflow_cancel": CLIENT,
    "ping": ANY_ALLOWED_KEY,
}
# Denied keys are logged at WARNING once each, up to this many, then at DEBUG: a peer retrying
# a refused handshake every 100 ms must not flood the log.
MAX_DENIED_KEYS_LOGGED = 1000


def permits(roles: frozenset[str] | None, kind: str) -> bool:
    """May a peer holding `roles` send a request of type `kind`? None: security is off."""
    if roles is None:
        return True
    needed = REQUIRED_ROLE.get(kind)
    if needed is None:  # a type outside the table is refused by validation, not here
        return True
    return bool(roles) if needed == ANY_ALLOWED_KEY else needed in roles


def load_public_key(path: str | os.PathLike[str]) -> bytes:
    """The Z85 public key of a certificate file (`*.key` or `*.key_secret`)."""
    public, _ = zmq.auth.load_certificate(path)
    return public


def load_key_pair(path: str | os.PathLike[str]) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys of a `*.key_secret` file; ValueError if it holds no secret."""
    public, secret = zmq.auth.load_certificate(path)
    if not secret:
        raise ValueError(f"{path} holds no secret key (use the *.key_secret file)")
    return public, secret


def client_curve(
    secret_key_file: str | os.PathLike[str], server_public_key_file: str | os.PathLike[str]
) -> CurveClientConfig:
    """A worker's or client's CURVE settings from its key_secret file and the server's key."""
    public, secret = load_key_pair(secret_key_file)
    return CurveClientConfig(public, secret, load_public_key(server_public_key_file))


@dataclass(frozen=True)
class SecuritySettings:
    """The coordinator's key pair and its allow-list: Z85 public key -> roles."""

    public_key: bytes
    secret_key: bytes
    allowed: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key, roles in self.allowed.items():
            unknown = set(roles) - ROLES
            if not roles or unknown:
                raise ValueError(f"key {key}: roles must be a non-empty subset of {sorted(ROLES)}")

    @classmethod
    def from_files(
        cls,
        secret_key_file: str | os.PathLike[str],
        authorized: Iterable[tuple[str | os.PathLike[str], Iterable[str]]],
    ) -> SecuritySettings:
        """Read the coordinator's `*.key_secret` and each `(public_key_file, roles)`.

        A key listed twice gets the union of its roles.
        """
        public, secret = load_key_pair(secret_key_file)
        allowed: dict[str, frozenset[str]] = {}
        for path, roles in authorized:
            key = load_public_key(path).decode("ascii")
            allowed[key] = allowed.get(key, frozenset()) | frozenset(roles)
        return cls(public, secret, allowed)

    @property
    def server(self) -> CurveServerConfig:
        return CurveServerConfig(secret_key=self.secret_key, public_key=self.public_key)

    def roles(self, user_id: str | None) -> frozenset[str]:
        """The roles of a ZAP User-Id (a Z85 public key); empty when it is not allowed."""
        return self.allowed.get(user_id or "", frozenset())


class CurveAuthenticator:
    """The coordinator's ZAP handler: admits exactly the keys of the allow-list.

    It must run on the context of the socket it guards (ZAP is an inproc endpoint of that
    context), so it makes that context and the coordinator hands it to its `ZmqServer`;
    `stop()` ends the ZAP thread and terminates the context once the server is closed.
    """

    def __init__(self, settings: SecuritySettings) -> None:
        self.settings = settings
        self.context: zmq.Context[Any] = zmq.Context()
        self._thread = ThreadAuthenticator(self.context, log=log)
        self._denied: set[str] = set()

    def start(self) -> CurveAuthenticator:
        self._thread.start()
        self._thread.configure_curve_callback(domain=ZAP_DOMAIN, credentials_provider=self)
        return self

    def callback(self, domain: str, key: bytes) -> bool:
        """Called by the ZAP thread with the peer's Z85 public key for every handshake."""
        text = key.decode("ascii", "replace")
        if text in self.settings.allowed:
            return True
        if len(self._denied) < MAX_DENIED_KEYS_LOGGED and text not in self._denied:
            self._denied.add(text)
            log.warning("refused a CURVE handshake from key %s: not in the allow-list", text)
        else:
            log.debug("refused a CURVE handshake from key %s", text)
        return False

    def stop(self) -> None:
        """Stop the ZAP thread and terminate the context (close the server first)."""
        self._thread.stop()
        self.context.term()
