"""Open a store from its URL: `memory`, `sqlite:///relative.db` / `sqlite:////abs.db`, or
`postgresql://user:pass@host:port/db` (`postgres://` too), which the coordinator opens under
its lease term instead.

A SQLite URL may set retention in seconds, e.g.
`sqlite:///corral.db?completed_retention_s=3600&discarded_retention_s=604800`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode

from actors.store.base import Store
from actors.store.memory import MemoryStore
from actors.store.shared import MemoryDatabase
from nodes.leadership.database import InMemory, Postgres, SharedDatabase

RETENTION_OPTIONS = ("completed_retention_s", "discarded_retention_s")
POSTGRES_PREFIXES = ("postgresql://", "postgres://")


def open_store(url: str) -> Store:
    """Build the store a config names; raise ValueError with the URL for anything else."""
    if url == "memory":
        return MemoryStore()
    if url.startswith("sqlite:///"):
        from actors.store.sqlite import SqliteStore

        path, _, query = url.removeprefix("sqlite:///").partition("?")
        return SqliteStore(path, **_retention(url, _options(query)))
    if url.startswith(POSTGRES_PREFIXES):
        raise ValueError(
            f"store {redacted(url)!r}: a PostgreSQL store is opened by the coordinator under its "
            "lease, shared with its standbys (Coordinator(store=url); docs/HA.md)"
        )
    raise ValueError(
        f"unknown store {url!r}: use 'memory', 'sqlite:///path.db' or "
        "'postgresql://user:pass@host:port/db'"
    )


def shared_database(spec: object) -> SharedDatabase | None:
    """The database several coordinators share that `spec` names (a PostgreSQL URL, or a
    MemoryDatabase in a simulation); None for a store of one coordinator's own."""
    if isinstance(spec, (InMemory, Postgres)):
        return spec
    if isinstance(spec, MemoryDatabase):
        return InMemory(spec)
    if not (isinstance(spec, str) and spec.startswith(POSTGRES_PREFIXES)):
        return None
    base, _, query = spec.partition("?")
    ours, libpq = [], []
    for option in _options(query):
        (ours if option[0] in RETENTION_OPTIONS else libpq).append(option)
    theirs = urlencode(libpq)
    retention = _retention(redacted(spec), ours)  # never the password in an error
    return Postgres(base + ("?" + theirs if theirs else ""), retention)


def redacted(url: str) -> str:
    """`url` with its password replaced by `***`."""
    from actors.store.postgres import redacted as hide

    return hide(url)


def _options(query: str) -> list[tuple[str, str]]:
    return parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query))


def _retention(url: str, pairs: list[tuple[str, str]]) -> dict[str, float]:
    options: dict[str, float] = {}
    for name, value in pairs:
        if name not in RETENTION_OPTIONS:
            raise ValueError(
                f"store {url!r}: unknown option {name!r} (known: {', '.join(RETENTION_OPTIONS)})"
            )
        try:
            seconds = float(value)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0:
            raise ValueError(f"store {url!r}: {name} must be a number of seconds >= 0")
        options[name] = seconds
    return options
