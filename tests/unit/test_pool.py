"""The handlers' thread pool (actors/pool.py): one thread per running task when tasks block,
every task run, and a shutdown that starts nothing more."""

from __future__ import annotations

import threading

from actors.pool import DaemonPool

WAIT_S = 5.0


def test_tasks_that_block_each_get_a_thread_of_their_own():
    size = 8
    pool = DaemonPool(size, "test")
    barrier = threading.Barrier(size, timeout=WAIT_S)  # passes only if all 8 run at once
    passed = threading.Semaphore(0)

    def meet() -> None:
        barrier.wait()
        passed.release()

    for _ in range(size):
        pool.submit(meet)
    assert all(passed.acquire(timeout=WAIT_S) for _ in range(size))
    pool.shutdown()


def test_a_task_submitted_while_every_other_blocks_still_starts():
    pool = DaemonPool(3, "test")
    release = threading.Event()
    started = threading.Semaphore(0)

    def block() -> None:
        started.release()
        release.wait(WAIT_S)

    pool.submit(block)
    pool.submit(block)
    assert started.acquire(timeout=WAIT_S) and started.acquire(timeout=WAIT_S)
    ran = threading.Event()
    pool.submit(ran.set)
    assert ran.wait(WAIT_S)
    release.set()
    pool.shutdown()


def test_many_quick_tasks_all_run():
    pool = DaemonPool(50, "test")
    done: list[int] = []
    finished = threading.Event()

    def task(n: int) -> None:
        done.append(n)
        if n == 999:
            finished.set()

    for n in range(1000):
        pool.submit(lambda n=n: task(n))
    assert finished.wait(WAIT_S)
    pool.shutdown()
    assert sorted(done) == list(range(1000))


def test_after_shutdown_no_queued_task_starts():
    pool = DaemonPool(1, "test-shutdown")
    release, started = threading.Event(), threading.Event()
    ran: list[str] = []

    def first() -> None:
        started.set()
        release.wait(WAIT_S)

    pool.submit(first)
    assert started.wait(WAIT_S)
    pool.submit(lambda: ran.append("second"))
    pool.shutdown()
    release.set()
    for thread in threading.enumerate():
        if thread.name.startswith("test-shutdown-"):
            thread.join(WAIT_S)
            assert not thread.is_alive()
    assert ran == []


def test_a_task_raising_a_base_exception_does_not_cost_its_thread():
    # Given a pool of one thread whose first task calls sys.exit()
    pool = DaemonPool(1, "test")

    def leave() -> None:
        raise SystemExit(3)

    pool.submit(leave)
    # Then the same thread still runs the next task
    ran = threading.Event()
    pool.submit(ran.set)
    assert ran.wait(WAIT_S)
    pool.shutdown()
