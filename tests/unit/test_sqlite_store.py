"""The SQLite store on real files: a failed commit holds its replies, a store that cannot be
used says which file and why, and schema versions. What every durable store holds to (restart,
group commit, retention, the lock) is tested in test_store_contract.py."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from actors import states
from actors.jobs import Job
from actors.store import record, sqlite_writer
from actors.store.sqlite import SCHEMA_VERSION, SqliteStore, StoreError
from nodes.stores import open_store
from tests.unit.store_jobs import T0, WAIT_S, finish, make_job


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "corral.db")


@pytest.fixture
def stores() -> Any:
    """Open SqliteStores through `open(path)`; every one still open is closed at teardown."""
    opened: list[SqliteStore] = []

    def open_(path: str, **options: Any) -> SqliteStore:
        store = SqliteStore(path, **options)
        opened.append(store)
        return store

    yield open_
    for store in opened:
        store.close()


def user_version(path: str) -> int:
    connection = sqlite3.connect(path)
    try:
        return connection.execute("PRAGMA user_version").fetchone()[0]
    finally:
        connection.close()


def read_back(path: str, job_id: str) -> str | None:
    """The state on disk, through a connection of its own (what a restart would read)."""
    connection = sqlite3.connect(path)
    try:
        found = connection.execute("SELECT state FROM jobs WHERE id = ?", (job_id,)).fetchone()
    finally:
        connection.close()
    return found[0] if found else None


def test_a_file_that_is_not_a_database_is_refused_at_open_naming_the_file(tmp_path, stores):
    bad = tmp_path / "corral.db"
    bad.write_bytes(b"this is not a database " * 200)
    with pytest.raises(StoreError, match=f"{bad}.*corrupt"):
        stores(str(bad))


def test_a_database_with_a_damaged_page_is_refused_at_open_naming_the_file(path, stores):
    store = stores(path)
    store.add([make_job(n) for n in range(3000)])
    store.close()
    with open(path, "r+b") as file:
        middle = os.path.getsize(path) // 4096 // 2  # inside the job table, far from the header
        file.seek(4096 * middle + 64)
        file.write(bytes(range(256)) * 8)
    with pytest.raises(StoreError, match=f"{path}.*corrupt"):
        stores(path)


def test_a_row_that_is_not_a_job_is_refused_at_open_naming_the_file(path, stores):
    store = stores(path)
    store.add([make_job(1)])
    store.close()
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE jobs SET wire = ?", (b"\xc1garbage",))
    connection.close()
    with pytest.raises(StoreError, match=f"{path}.*unreadable"):
        stores(path)


@pytest.mark.parametrize(
    ("where", "problem"),
    [("missing/corral.db", "does not exist"), ("a-file/corral.db", "is not a directory")],
)
def test_a_store_whose_directory_cannot_hold_it_is_refused_naming_the_file(
    tmp_path, stores, where, problem
):
    (tmp_path / "a-file").write_text("")
    target = tmp_path / where
    with pytest.raises(StoreError, match=f"{target}.*{problem}"):
        stores(str(target))


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """No file can be created in `directory` (root ignores modes: mark it immutable)."""
    if os.geteuid() != 0:
        directory.chmod(0o500)
        undo = ["chmod", "700", str(directory)]
    else:
        if subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode:
            pytest.skip("root without chattr: cannot make a directory unwritable")
        undo = ["chattr", "-i", str(directory)]
    try:
        yield
    finally:
        subprocess.run(undo, check=True)


@pytest.mark.parametrize("existing", [False, True], ids=["new-store", "existing-store"])
def test_an_unwritable_directory_is_refused_naming_the_file(tmp_path, stores, existing):
    directory = tmp_path / "read-only"
    directory.mkdir()
    target = str(directory / "corral.db")
    if existing:
        stores(target).close()
    with unwritable(directory), pytest.raises(StoreError, match=target):
        stores(target)


class WrappedConnection:
    """The writer's connection with a hook run before each statement (faults, pauses)."""

    def __init__(self, connection: sqlite3.Connection, before: Any) -> None:
        self.connection = connection
        self.before = before

    @property
    def in_transaction(self) -> bool:
        return self.connection.in_transaction

    def execute(self, sql: str, parameters: Any) -> Any:
        self.before()
        return self.connection.execute(sql, parameters)

    def close(self) -> None:
        self.connection.close()


