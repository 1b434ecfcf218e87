"""AsyncClient (nodes/async_client.py) against a real coordinator over TCP loopback and a real
in-process WorkerNode: results through handles, the same errors as the sync Client, a thousand
awaits in flight on one client at once, the job requests, failover, and close. Each test runs
its coroutine with `asyncio.run` under a deadline, so a hang fails the test."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import msgpack
import pytest
import zmq

from nodes import AsyncClient, Client, WorkerNode
from nodes.client import JobFailed
from tests.conftest import wait_for
from tests.integration.conftest import free_port
from transport.errors import BadRequest, ConnectionLost, DuplicateJob, UnknownJob

TEST_DEADLINE_S = 20.0
MANY = 1_000
PARKED = "parked"  # a queue no worker takes jobs from


def run(coroutine: Awaitable[Any]) -> Any:
    """Run `coroutine` on a fresh event loop; fail if it takes longer than TEST_DEADLINE_S."""

    async def bounded() -> Any:
        return await asyncio.wait_for(coroutine, TEST_DEADLINE_S)

    return asyncio.run(bounded())


async def until(predicate: Callable[[], Any], timeout: float = 5.0, what: str = "") -> None:
    """Poll `predicate` on the loop until it is true, or fail at the deadline."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            pytest.fail(f"condition not met within {timeout} s: {what}")
        await asyncio.sleep(0.005)


def square(x: int) -> int:
    return x * x


def cube(x: int) -> int:
    return x**3


def boom() -> None:
    raise ValueError("always")


@pytest.fixture
def address(coordinator) -> Iterator[str]:
    """A coordinator and a worker serving `square`, `cube` (decorated: queue "math"), `flaky`
    (fails the first time it sees an argument) and `boom` (always fails; decorated: 1 attempt)."""
    node = coordinator()
    seen: set[Any] = set()
    worker = WorkerNode(
        connect=node.address, queues=["default", "batch"], concurrency=16,
        handlers={"square": square}, shutdown_grace=2,
    )  # fmt: skip
    worker.handler("cube", queue="math")(cube)
    worker.handler("boom", max_attempts=1)(boom)

    @worker.handler("flaky")
    def flaky(key: Any) -> Any:
        if key not in seen:
            seen.add(key)
            raise RuntimeError(f"first time for {key}")
        return key

    worker.start()
    try:
        wait_for(lambda: worker.status()["registered"], 10, what="the worker to register")
        yield node.address
    finally:
        worker.stop(timeout=2)


def test_an_enqueued_job_s_result_is_awaited_through_its_handle(address):
    async def main() -> None:
        async with AsyncClient(address, timeout=5) as client:
            handle = await client.enqueue("square", [7])
            assert await handle.result(timeout=5) == 49
            job = await client.get(handle)
            assert (job.id, job.state, job.args, job.result) == (handle.id, "completed", [7], 49)

            # a decorated handler is a job type whose defaults apply (here its queue)
            cubed = await client.enqueue(cube, [3])
            assert await cubed.result(timeout=5) == 27
            assert (await client.get(cubed)).queue == "math"

            batch = await client.enqueue_many([{"type": "square", "args": [n]} for n in range(5)])
            assert [await each.result(timeout=5) for each in batch] == [0, 1, 4, 9, 16]

    run(main())


def raised(outcome: Callable[[], Any]) -> type[BaseException] | None:
    try:
        outcome()
    except Exception as exc:
        return type(exc)
    return None


async def araised(outcome: Awaitable[Any]) -> type[BaseException] | None:
    try:
        await outcome
    except Exception as exc:
        return type(exc)
    return None


