"""The `security` mappings of a config (docs/SECURITY.md, docs/PROTOCOL.md section 7).

A coordinator's `security` names its secret key and the allowed public keys with their roles;
a worker's or producer's names its own secret key and the coordinator's public key. Paths are
resolved against the config's directory when parsed; the key files are read when a node is
built, and an unreadable or wrong file is refused with the file, node and key named.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes.config import fields as f
from nodes.config.fields import ConfigError, Where
from transport.auth import ROLES, SecuritySettings, load_key_pair, load_public_key
from transport.zmq import CurveClientConfig

SECRET_SUFFIX = "_secret"  # zmq.auth.create_certificates: NAME.key and NAME.key_secret


@dataclass(frozen=True, kw_only=True)
class AuthorizedKey:
    """One allowed CURVE public key and the roles it may use (PROTOCOL.md section 7)."""

    public_key_file: Path = field(metadata=f.FILE_PATH)
    roles: tuple[str, ...] = field(metadata=f.STR_LIST)


def _authorized(value: Any, where: Where, name: str) -> tuple[AuthorizedKey, ...]:
    if not isinstance(value, list):
        raise where.error("expected a list of {public_key_file, roles}", name)
    keys = []
    for i, item in enumerate(value):
        entry = AuthorizedKey(**f.parse_keys(item, AuthorizedKey, where, f"{name}[{i}]."))
        unknown = sorted(set(entry.roles) - ROLES)
        if unknown:
            raise where.error(f"unknown roles {unknown}; use {sorted(ROLES)}", f"{name}[{i}].roles")
        keys.append(entry)
    return tuple(keys)


def _read(where: Where, key: str, read: Any, path: Path) -> Any:
    """Run `read(path)`, turning a missing or malformed key file into a ConfigError."""
    try:
        return read(path)
    except (OSError, ValueError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise where.error(
            f"cannot read CURVE key file {path}: {reason} (make keys with `corral keys generate`)",
            key,
        ) from None


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """A coordinator's CURVE keys: its own secret key and the allow-list with roles."""

    secret_key_file: Path = field(metadata=f.FILE_PATH)
    authorized: tuple[AuthorizedKey, ...] = field(default=(), metadata=f.check(_authorized))

    def settings(self, where: Where) -> SecuritySettings:
        """Read every key file (ConfigError naming the key on failure)."""
        public, secret = _read(
            where, "security.secret_key_file", load_key_pair, self.secret_key_file
        )
        return SecuritySettings(public, secret, self.allowed(where))

    def allowed(self, where: Where) -> dict[str, frozenset[str]]:
        """Z85 public key -> roles; a key listed twice gets the union of its roles."""
        allowed: dict[str, frozenset[str]] = {}
        for i, entry in enumerate(self.authorized):
            key = f"security.authorized[{i}].public_key_file"
            public = _read(where, key, load_public_key, entry.public_key_file).decode("ascii")
            allowed[public] = allowed.get(public, frozenset()) | frozenset(entry.roles)
        return allowed

    def server_public_key(self, where: Where) -> bytes:
        """The coordinator's public key: from NAME.key next to the secret file if present (it
        needs no secret to read), else from the secret file itself."""
        public_file = _public_sibling(self.secret_key_file)
        if public_file is not None and public_file.is_file():
            return _read(where, "security.secret_key_file", load_public_key, public_file)
        return _read(where, "security.secret_key_file", load_public_key, self.secret_key_file)


@dataclass(frozen=True, kw_only=True)
class PeerSecurityConfig:
    """A worker's or producer's CURVE keys: its own key pair and the coordinator's public key."""

    secret_key_file: Path = field(metadata=f.FILE_PATH)
    server_public_key_file: Path = field(metadata=f.FILE_PATH)

    def curve(self, where: Where) -> CurveClientConfig:
        public, secret = _read(
            where, "security.secret_key_file", load_key_pair, self.secret_key_file
        )
        server = _read(
            where, "security.server_public_key_file", load_public_key, self.server_public_key_file
        )
        return CurveClientConfig(public, secret, server)


def parse_security(value: Any, where: Where, name: str) -> SecurityConfig:
    return SecurityConfig(**f.parse_keys(value, SecurityConfig, where, f"{name}."))


def parse_peer_security(value: Any, where: Where, name: str) -> PeerSecurityConfig:
    return PeerSecurityConfig(**f.parse_keys(value, PeerSecurityConfig, where, f"{name}."))


def _public_sibling(secret_file: Path) -> Path | None:
    name = secret_file.name
    return (
        secret_file.with_name(name[: -len(SECRET_SUFFIX)]) if name.endswith(SECRET_SUFFIX) else None
    )


def local_curve(
    security: SecurityConfig, where: Where, peers: Iterable[PeerSecurityConfig], role: str
) -> CurveClientConfig:
    """Keys for a command-line client or the runner on the coordinator's host.

    Candidates, in order: the NAME.key_secret next to each authorized NAME.key that has `role`,
    then the secret key of each peer node of the file. The first readable one whose public key
    the allow-list grants `role` is used; the coordinator's public key comes from its key files.
    """
    allowed = security.allowed(where)
    candidates = [
        entry.public_key_file.with_name(entry.public_key_file.name + SECRET_SUFFIX)
        for entry in security.authorized
        if role in entry.roles
    ]
    candidates += [peer.secret_key_file for peer in peers]
    for path in candidates:
        try:
            public, secret = load_key_pair(path)
        except (OSError, ValueError):
            continue
        if role in allowed.get(public.decode("ascii"), ()):
            return CurveClientConfig(public, secret, security.server_public_key(where))
    raise ConfigError(
        f"{where.file}: node {where.node!r} requires CURVE keys and no readable secret key with "
        f"role {role!r} was found next to its authorized keys; pass --keys DIR or "
        "--secret-key-file FILE --server-key-file FILE"
    )