def test_a_failed_commit_holds_its_replies_and_is_retried_until_it_succeeds(
    path, stores, monkeypatch
):
    monkeypatch.setattr(sqlite_writer, "RETRY_AFTER_FAILURE_S", 0.01)
    store = stores(path)
    failures = [sqlite3.OperationalError("database or disk is full")] * 3

    def fail_like_a_full_disk() -> None:
        if failures:
            raise failures.pop()

    store._writer._connection = WrappedConnection(store._writer._connection, fail_like_a_full_disk)
    replied = threading.Event()
    store.add([make_job(1)])
    store.after_commit(replied.set)
    assert replied.wait(WAIT_S)
    assert failures == [] and store.commits == 1
    assert read_back(path, "job-00001") == states.AVAILABLE


def test_a_reply_leaves_after_the_commit_holding_its_change_not_after_the_next_one(path, stores):
    store = stores(path)
    in_commit, gate = threading.Event(), threading.Event()

    def pause_the_first_commit() -> None:
        if not gate.is_set():
            in_commit.set()
            gate.wait(WAIT_S)

    store._writer._connection = WrappedConnection(store._writer._connection, pause_the_first_commit)
    store.add([make_job(1)])
    assert in_commit.wait(WAIT_S)  # job 1 is being committed
    seen: list[tuple[str | None, str | None]] = []
    replied = threading.Event()

    def reply() -> None:
        seen.append((read_back(path, "job-00001"), read_back(path, "job-00002")))
        replied.set()

    store.after_commit(reply)
    store.add([make_job(2)])  # pending behind the commit in progress
    gate.set()
    assert replied.wait(WAIT_S)
    assert seen == [(states.AVAILABLE, None)]


def test_open_store_reads_retention_from_the_url_and_refuses_unknown_options(tmp_path):
    store = open_store(
        f"sqlite:///{tmp_path}/c.db?completed_retention_s=60&discarded_retention_s=0"
    )
    try:
        assert isinstance(store, SqliteStore)
        assert store._index.retention_s[states.COMPLETED] == 60.0
        assert store._index.retention_s[states.DISCARDED] == 0.0
    finally:
        store.close()
    with pytest.raises(ValueError, match="unknown option 'ttl'"):
        open_store(f"sqlite:///{tmp_path}/d.db?ttl=5")
    with pytest.raises(ValueError, match="completed_retention_s must be a number"):
        open_store(f"sqlite:///{tmp_path}/d.db?completed_retention_s=soon")


# -- schema versions ------------------------------------------------------------------------------

V1_SCHEMA = """
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    queue TEXT NOT NULL,
    state TEXT NOT NULL,
    unique_key TEXT,
    ended_at REAL,
    wire BLOB NOT NULL
) WITHOUT ROWID
"""


def write_version_1_file(path: str, jobs: list[Job]) -> None:
    """A file as corral with schema version 1 left it: each row's `wire` the Job map itself."""
    connection = sqlite3.connect(path)
    with connection:
        connection.execute(V1_SCHEMA)
        connection.executemany(
            "INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    job.id,
                    job.queue,
                    job.state,
                    job.unique_key,
                    job.completed_at if job.terminal else None,
                    msgpack.packb(job.to_wire(), use_bin_type=True),
                )
                for job in jobs
            ],
        )
        connection.execute("PRAGMA user_version=1")
    connection.close()