def test_error_replies_raise_the_same_exceptions_as_the_sync_client(address):
    with Client(address, timeout=5) as sync:
        held = sync.enqueue("square", [1], queue=PARKED).id
        cases: dict[str, tuple[str, list[Any], dict[str, Any]]] = {
            "get of an unknown job": ("get", ["no-such-job"], {}),
            "cancel of an unknown job": ("cancel", ["no-such-job"], {}),
            "an unknown job option": ("enqueue", ["square", [1]], {"colour": "red"}),
            "a mistyped field": ("enqueue", ["square", [1]], {"priority": "high"}),
            "a batch with a bad spec": ("enqueue_many", [[{"args": [1]}]], {}),
            "retry of a job not discarded": ("retry", [held], {}),
            "delete of a job not ended": ("delete", [held], {}),
            "an id a job has": ("enqueue", ["square", [1]], {"id": held}),
        }
        expected = {
            name: raised(lambda m=method, a=args, k=kwargs: getattr(sync, m)(*a, **k))
            for name, (method, args, kwargs) in cases.items()
        }
        failed = sync.enqueue(boom)
        expected["a discarded job's result"] = raised(lambda: failed.result(timeout=5))
        parked = sync.enqueue("square", [2], queue=PARKED)
        expected["a result not ready in time"] = raised(lambda: parked.result(timeout=0.05))

    async def main() -> dict[str, type[BaseException] | None]:
        async with AsyncClient(address, timeout=5) as client:
            got = {
                name: await araised(getattr(client, method)(*args, **kwargs))
                for name, (method, args, kwargs) in cases.items()
            }
            failed = await client.enqueue(boom)
            got["a discarded job's result"] = await araised(failed.result(timeout=5))
            parked = await client.enqueue("square", [2], queue=PARKED)
            got["a result not ready in time"] = await araised(parked.result(timeout=0.05))
            return got

    assert expected == {
        "get of an unknown job": UnknownJob,
        "cancel of an unknown job": UnknownJob,
        "an unknown job option": TypeError,
        "a mistyped field": BadRequest,
        "a batch with a bad spec": BadRequest,
        "retry of a job not discarded": BadRequest,
        "delete of a job not ended": BadRequest,
        "an id a job has": DuplicateJob,
        "a discarded job's result": JobFailed,
        "a result not ready in time": TimeoutError,
    }
    assert run(main()) == expected


def test_a_thousand_awaits_in_flight_on_one_client_each_get_their_own_result(address):
    async def main() -> None:
        async with AsyncClient(address, timeout=5) as client:
            # Given a thousand jobs enqueued at once into a paused queue
            assert await client.pause_queue("batch") is True
            handles = await asyncio.gather(
                *(client.enqueue("square", [n], queue="batch") for n in range(MANY))
            )
            assert len(set(handles)) == MANY

            # When every result is awaited at once, all held by the coordinator together
            results = [asyncio.ensure_future(h.result(timeout=15)) for h in handles]
            await until(lambda: len(client._in_flight) == MANY, what="a thousand gets in flight")
            assert not any(result.done() for result in results)
            assert await client.resume_queue("batch") is False

            # Then each gets the result of its own job
            assert await asyncio.gather(*results) == [n * n for n in range(MANY)]

    run(main())


def test_cancel_retry_delete_stats_and_jobs(address):
    async def main() -> None:
        async with AsyncClient(address, timeout=5) as client:
            await client.ping()
            parked = await client.enqueue("square", [3], queue=PARKED)
            stats = await client.stats()
            assert stats["queues"][PARKED]["available"] == 1
            assert stats["workers"][0]["functions"] == ["boom", "cube", "flaky", "square"]
            assert [job.id for job in await client.jobs(queue=PARKED)] == [parked]

            assert await client.cancel(parked) == "cancelled"
            with pytest.raises(JobFailed, match="cancelled"):
                await parked.result(timeout=1)
            await client.delete(parked)
            with pytest.raises(UnknownJob):
                await client.get(parked)

            flaky = await client.enqueue("flaky", ["a"], max_attempts=1)
            with pytest.raises(JobFailed) as failed:
                await flaky.result(timeout=5)
            assert failed.value.job.state == "discarded"
            assert failed.value.job.errors[-1]["message"] == "first time for a"
            assert await client.retry(flaky) == "available"
            assert await flaky.result(timeout=5) == "a"

    run(main())


