"""The SQLite store on real files: what is acknowledged is on disk, many requests share one
commit, retention bounds the file, and a store that cannot be used says which file and why."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgpack
import pytest

from actors import states
from actors.base import Activity
from actors.jobs import Job
from actors.store import record, sqlite_writer
from actors.store.memory import MemoryStore
from actors.store.sqlite import SCHEMA_VERSION, SqliteStore, StoreError
from nodes.stores import open_store
from transport.messages import DEFAULT_RETRY, EMPTY_MAP

T0 = 1_700_000_000.0
WAIT_S = 10.0


def make_job(n: int, *, state: str = states.AVAILABLE, **fields: Any) -> Job:
    job = Job(
        id=f"job-{n:05d}",
        type="square",
        args=(n,),
        queue=fields.pop("queue", "default"),
        priority=0,
        scheduled_at=None,
        max_attempts=3,
        retry=DEFAULT_RETRY,
        timeout=None,
        route=EMPTY_MAP,
        unique_key=fields.pop("unique_key", None),
        meta=EMPTY_MAP,
        created_at=T0 + n,
        state=state,
    )
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def finish(job: Job, state: str, at: float, **fields: Any) -> Job:
    job.state = state
    job.completed_at = at
    for name, value in fields.items():
        setattr(job, name, value)
    return job


def add_then_call_from_the_writer(store: SqliteStore, job: Job, callback: Any) -> None:
    """Hand over `job`, then `callback`, holding the writer's lock so that it cannot commit
    the job in between: the callback then runs on the writer, after that commit."""
    with store._writer._cond:
        store.add([job])
        store.after_commit(callback)


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


def test_jobs_states_counts_and_unique_keys_are_the_same_after_close_and_reopen(path, stores):
    store = stores(path)
    jobs = [make_job(n, queue="a" if n % 2 else "b") for n in range(10)]
    jobs[9].unique_key = "nightly-report"
    assert store.add(jobs) == [None] * 10
    store.save(finish(jobs[0], states.COMPLETED, T0 + 50, result={"n": 0}, attempt=1))
    store.save(make_job(1, state=states.ACTIVE, queue="a", attempt=1, worker_id="w-1"))
    store.save(finish(jobs[2], states.DISCARDED, T0 + 60, attempt=3))
    before = {job.id: store.get(job.id) for job in jobs}
    counts = store.counts()
    store.close()

    reopened = stores(path)
    assert {job.id: reopened.get(job.id) for job in jobs} == before
    assert reopened.counts() == counts
    assert reopened.get("job-00000")["result"] == {"n": 0}
    assert reopened.unique_holder("nightly-report") == "job-00009"
    assert [wire["id"] for wire in reopened.list(limit=2)] == ["job-00009", "job-00008"]
    duplicate = reopened.add([make_job(99, unique_key="nightly-report")])
    assert duplicate[0]["id"] == "job-00009"
    unfinished = {job.id: job for job in reopened.unfinished()}
    assert set(unfinished) == {job.id for job in jobs} - {"job-00000", "job-00002"}
    assert unfinished["job-00001"].state == states.ACTIVE
    assert unfinished["job-00001"].worker_id == "w-1"


def test_a_reply_callback_runs_only_after_its_change_is_on_disk_and_callbacks_keep_order(
    path, stores
):
    store = stores(path)
    seen: list[tuple[int, str | None]] = []
    done = threading.Event()
    for n in range(200):
        job = make_job(n)
        store.add([job])
        store.after_commit(lambda n=n, job_id=job.id: seen.append((n, read_back(path, job_id))))
    store.after_commit(done.set)
    assert done.wait(WAIT_S)
    assert [n for n, _ in seen] == list(range(200))
    assert all(state == states.AVAILABLE for _, state in seen)


def test_a_callback_given_when_nothing_is_pending_runs_at_once_in_the_caller(path, stores):
    store = stores(path)
    ran_in: list[str] = []
    store.after_commit(lambda: ran_in.append(threading.current_thread().name))
    assert ran_in == [threading.current_thread().name]


def test_saves_arriving_during_a_commit_from_many_threads_share_the_next_transaction(path, stores):
    store = stores(path)
    entered, gate = threading.Event(), threading.Event()

    def hold_the_writer() -> None:
        entered.set()
        gate.wait(WAIT_S)

    add_then_call_from_the_writer(store, make_job(0), hold_the_writer)
    assert entered.wait(WAIT_S)
    replied: list[int] = []

    def requests(first: int) -> None:
        for n in range(first, first + 200):
            store.add([make_job(n)])
            store.after_commit(lambda n=n: replied.append(n))

    threads = [threading.Thread(target=requests, args=(1 + 200 * i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT_S)
    assert replied == []  # nothing replied before its commit
    gate.set()
    assert store.flush(WAIT_S)
    assert store.commits == 2  # 1,600 requests from 8 threads in one transaction
    assert sorted(replied) == list(range(1, 1601))


def test_free_running_request_reply_traffic_is_grouped_into_far_fewer_commits(path, stores):
    store = stores(path)
    per_thread, threads_n = 150, 8

    def client(first: int) -> None:
        for n in range(first, first + per_thread):
            job = make_job(n)
            store.add([job])
            job.state = states.ACTIVE
            store.save(job)
            replied = threading.Event()
            store.after_commit(replied.set)
            assert replied.wait(WAIT_S)

    threads = [threading.Thread(target=client, args=(i * per_thread,)) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    requests = per_thread * threads_n
    assert store.counts()["default"][states.ACTIVE] == requests
    assert store.commits < requests / 2, f"{store.commits} commits for {requests} requests"


@pytest.mark.parametrize("kind", ["memory", "sqlite"])
def test_completed_jobs_are_pruned_after_their_retention_and_discarded_ones_later(
    kind, path, stores
):
    retention = {"completed_retention_s": 100.0, "discarded_retention_s": 1000.0}
    store = MemoryStore(**retention) if kind == "memory" else stores(path, **retention)
    jobs = [make_job(n) for n in range(4)]
    store.add(jobs)
    store.save(finish(jobs[0], states.COMPLETED, T0, result=1))
    store.save(finish(jobs[1], states.DISCARDED, T0))
    store.save(finish(jobs[2], states.CANCELLED, T0))

    assert store.prune(T0 + 99) == 0
    assert store.prune(T0 + 100) == 1
    assert store.get(jobs[0].id) is None and store.get(jobs[1].id) is not None
    assert store.counts()["default"][states.COMPLETED] == 0
    assert store.prune(T0 + 999) == 0
    assert store.prune(T0 + 1000) == 2
    assert store.prune(T0 + 10**6) == 0  # jobs not yet terminal are never pruned
    assert store.get(jobs[3].id) is not None
    assert store.counts()["default"] == {**dict.fromkeys(states.JOB_STATES, 0), "available": 1}
    if kind == "sqlite":
        store.close()
        assert [job.id for job in stores(path, **retention).unfinished()] == [jobs[3].id]
        assert read_back(path, jobs[0].id) is None and read_back(path, jobs[1].id) is None


def test_a_discarded_job_retried_by_hand_is_not_pruned_by_its_old_discard_time():
    store = MemoryStore(completed_retention_s=10.0, discarded_retention_s=10.0)
    job = make_job(1)
    store.add([job])
    store.save(finish(job, states.DISCARDED, T0))
    store.save(finish(job, states.AVAILABLE, None))  # retried: back in a queue
    assert store.prune(T0 + 60) == 0
    store.save(finish(job, states.COMPLETED, T0 + 100))
    assert store.prune(T0 + 109) == 0
    assert store.prune(T0 + 110) == 1


def test_a_reopened_store_prunes_what_expired_while_it_was_closed(path, stores):
    store = stores(path, completed_retention_s=100.0)
    jobs = [make_job(n) for n in range(3)]
    store.add(jobs)
    for n, job in enumerate(jobs):
        store.save(finish(job, states.COMPLETED, T0 + 100 * n))
    store.close()
    reopened = stores(path, completed_retention_s=100.0)
    assert reopened.prune(T0 + 250) == 2
    assert [reopened.get(job.id) is None for job in jobs] == [True, True, False]


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


def test_a_second_open_of_a_store_in_use_is_refused_as_locked_until_the_first_closes(path, stores):
    first = stores(path)
    with pytest.raises(StoreError, match=f"{path} is locked"):
        SqliteStore(path)
    first.close()
    stores(path).close()


def test_a_change_whose_reply_was_released_survives_the_process_being_killed(path):
    script = f"""
