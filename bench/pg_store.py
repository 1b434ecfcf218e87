"""The PostgreSQL store alone: what a fenced batch costs per row, and how long a coordinator
taking over a database with a million queued jobs spends opening its store.

    .venv/bin/python bench/pg_store.py [--jobs 1000000] [--batch 5000]

On a fresh database of a private cluster (tests/pg.py) the bench takes the lease, then fills
`jobs` with `--jobs` queued no-op jobs through the writer's fenced statement (postgres_writer.
BATCH) in batches of `--batch` rows, timing each: the commit cost per row (insert). It updates
the first `--jobs`/10 of them to active the same way (update), then times
`PostgresStore(url, term=...)` over the full table: the takeover budget is under 10 s. Prints
a readable line, then a JSON line.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from typing import Any

import common

DEFAULT_JOBS = 1_000_000
DEFAULT_BATCH = 5_000
SLICE = 100_000


def rows_of(ids: list[str], state: str) -> list[Any]:
    """The `jobs` rows of queued no-op jobs with these ids, in `state`."""
    from actors.jobs import Job
    from actors.store import record, sqlite_writer
    from transport.validation.jobs import job_spec

    spec = job_spec({"type": "noop", "args": []})
    rows = []
    for n, job_id in enumerate(ids):
        job = Job.from_spec(spec, job_id, 1_700_000_000.0 + n, n)
        job.state = state
        rows.append(sqlite_writer.row(job, record.pack(job)))
    return rows


def commit_all(connection: Any, term: int, rows: list[Any], batch: int) -> float:
    """Commit `rows` in fenced batches of `batch`; seconds spent committing."""
    from actors.store.postgres_writer import BATCH, parameters

    spent = 0.0
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        began = time.perf_counter()
        landed = connection.execute(BATCH, parameters(term, chunk, [])).fetchone()
        spent += time.perf_counter() - began
        assert landed and landed[0] == 1, "fenced out"
    return spent


def run(jobs: int = DEFAULT_JOBS, batch: int = DEFAULT_BATCH) -> dict[str, Any]:
    from actors.clock import SystemClock
    from actors.ids import IdFactory
    from actors.store.postgres import PostgresStore, connect
    from actors.store.postgres_lease import PostgresLease

    with contextlib.ExitStack() as stack:
        url = common.store_url("postgresql", stack)
        lease = PostgresLease(url)
        term = lease.try_acquire("bench", "tcp://bench", 3600.0)
        lease.close()
        assert term is not None
        connection = stack.enter_context(connect(url))
        factory = IdFactory(SystemClock())
        inserted = 0.0
        for first in range(0, jobs, SLICE):  # rows built a slice at a time: bounded memory
            ids = [factory.new() for _ in range(min(SLICE, jobs - first))]
            inserted += commit_all(connection, term, rows_of(ids, "available"), batch)
        ids = [job_id for (job_id,) in connection.execute(
            "SELECT id FROM jobs ORDER BY id LIMIT %s", [max(1, jobs // 10)]
        )]
        updated = commit_all(connection, term, rows_of(ids, "active"), batch)
        connection.execute("VACUUM ANALYZE jobs")
        began = time.perf_counter()
        store = PostgresStore(url, term=term)
        open_s = time.perf_counter() - began
        loaded = sum(sum(by_state.values()) for by_state in store.counts().values())
        store.close()
    return {
        "pg_jobs": jobs,
        "pg_batch_rows": batch,
        "pg_insert_us_per_row": inserted / jobs * 1e6,
        "pg_update_us_per_row": updated / len(ids) * 1e6,
        "pg_open_s": open_s,
        "pg_loaded_jobs": loaded,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH)
    args = parser.parse_args()
    result = run(args.jobs, args.batch)
    print(
        f"fenced batch of {args.batch}: insert {result['pg_insert_us_per_row']:.1f} us/row, "
        f"update {result['pg_update_us_per_row']:.1f} us/row; open over {args.jobs} jobs: "
        f"{result['pg_open_s']:.2f} s",
        file=sys.stderr,
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
