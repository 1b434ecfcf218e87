"""Open a store from its URL: `memory`, `sqlite:///relative.db` / `sqlite:////abs.db`, or
`postgresql://user:pass@host:port/db` (`postgres://` too), which the coordinator opens under
its lease term instead.

A SQLite URL may set retention in seconds, e.g.
`sqlite:///corral.db?completed_retention_s=3600&discarded_retention_s=604800`.
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from actors.store.base import Store
from actors.store.memory import MemoryStore

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
        from actors.store.postgres import redacted

        raise ValueError(
            f"store {redacted(url)!r}: a PostgreSQL store is opened by the coordinator under "
            "its lease term (actors.store.postgres.PostgresStore(url, term=...)), not by open_store"
        )
    raise ValueError(
        f"unknown store {url!r}: use 'memory', 'sqlite:///path.db' or "
        "'postgresql://user:pass@host:port/db'"
    )


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