def test_a_schema_version_1_file_opens_with_every_job_count_and_unique_key(path, stores):
    jobs = [make_job(n, queue="a" if n % 2 else "b") for n in range(6)]
    jobs[5].unique_key = "nightly-report"
    jobs[1].meta = {"owner": "ops"}
    finish(jobs[0], states.COMPLETED, T0 + 50, result={"n": 0}, attempt=1)
    finish(jobs[2], states.DISCARDED, T0 + 60, attempt=3)
    jobs[2].record_error("ValueError", "bad input", T0 + 60)
    jobs[3].state, jobs[3].attempt, jobs[3].worker_id = states.ACTIVE, 1, "w-1"
    write_version_1_file(path, jobs)

    store = stores(path)
    # settings (4), limits (5), flows (6), deadlines (7)
    assert user_version(path) == SCHEMA_VERSION == 7
    assert store.settings() == {}
    assert {job.id: store.get(job.id) for job in jobs} == {job.id: job.to_wire() for job in jobs}
    none = dict.fromkeys(states.JOB_STATES, 0)
    assert store.counts() == {
        "a": {**none, "available": 2, "active": 1},
        "b": {**none, "available": 1, "completed": 1, "discarded": 1},
    }
    assert store.unique_holder("nightly-report") == jobs[5].id
    assert [wire["id"] for wire in store.list(state=states.DISCARDED)] == [jobs[2].id]
    unfinished = {job.id: job for job in (entry.job(0) for entry in store.unfinished())}
    assert set(unfinished) == {jobs[n].id for n in (1, 3, 4, 5)}
    assert unfinished[jobs[3].id].worker_id == "w-1"
    assert unfinished[jobs[1].id].meta == {"owner": "ops"}

    # A job saved since is a record on disk; the rest stay Job maps, and both read back.
    store.save(finish(jobs[3], states.COMPLETED, T0 + 70, result=[3]))
    expected = {job.id: job.to_wire() for job in jobs}
    store.close()
    connection = sqlite3.connect(path)
    rows = dict(connection.execute("SELECT id, wire FROM jobs").fetchall())
    connection.close()
    assert isinstance(msgpack.unpackb(rows[jobs[3].id]), list)
    assert isinstance(msgpack.unpackb(rows[jobs[4].id]), dict)
    reopened = stores(path)
    assert {job.id: reopened.get(job.id) for job in jobs} == expected


def test_rows_hold_records_that_read_back_as_the_saved_wire_forms(path, stores):
    store = stores(path)
    jobs = [make_job(n) for n in range(3)]
    store.add(jobs)
    store.save(finish(jobs[1], states.COMPLETED, T0 + 9, result={"ok": True}, attempt=1))
    assert store.flush(WAIT_S)
    connection = sqlite3.connect(path)
    try:
        rows = connection.execute("SELECT id, queue, state, ended_at, wire FROM jobs").fetchall()
    finally:
        connection.close()
    assert sorted(rows) == sorted(
        (job.id, job.queue, job.state, job.completed_at, record.pack(job)) for job in jobs
    )
    assert [record.unpack(row[4]) for row in sorted(rows)] == [job.to_wire() for job in jobs]


def test_a_file_of_a_newer_schema_version_is_refused_naming_the_file_and_kept_as_it_is(
    path, stores
):
    stores(path).close()
    connection = sqlite3.connect(path)
    connection.execute(f"PRAGMA user_version={SCHEMA_VERSION + 1}")
    connection.close()
    with pytest.raises(StoreError, match=f"{path} has schema version {SCHEMA_VERSION + 1}"):
        stores(path)
    assert user_version(path) == SCHEMA_VERSION + 1


def test_a_version_1_file_with_an_unreadable_row_is_refused_and_keeps_its_version(path, stores):
    write_version_1_file(path, [make_job(1)])
    connection = sqlite3.connect(path)
    with connection:
        connection.execute("UPDATE jobs SET wire = ?", (msgpack.packb({"id": "job-00001"}),))
    connection.close()
    with pytest.raises(StoreError, match=f"{path}.*unreadable.*not a job map"):
        stores(path)
    assert user_version(path) == 1  # still readable by the corral that wrote it
