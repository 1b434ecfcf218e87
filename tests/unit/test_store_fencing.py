"""Stores opened under a lease term (PostgreSQL, and SharedStore, its stand-in in simulation):
once another coordinator took the lease, the old store lands nothing, says so once, never
releases a reply about a change that did not land, and closes at once."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from actors import states
from tests.unit.store_jobs import WAIT_S, StoreKinds, finish, make_job, open_kind, take_over


@pytest.fixture(params=("postgresql", "shared"))
def fenced(request, tmp_path) -> Iterator[StoreKinds]:
    yield from open_kind(request, request.param, tmp_path)


def test_once_another_coordinator_took_the_lease_the_old_store_lands_nothing_and_says_so_once(
    fenced, caplog
):
    deposed: list[str] = []
    old = fenced.open(on_deposed=lambda: deposed.append(threading.current_thread().name))
    job = make_job(1)
    old.add([job])
    assert old.flush(WAIT_S) and fenced.read_back(job.id) == states.AVAILABLE
    old_term = fenced.term
    take_over(fenced)
    assert fenced.term == old_term + 1
    new = fenced.open()

    replied: list[int] = []
    old.save(finish(job, states.ACTIVE, None))
    old.after_commit(lambda: replied.append(1))
    assert not old.flush(WAIT_S)  # what was pending never landed
    old.add([make_job(2)])
    old.after_commit(lambda: replied.append(2))
    assert not old.flush(WAIT_S)
    assert len(deposed) == 1 and replied == []
    if fenced.kind == "postgresql":  # told from the writer thread, never from a caller's
        assert deposed[0].endswith("-writer")
    assert fenced.read_back(job.id) == states.AVAILABLE
    assert fenced.read_back("job-00002") is None
    assert f"deposed: term {old_term} is over, another coordinator leads" in caplog.text
    closer = threading.Thread(target=old.close)
    closer.start()
    closer.join(WAIT_S)
    assert not closer.is_alive()

    new.save(finish(job, states.ACTIVE, None))  # the new leader writes as usual
    done = threading.Event()
    new.after_commit(done.set)
    assert done.wait(WAIT_S) and fenced.read_back(job.id) == states.ACTIVE


