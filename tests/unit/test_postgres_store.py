"""The PostgreSQL store on the session's private cluster (tests/pg.py): the schema is migrated
at open and versioned, a lost connection delays replies instead of losing changes, a batch in
flight during a takeover lands before the new term begins or not at all, and a store that
cannot be used says which database and why, never showing the password."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import psycopg
import pytest

from actors import states
from actors.store import postgres_writer
from actors.store.postgres import SCHEMA_VERSION, PostgresStore, redacted
from actors.store.postgres_lease import PostgresLease
from actors.store.sqlite import StoreError
from nodes.leadership.database import Postgres
from nodes.stores import open_store, shared_database
from tests.conftest import wait_for
from tests.unit.store_jobs import (
    LEASE_TTL_S,
    T0,
    WAIT_S,
    StoreKinds,
    finish,
    make_job,
    open_kind,
)


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
        "id", "queue", "state", "unique_key", "ended_at", "wire", "version"
    ]


def test_a_version_3_database_gets_row_versions_and_keeps_its_jobs(pg):
    store = pg.open()
    store.add([make_job(1), make_job(2)])
    store.close()
    query(  # as corral 3 left it: no row versions
        pg.location,
        "ALTER TABLE jobs DROP COLUMN version; DROP SEQUENCE jobs_version; "
        "DROP TABLE corral_settings; DROP TABLE jobs_deleted; "
        "UPDATE schema_version SET version = 3",
    )
    follower = pg.follow()  # migrates, then loads: the old rows are version 0
    store = pg.open()
    assert store.get("job-00001")["state"] == states.AVAILABLE
    store.save(finish(make_job(2), states.ACTIVE, None, worker_id="w-1"))
    assert store.flush(WAIT_S)
    assert follower.catch_up(T0) == 1 and follower.index.get("job-00002")["state"] == "active"
    assert query(pg.location, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


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


def test_an_unreachable_server_is_refused_naming_the_database_without_its_password(postgres):
    url = f"postgresql://corral:s3cret@127.0.0.1:{postgres.port + 1}/nowhere"
    with pytest.raises(StoreError) as refused:
        PostgresStore(url, term=1)
    message = str(refused.value)
    assert "cannot connect to the store postgresql://corral:***@127.0.0.1" in message
    assert "s3cret" not in message
    assert redacted("postgres://db/x") == "postgres://db/x"


def test_open_store_refuses_a_postgresql_url_which_the_coordinator_opens_under_its_lease():
    with pytest.raises(ValueError, match="opened by the coordinator under its lease") as refused:
        open_store("postgres://corral:s3cret@db.example/corral")
    assert "corral:***@" in str(refused.value) and "s3cret" not in str(refused.value)


def lock_waiters(url: str) -> int:
    """Sessions of this database waiting for a lock held by another transaction."""
    return query(
        url,
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE datname = current_database() AND wait_event_type = 'Lock'",
    )[0][0]


def test_a_batch_holding_the_fence_when_a_takeover_comes_lands_before_the_new_term_begins(pg):
    deposed = threading.Event()
    store = pg.open(on_deposed=deposed.set)
    job = make_job(1)
    store.add([job])
    assert store.flush(WAIT_S)
    with psycopg.connect(pg.location) as blocker, psycopg.connect(pg.location) as standby:
        # The batch takes the fence, then waits for a job row the blocker holds.
        blocker.execute("SELECT 1 FROM jobs WHERE id = %s FOR UPDATE", [job.id])
        replied = threading.Event()
        store.save(finish(job, states.ACTIVE, None))
        store.after_commit(replied.set)
        wait_for(lambda: lock_waiters(pg.location) == 1, WAIT_S, what="the batch waits")
        lease = PostgresLease(pg.location)
        try:  # a renewal changes no key: it does not wait for the batch (lock_timeout is 1 s)
            assert lease.renew("tests", pg.term, LEASE_TTL_S)
        finally:
            lease.close()
        took: list[int] = []
        takeover = threading.Thread(
            target=lambda: took.append(
                standby.execute("UPDATE corral_lease SET term = term + 1 RETURNING term")
                .fetchone()[0]
            )
        )
        takeover.start()
        wait_for(lambda: lock_waiters(pg.location) == 2, WAIT_S, what="the takeover waits")
        assert took == []  # the new term waits for the batch holding the old one
        blocker.rollback()
        assert replied.wait(WAIT_S)
        takeover.join(WAIT_S)
        standby.commit()
    assert took == [pg.term + 1] and not deposed.is_set()
    assert pg.read_back(job.id) == states.ACTIVE
    store.save(finish(job, states.COMPLETED, T0))  # the next batch is of the old term
    assert deposed.wait(WAIT_S) and pg.read_back(job.id) == states.ACTIVE


def test_a_batch_that_waited_for_a_takeover_lands_nothing(pg):
    deposed = threading.Event()
    store = pg.open(on_deposed=deposed.set)
    job = make_job(1)
    store.add([job])
    assert store.flush(WAIT_S)
    with psycopg.connect(pg.location) as standby:
        standby.execute("UPDATE corral_lease SET term = term + 1")  # not yet committed
        replied = threading.Event()
        store.save(finish(job, states.ACTIVE, None))
        store.after_commit(replied.set)
        wait_for(lambda: lock_waiters(pg.location) == 1, WAIT_S, what="the batch waits")
        standby.commit()
    assert deposed.wait(WAIT_S)
    assert not store.flush(WAIT_S) and not replied.is_set()
    assert pg.read_back(job.id) == states.AVAILABLE


def test_a_postgresql_url_names_a_shared_database_with_retention_and_libpq_options():
    database = shared_database(
        "postgresql://corral:s3cret@db.example/corral?completed_retention_s=60&sslmode=require"
    )
    assert isinstance(database, Postgres)
    assert database.retention == {"completed_retention_s": 60.0}
    assert database.url == "postgresql://corral:s3cret@db.example/corral?sslmode=require"
    assert database.name == "postgresql://corral:***@db.example/corral?sslmode=require"
    with pytest.raises(ValueError, match="completed_retention_s must be a number") as refused:
        shared_database("postgresql://corral:s3cret@db.example/corral?completed_retention_s=soon")
    assert "s3cret" not in str(refused.value)
    assert shared_database("memory") is None and shared_database("sqlite:///x.db") is None