import os, signal, threading
from actors.store.sqlite import SqliteStore
from tests.unit.test_sqlite_store import make_job
store = SqliteStore({path!r})
jobs = [make_job(n) for n in range(500)]
store.add(jobs)
for job in jobs[:250]:
    job.state = "active"
    store.save(job)
released = threading.Event()
store.after_commit(released.set)
released.wait(10)
print("REPLIED", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=root, capture_output=True, text=True, timeout=30
    )
    assert "REPLIED" in done.stdout, done.stderr
    store = SqliteStore(path)
    try:
        assert store.counts()["default"] == {
            **dict.fromkeys(states.JOB_STATES, 0),
            "available": 250,
            "active": 250,
        }
    finally:
        store.close()


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


def test_pending_commits_count_as_activity_so_a_simulation_waits_for_their_replies(path, stores):
    activity = Activity()
    store = stores(path, activity=activity)
    entered, gate = threading.Event(), threading.Event()
    add_then_call_from_the_writer(store, make_job(1), lambda: (entered.set(), gate.wait(WAIT_S)))
    assert entered.wait(WAIT_S)
    assert activity.busy == 1  # committed, but the reply it releases is still on its way
    gate.set()
    assert activity.wait_idle(WAIT_S)


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
    assert user_version(path) == SCHEMA_VERSION == 2
    assert {job.id: store.get(job.id) for job in jobs} == {job.id: job.to_wire() for job in jobs}
    none = dict.fromkeys(states.JOB_STATES, 0)
    assert store.counts() == {
        "a": {**none, "available": 2, "active": 1},
        "b": {**none, "available": 1, "completed": 1, "discarded": 1},
    }
    assert store.unique_holder("nightly-report") == jobs[5].id
    assert [wire["id"] for wire in store.list(state=states.DISCARDED)] == [jobs[2].id]
    unfinished = {job.id: job for job in store.unfinished()}
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
