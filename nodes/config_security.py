"""The `security` mapping of a coordinator config (DESIGN.md section 4, PROTOCOL.md section 7).

Parsed and checked here (key files resolved against the config's directory, roles known);
applying CURVE to the coordinator's socket is the transport's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nodes import config_fields as f
from nodes.config_fields import Where

ROLES = frozenset({"worker", "client", "admin"})


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


@dataclass(frozen=True, kw_only=True)
class SecurityConfig:
    """CURVE keys of a coordinator. Parsed and checked here; the transport applies them."""

    secret_key_file: Path = field(metadata=f.FILE_PATH)
    authorized: tuple[AuthorizedKey, ...] = field(default=(), metadata=f.check(_authorized))


def parse_security(value: Any, where: Where, name: str) -> SecurityConfig:
    return SecurityConfig(**f.parse_keys(value, SecurityConfig, where, f"{name}."))