def test_no_reply_in_time_is_a_lost_connection_and_a_cancelled_caller_stays_cancelled(address):
    async def main() -> None:
        async with AsyncClient(f"tcp://127.0.0.1:{free_port()}", timeout=0.1) as silent:
            with pytest.raises(ConnectionLost, match=r"no reply to ping within 0\.1 s"):
                await silent.ping()

        async with AsyncClient(address, timeout=5) as client:
            parked = await client.enqueue("square", [1], queue=PARKED)
            waiting = asyncio.ensure_future(client.get(parked, wait=30))
            await until(lambda: len(client._in_flight) == 1, what="the get in flight")
            waiting.cancel()
            with pytest.raises(asyncio.CancelledError):
                await waiting
            assert not client._in_flight
            assert (await client.get(parked)).state == "available"  # the client still serves

    run(main())


def test_closing_with_requests_in_flight_ends_them_as_lost_at_once(address):
    async def main() -> None:
        loop = asyncio.get_running_loop()
        client = AsyncClient(address, timeout=5)
        parked = await client.enqueue("square", [1], queue=PARKED)
        waits = [asyncio.ensure_future(client.get(parked, wait=30)) for _ in range(20)]
        waits.append(asyncio.ensure_future(parked.result(timeout=30)))
        await until(lambda: len(client._in_flight) == len(waits), what="every wait in flight")

        started = loop.time()
        await asyncio.wait_for(client.close(), 2)
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        assert loop.time() - started < 2
        assert [type(outcome) for outcome in outcomes] == [ConnectionLost] * len(waits)
        with pytest.raises(ConnectionLost, match="closed"):
            await client.ping()
        await client.close()  # again: nothing happens

    run(main())


@pytest.fixture
def standby(address) -> Iterator[str]:
    """A ROUTER answering every request as a standby does (`not_leader` naming the coordinator
    at `address`); its address. Only its thread uses the socket."""
    context, stop = zmq.Context(), threading.Event()
    router = context.socket(zmq.ROUTER)
    port = router.bind_to_random_port("tcp://127.0.0.1")

    def serve() -> None:
        while not stop.is_set():
            if router.poll(20):
                peer, frame = router.recv_multipart()
                rid = msgpack.unpackb(frame)["rid"]
                refusal = {"type": "error", "rid": rid, "code": "not_leader", "leader": address}
                router.send_multipart([peer, msgpack.packb(refusal)])
        router.close(linger=0)

    thread = threading.Thread(target=serve, name="standby", daemon=True)
    thread.start()
    yield f"tcp://127.0.0.1:{port}"
    stop.set()
    thread.join(5)
    context.term()


def test_requests_go_to_the_leader_a_standby_names_and_close_ends_them_there(address, standby):
    async def main() -> None:
        client = AsyncClient([standby, address], timeout=5)
        handle = await client.enqueue("square", [5])
        assert client._requester.address == address
        assert await handle.result(timeout=5) == 25

        parked = await client.enqueue("square", [1], queue=PARKED)
        waiting = asyncio.ensure_future(parked.result(timeout=30))
        await until(lambda: len(client._in_flight) == 1, what="the wait in flight")
        await asyncio.wait_for(client.close(), 2)
        with pytest.raises(ConnectionLost):
            await waiting

    run(main())


def test_a_coordinator_that_refuses_the_connection_is_passed_at_once(address):
    # Given a client of two coordinators, the first of which is not there at all, and a
    # timeout shorter than the share of it one coordinator gets (3 s)
    async def main() -> None:
        gone = f"tcp://127.0.0.1:{free_port()}"
        async with AsyncClient([gone, address], timeout=2.0) as client:
            # When it sends requests, the refused connection ends the first attempt at once
            await client.ping()
            assert client._requester.address == address
            # Then the live coordinator answers within the timeout, again and again
            handle = await client.enqueue("square", [6])
            assert await handle.result(timeout=5) == 36

    run(main())
