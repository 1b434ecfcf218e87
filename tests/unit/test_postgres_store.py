"""The PostgreSQL store on the session's private cluster (tests/pg.py): the schema is migrated
at open and versioned, a lost connection delays replies instead of losing changes, and a store
that cannot be used says which database and why, never showing the password."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from actors import states
from actors.store import postgres_writer
from actors.store.postgres import SCHEMA_VERSION, PostgresStore, redacted
from actors.store.sqlite import StoreError
from nodes.stores import open_store
from tests.unit.store_jobs import WAIT_S, StoreKinds, make_job, open_kind


@pytest.fixture
def pg(request, tmp_path) -> Iterator[StoreKinds]:
    yield from open_kind(request, "postgresql", tmp_path)


def query(url: str, sql: str) -> list[tuple]:
    with psycopg.connect(url, autocommit=True) as connection:
        cursor = connection.execute(sql)
        return cursor.fetchall() if cursor.description else []


def test_a_new_database_is_migrated_to_the_current_schema_version_once(pg):
    pg.open().close()
    pg.open().close()
    assert query(pg.location, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    columns = query(
        pg.location,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'jobs' "
        "ORDER BY ordinal_position",
    )
    assert [name for (name,) in columns] == [
        "id", "queue", "state", "unique_key", "ended_at", "wire"
    ]


def test_a_database_of_a_newer_schema_version_is_refused_and_kept_as_it_is(pg):
    pg.open().close()
    query(pg.location, f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}"):
        pg.open()
    assert query(pg.location, "SELECT version FROM schema_version") == [(SCHEMA_VERSION + 1,)]


def test_a_commit_on_a_dropped_connection_holds_its_replies_and_succeeds_on_a_new_one(
    pg, monkeypatch
):
    monkeypatch.setattr(postgres_writer, "RETRY_AFTER_FAILURE_S", 0.01)
    store = pg.open()
    store.add([make_job(1)])
    assert store.flush(WAIT_S)
    # The server ends the writer's session, as a restarted or failed-over server would.
    query(pg.location, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
          "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    replied = threading.Event()
    job = make_job(2)
    store.add([job])
    store.after_commit(replied.set)
    assert replied.wait(WAIT_S)
    assert pg.read_back(job.id) == states.AVAILABLE
    with pytest.raises(StoreError, match="is locked"):  # the new connection holds the lock
        pg.open()


def test_an_unreachable_server_is_refused_naming_the_database_without_its_password(postgres):
    url = f"postgresql://corral:s3cret@127.0.0.1:{postgres.port + 1}/nowhere"
    with pytest.raises(StoreError) as refused:
        PostgresStore(url)
    message = str(refused.value)
    assert "cannot connect to the store postgresql://corral:***@127.0.0.1" in message
    assert "s3cret" not in message
    assert redacted("postgres://db/x") == "postgres://db/x"


def test_open_store_takes_retention_from_a_postgresql_url_and_passes_the_rest_to_libpq(pg):
    url = pg.location.replace("postgresql://postgres@", "postgres://postgres:s3cret@")
    store = open_store(f"{url}?completed_retention_s=60&application_name=corral-test")
    try:
        assert isinstance(store, PostgresStore)
        assert store._index.retention_s[states.COMPLETED] == 60.0
        names = query(pg.location, "SELECT application_name FROM pg_stat_activity")
        assert ("corral-test",) in names
    finally:
        store.close()
    with pytest.raises(ValueError, match="completed_retention_s must be a number") as refused:
        open_store(f"{url}?completed_retention_s=soon")
    assert "postgres:***@" in str(refused.value) and "s3cret" not in str(refused.value)
