"""Job semantics as pure functions: what tests/unit/test_queue.py, test_jobs_and_states.py and
test_validation.py do not cover yet (PROTOCOL.md sections 4-6 and the job-semantics issue).

- JobSpec -> Job: every default filled in, the merged retry policy carried through.
- Fetch cost: a claim does O(log n) work with a million queued jobs (counted, never timed).
- Routing: the most-specific rule decided per job class; unroutable jobs counted.
- Unique keys in the store; the error history of a job.
- The Python API (`@worker.handler` defaults, `Client.enqueue`) and the CLI reaching every
  JobSpec option and `corral retry`.
"""

from __future__ import annotations

import gc
import math
import random
from collections.abc import Iterator
from typing import Any

import pytest

from actors import lifecycle, routing, states
from actors.jobs import Job
from actors.queue import QueueCore
from actors.routing import Routing, WorkerProfile, route_class
from actors.store.memory import MemoryStore
from nodes import cli
from nodes.cli import commands as cli_commands
from nodes.client import Client, JobHandle, JobType, job_spec
from nodes.worker_node import WorkerNode
from tests.unit.counting import CountedSeq
from transport import codec
from transport.jobspec import DEFAULT_RETRY, JobSpec, RetryPolicy
from transport.messages import ErrorInfo
from transport.validation.jobs import job_spec as parse_job_spec

NOW = 1_700_000_000.0
QUEUE = "q"
SHARED_ARGS: list[Any] = []
SHARED_META: dict[str, Any] = {}
NO_ROUTE: dict[str, str] = {}


def profile(
    worker_id: str,
    *,
    queues: tuple[str, ...] = (QUEUE,),
    functions: tuple[str, ...] = (),
    labels: dict[str, list[str]] | None = None,
) -> WorkerProfile:
    return WorkerProfile.build(worker_id, queues, functions, labels)


def job(
    job_id: str,
    seq: int,
    *,
    priority: int = 0,
    job_type: str = "t",
    route: dict[str, str] = NO_ROUTE,
    state: str = states.AVAILABLE,
    due: float | None = None,
    unique_key: str | None = None,
) -> Job:
    """A job as the queue receives it. Args, route and meta are shared: nothing mutates them."""
    return Job(
        job_id,
        job_type,
        SHARED_ARGS,
        QUEUE,
        priority,
        due if state == states.SCHEDULED else None,
        3,
        DEFAULT_RETRY,
        None,
        route,
        unique_key,
        SHARED_META,
        NOW,
        seq=seq,
        state=state,
        next_attempt_at=due if state == states.RETRYABLE else None,
    )


def queue_with(*workers: WorkerProfile) -> QueueCore:
    core = QueueCore(QUEUE)
    core.update_workers(tuple(workers))
    return core


ANY = profile("any")


# -- JobSpec -> Job (section 4) -------------------------------------------------------------------


def test_a_job_built_from_a_bare_spec_carries_every_jobspec_default_on_the_wire():
    wire = Job.from_spec(parse_job_spec({"type": "resize"}), "id-1", NOW, 1).to_wire()
    assert wire == {
        "id": "id-1",
        "type": "resize",
        "args": [],
        "queue": "default",
        "priority": 0,
        "max_attempts": 3,
        "retry": {
            "initial_interval": 1.0,
            "backoff_coefficient": 2.0,
            "max_interval": 300.0,
            "jitter": True,
        },
        "route": {},
        "meta": {},
        "state": "available",
        "attempt": 0,
        "created_at": NOW,
        "errors": [],
    }


def test_a_job_built_from_a_full_spec_keeps_every_value_given():
    raw = {
        "type": "resize",
        "args": [1, "a"],
        "queue": "images",
        "priority": -4,
        "scheduled_at": NOW + 60,
        "max_attempts": 9,
        "retry": {"initial_interval": 2.5},
        "timeout": 45.0,
        "route": {"gpu": "a100"},
        "unique_key": "img-7",
        "meta": {"owner": "ops"},
    }
    wire = Job.from_spec(parse_job_spec(raw), "id-2", NOW, 2).to_wire()
    for key, value in raw.items():
        if key != "retry":
            assert wire[key] == value, key
    assert wire["retry"] == {
        "initial_interval": 2.5,
        "backoff_coefficient": 2.0,
        "max_interval": 300.0,
        "jitter": True,
    }
    assert wire["state"] == "scheduled"


def test_a_partial_retry_map_reaches_the_job_merged_with_the_defaults():
    spec = parse_job_spec({"type": "t", "retry": {"max_interval": 10, "jitter": False}})
    job_ = Job.from_spec(spec, "id", NOW, 1)
    assert job_.retry == RetryPolicy(1.0, 2.0, 10.0, False)


def test_a_job_scheduled_in_the_past_is_available_at_once():
    assert Job.from_spec(JobSpec(type="t", scheduled_at=NOW - 1), "id", NOW, 1).state == (
        "available"
    )


def test_a_job_result_is_on_the_wire_only_once_the_job_is_completed():
    job_ = Job.from_spec(JobSpec(type="t"), "id", NOW, 1)
    job_.result = {"partial": True}
    assert "result" not in job_.to_wire()
    lifecycle.activate(job_, NOW, "w-1", 30.0)
    lifecycle.complete(job_, NOW, {"partial": True})
    assert job_.to_wire()["result"] == {"partial": True}


def test_a_job_survives_the_round_trip_through_its_stored_wire_form():
    job_ = Job.from_spec(
        parse_job_spec({"type": "t", "retry": {"initial_interval": 3}, "unique_key": "u"}),
        "id",
        NOW,
        1,
    )
    lifecycle.activate(job_, NOW, "w-1", 30.0)
    job_.record_error("Boom", "no", NOW + 1)
    assert Job.from_wire(job_.to_wire(), seq=5).to_wire() == job_.to_wire()


def test_each_failed_attempt_adds_attempt_type_message_and_time_to_the_error_history():
    job_ = Job.from_spec(JobSpec(type="t"), "id", NOW, 1)
    job_.attempt = 1
    job_.record_error("ValueError", "bad input", NOW + 1)
    job_.attempt = 2
    job_.record_error("worker_lost", "worker w lost", NOW + 5, ("line 1", "line 2"))
    assert job_.to_wire()["errors"] == [
        {"attempt": 1, "type": "ValueError", "message": "bad input", "at": NOW + 1},
        {
            "attempt": 2,
            "type": "worker_lost",
            "message": "worker w lost",
            "at": NOW + 5,
            "backtrace": ["line 1", "line 2"],
        },
    ]


# -- fetch cost: O(log n) with a million queued jobs ----------------------------------------------


@pytest.fixture
def counted_eligibility(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Count every eligibility check the queue's routing makes."""
    calls = [0]
    real = routing.eligible

    def eligible(*args: Any) -> bool:
        calls[0] += 1
        return real(*args)

    monkeypatch.setattr(routing, "eligible", eligible)
    yield calls


def claim_work(core: QueueCore, worker: WorkerProfile, calls: list[int]) -> tuple[list[str], int]:
    """Claim the head job; return what was claimed and the work done (comparisons + checks)."""
    CountedSeq.comparisons = 0
    calls[0] = 0
    claimed = core.claim(worker, 1)
    return [j.id for j in claimed], CountedSeq.comparisons + calls[0]


def filled_queue(count: int, *, distinct_routes: bool = False) -> QueueCore:
    core = queue_with(ANY)
    gc.disable()  # a million containers would trigger dozens of full collections while filling
    try:
        for n in range(count):
            route = {"trace": str(n)} if distinct_routes else NO_ROUTE
            core.add(job(str(n), CountedSeq(n + 1), priority=n % 2, route=route))
    finally:
        gc.enable()
    return core


def log_bound(count: int) -> float:
    """Generous room for a heap pop and its lazy skips: a few comparisons per level."""
    return 4 * math.log2(count) + 16


@pytest.mark.parametrize(
    "count", [100_000, pytest.param(1_000_000, marks=pytest.mark.slow)], ids=["100k", "1m"]
)
def test_a_claim_from_a_million_queued_jobs_does_logarithmic_work(counted_eligibility, count):
    """(A tenth of the size by default; the million in the `slow` tier.)"""
    core = filled_queue(count)
    claimed, work = claim_work(core, ANY, counted_eligibility)
    assert claimed == ["1"]  # priority 1, oldest
    assert work <= log_bound(count), f"{work} steps to claim from {count} jobs"
    claimed, work = claim_work(core, ANY, counted_eligibility)
    assert claimed == ["3"]
    assert work <= log_bound(count)


def test_the_work_of_a_claim_grows_with_log_n_not_n(counted_eligibility):
    small, large = 1_000, 100_000
    _, small_work = claim_work(filled_queue(small), ANY, counted_eligibility)
    _, large_work = claim_work(filled_queue(large), ANY, counted_eligibility)
    # 100x the jobs: at most ~1.7x the work for a log, 100x for a scan.
    assert large_work <= small_work * 2.5, (small_work, large_work)


def test_a_claim_stays_logarithmic_when_every_queued_job_has_its_own_route(counted_eligibility):
    """Routes are free-form (any key a worker has no label for is ignored), so a route per
    job (a trace id, a tenant) must not turn a claim into a scan of every job class."""
    count = 100_000
    core = filled_queue(count, distinct_routes=True)
    claimed, work = claim_work(core, ANY, counted_eligibility)
    assert claimed == ["1"]
    assert work <= log_bound(count), f"{work} steps to claim from {count} jobs"


# -- routing: the most specific eligible workers (section 6) --------------------------------------


def test_with_no_eligible_worker_the_top_specificity_is_minus_one():
    rules = Routing(QUEUE)
    rules.update((profile("gpu", labels={"gpu": ["a100"]}),))
    assert rules.top_specificity(route_class("t", {})) == -1
    assert rules.top_specificity(route_class("t", {"gpu": "t4"})) == -1
    assert rules.top_specificity(route_class("t", {"gpu": "a100"})) == 1


def test_specificity_counts_label_keys_and_workers_with_different_keys_can_tie():
    gpu = profile("gpu", labels={"gpu": ["a100"]})
    zone = profile("zone", labels={"zone": ["eu"]})
    rules = Routing(QUEUE)
    rules.update((gpu, zone))
    both = route_class("t", {"gpu": "a100", "zone": "eu"})
    assert rules.may_take(gpu, both)
    assert rules.may_take(zone, both)


def test_only_the_workers_with_the_most_label_keys_may_take_a_job_at_three_levels():
    plain = profile("plain")
    one = profile("one", labels={"gpu": ["a100"]})
    two = profile("two", labels={"gpu": ["a100"], "zone": ["eu"]})
    rules = Routing(QUEUE)
    rules.update((plain, one, two))
    full = route_class("t", {"gpu": "a100", "zone": "eu"})
    gpu_only = route_class("t", {"gpu": "a100"})
    bare = route_class("t", {})
    assert [w.worker_id for w in (plain, one, two) if rules.may_take(w, full)] == ["two"]
    assert [w.worker_id for w in (plain, one, two) if rules.may_take(w, gpu_only)] == ["one"]
    assert [w.worker_id for w in (plain, one, two) if rules.may_take(w, bare)] == ["plain"]


def test_a_more_specific_worker_whose_functions_exclude_the_type_does_not_block_others():
    plain = profile("plain")
    renderer = profile("renderer", functions=("render",), labels={"gpu": ["a100"]})
    rules = Routing(QUEUE)
    rules.update((plain, renderer))
    encode = route_class("encode", {"gpu": "a100"})
    render = route_class("render", {"gpu": "a100"})
    assert rules.may_take(plain, encode)
    assert not rules.may_take(renderer, encode)
    assert rules.may_take(renderer, render)
    assert not rules.may_take(plain, render)


def test_the_most_specific_rule_is_recomputed_when_workers_join_and_leave():
    plain = profile("plain")
    gpu = profile("gpu", labels={"gpu": ["a100"]})
    rules = Routing(QUEUE)
    gpu_job = route_class("t", {"gpu": "a100"})
    rules.update((plain,))
    assert rules.may_take(plain, gpu_job)
    rules.update((plain, gpu))
    assert not rules.may_take(plain, gpu_job)
    assert rules.may_take(gpu, gpu_job)
    rules.update((plain,))
    assert rules.may_take(plain, gpu_job)


def test_a_label_with_no_values_matches_no_route():
    picky = profile("picky", labels={"gpu": []})
    rules = Routing(QUEUE)
    rules.update((picky,))
    assert not rules.may_take(picky, route_class("t", {"gpu": "a100"}))


def test_a_job_for_a_busy_most_specific_worker_waits_for_it_and_is_not_unroutable():
    plain = profile("plain")
    gpu = profile("gpu", labels={"gpu": ["a100"]})
    core = queue_with(plain, gpu)
    core.add(job("gpu-1", 1, route={"gpu": "a100"}))
    core.add(job("plain-1", 2))
    # gpu is busy (never claims): plain gets only what it is the most specific for.
    assert [j.id for j in core.claim(plain, 5)] == ["plain-1"]
    assert "gpu-1" in core
    assert core.unroutable() == 0


# -- unroutable counting (stats) ------------------------------------------------------------------


def test_a_promoted_job_no_worker_may_take_is_counted_unroutable():
    core = queue_with(profile("resizer", functions=("resize",)))
    core.add(job("later", 1, job_type="crop", state=states.SCHEDULED, due=NOW + 5))
    assert core.unroutable() == 0
    core.promote(NOW + 5)
    assert core.unroutable() == 1


def test_a_recovered_unroutable_job_is_counted_once():
    core = queue_with(ANY)
    core.add(job("j", 1))
    [claimed] = core.claim(ANY, 1)
    core.update_workers(())
    core.add(claimed)  # its worker was lost: back to available
    assert core.unroutable() == 1


def test_unroutable_jobs_are_taken_once_an_eligible_worker_joins():
    core = queue_with(profile("plain", functions=("square",)))
    for seq in range(1, 4):
        core.add(job(f"r{seq}", seq, job_type="resize"))
    assert core.unroutable() == 3
    resizer = profile("resizer", functions=("resize",))
    core.update_workers((profile("plain", functions=("square",)), resizer))
    assert core.unroutable() == 0
    assert [j.id for j in core.claim(resizer, 5)] == ["r1", "r2", "r3"]
    assert core.unroutable() == 0


# -- unique keys (section 5) ----------------------------------------------------------------------


@pytest.mark.parametrize("state", [states.SCHEDULED, states.AVAILABLE, states.RETRYABLE])
def test_a_unique_key_held_by_a_waiting_job_returns_that_job(state):
    store = MemoryStore()
    first = job("first", 1, unique_key="k", state=state, due=NOW + 5)
    assert store.add([first]) == [None]
    [duplicate] = store.add([job("second", 2, unique_key="k")])
    assert duplicate is not None and duplicate["id"] == "first"
    assert store.get("second") is None


def test_a_unique_key_held_by_an_active_job_returns_that_job():
    store = MemoryStore()
    first = job("first", 1, unique_key="k")
    store.add([first])
    lifecycle.activate(first, NOW, "w-1", 30.0)
    store.save(first)
    [duplicate] = store.add([job("second", 2, unique_key="k")])
    assert duplicate is not None and duplicate["id"] == "first"


@pytest.mark.parametrize("terminal", [states.COMPLETED, states.DISCARDED, states.CANCELLED])
def test_a_unique_key_is_free_again_once_its_job_is_terminal(terminal):
    store = MemoryStore()
    first = job("first", 1, unique_key="k")
    store.add([first])
    if terminal == states.CANCELLED:
        lifecycle.cancel(first, NOW)
    elif terminal == states.COMPLETED:
        lifecycle.activate(first, NOW, "w-1", 30.0)
        lifecycle.complete(first, NOW, None)
    else:
        lifecycle.activate(first, NOW, "w-1", 30.0)
        lifecycle.fail(first, NOW, ErrorInfo("Boom", "no", retryable=False), random.Random(0))
    store.save(first)
    assert store.add([job("second", 2, unique_key="k")]) == [None]
    assert store.unique_holder("k") == "second"


def test_two_jobs_with_one_unique_key_in_one_batch_make_one_job():
    store = MemoryStore()
    outcome = store.add([job("a", 1, unique_key="k"), job("b", 2, unique_key="k")])
    assert outcome[0] is None
    assert outcome[1] is not None and outcome[1]["id"] == "a"
    assert store.counts()[QUEUE]["available"] == 1


def test_jobs_without_a_unique_key_are_never_duplicates():
    store = MemoryStore()
    assert store.add([job("a", 1), job("b", 2)]) == [None, None]


# -- the Python API: handler defaults and Client.enqueue ------------------------------------------


class ReplyingConnection:
    """A client connection that answers every request at once, keeping what it was sent."""

    def __init__(self, on_frame: Any) -> None:
        self.on_frame = on_frame
        self.sent: list[dict[str, Any]] = []

    def send(self, frame: bytes) -> None:
        body = codec.decode(frame)
        self.sent.append(body)
        self.on_frame(codec.reply(body["rid"], job_id=f"job-{len(self.sent)}", state="available"))

    def close(self) -> None:
        pass


@pytest.fixture
def recording_client() -> Iterator[tuple[Client, list[dict[str, Any]]]]:
    connections: list[ReplyingConnection] = []

    def connector(on_frame: Any) -> ReplyingConnection:
        connections.append(ReplyingConnection(on_frame))
        return connections[-1]

    with Client(connector=connector, timeout=1.0) as client:
        yield client, connections[0].sent


def unstarted_worker(**options: Any) -> WorkerNode:
    return WorkerNode("inproc://nowhere", **options)  # never started: no connection is made


def test_a_handler_registered_with_defaults_carries_them_as_its_job_type():
    worker = unstarted_worker(queues=["default"])

    @worker.handler("report", queue="reports", max_attempts=5, timeout=45)
    def report(day: str) -> str:
        return day

    assert worker.handlers["report"] is report
    assert report.corral_job == JobType(  # type: ignore[attr-defined]
        "report", {"queue": "reports", "max_attempts": 5, "timeout": 45}
    )


def test_a_queue_named_in_a_handler_default_is_consumed_after_the_configured_queues():
    worker = unstarted_worker(queues=["critical", "default"])
    worker.handler("a", queue="reports")(lambda: None)
    worker.handler("b", queue="critical")(lambda: None)
    worker.handler("c", queue="reports")(lambda: None)
    assert worker.settings.queues == ("critical", "default", "reports")


def test_a_handler_default_that_is_no_jobspec_option_is_refused():
    worker = unstarted_worker()
    with pytest.raises(TypeError, match="unknown job options: retries"):
        worker.handler("a", retries=3)


def test_enqueueing_a_handler_function_sends_its_type_and_defaults(recording_client):
    client, sent = recording_client
    worker = unstarted_worker()

    @worker.handler("report", queue="reports", max_attempts=5, timeout=45)
    def report(day: str) -> str:
        return day

    handle = client.enqueue(report, ["monday"])
    assert isinstance(handle, JobHandle) and handle == "job-1" and handle.id == "job-1"
    assert sent[0]["job"] == {
        "type": "report",
        "args": ["monday"],
        "queue": "reports",
        "max_attempts": 5,
        "timeout": 45,
    }


def test_options_given_to_enqueue_override_the_handler_defaults(recording_client):
    client, sent = recording_client
    worker = unstarted_worker()
    report = worker.handler("report", queue="reports", max_attempts=5)(lambda day: day)
    client.enqueue(report, ["monday"], max_attempts=1, priority=7)
    assert sent[0]["job"] == {
        "type": "report",
        "args": ["monday"],
        "queue": "reports",
        "max_attempts": 1,
        "priority": 7,
    }


def test_every_jobspec_option_is_accepted_by_client_enqueue(recording_client):
    client, sent = recording_client
    options = {
        "queue": "q",
        "priority": 2,
        "scheduled_at": NOW,
        "max_attempts": 4,
        "retry": {"initial_interval": 5.0},
        "timeout": 30.0,
        "route": {"gpu": "a100"},
        "unique_key": "u",
        "meta": {"by": "test"},
        "concurrency_key": "customer:1",
        "concurrency_limit": 2,
        "rate_limit": {"count": 5, "per": 60.0},
        "depends_on": ["job-1"],
        "on_failure": "continue",
        "pass_results": False,
        "id": "019a0000-0000-7000-8000-000000000001",
        "expires_at": NOW + 3600,
        "run_timeout": 90.0,
    }
    client.enqueue("t", [1], **options)
    assert sent[0]["job"] == {"type": "t", "args": [1], **options}
    limit_fields = {"concurrency_key", "concurrency_limit", "rate_limit"}  # JobSpec.limit
    flow_fields = {"depends_on", "on_failure", "pass_results"}  # JobSpec.flow
    compound = {"type", "args", "limit", "flow"}
    assert set(options) == set(JobSpec.__dataclass_fields__) - compound | limit_fields | flow_fields


def test_an_option_that_is_not_part_of_a_jobspec_is_refused_before_anything_is_sent(
    recording_client,
):
    client, sent = recording_client
    with pytest.raises(TypeError, match="unknown job options: delay"):
        client.enqueue("t", delay=5)
    assert sent == []
    with pytest.raises(TypeError):
        job_spec("t", [], colour="red")


# -- the CLI reaches every JobSpec option and retries dead jobs -----------------------------------


class RecordingClient:
    """Stands in for nodes.client.Client inside the CLI commands."""

    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> RecordingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def enqueue(self, *args: Any, **options: Any) -> str:
        self.calls.append(("enqueue", args, options))
        return "job-1"

    def stats(self) -> dict[str, Any]:
        """No worker is connected: `corral enqueue` warns on stderr, and still exits 0."""
        return {"queues": {}, "workers": [], "unroutable": {}}

    def retry(self, *args: Any, **options: Any) -> str:
        self.calls.append(("retry", args, options))
        return "available"

    def delete(self, *args: Any, **options: Any) -> None:
        self.calls.append(("delete", args, options))


@pytest.fixture
def cli_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    RecordingClient.calls = []
    monkeypatch.setattr(cli_commands, "Client", RecordingClient)
    return RecordingClient.calls


def test_corral_enqueue_in_seconds_sets_scheduled_at_that_far_in_the_future(cli_calls, capsys):
    import time

    before = time.time()
    assert cli.main(["enqueue", "t", "1", "--in", "30", "--connect", "tcp://127.0.0.1:1"]) == 0
    after = time.time()
    [(kind, args, options)] = cli_calls
    assert kind == "enqueue" and args == ("t", [1])
    assert before + 30 <= options["scheduled_at"] <= after + 30
    assert capsys.readouterr().out.strip() == "job-1"


def test_corral_enqueue_passes_queue_priority_attempts_unique_key_and_route(cli_calls, capsys):
    argv = [
        "enqueue",
        "t",
        "--queue",
        "q",
        "--priority",
        "3",
        "--max-attempts",
        "7",
        "--unique-key",
        "u",
        "--route",
        "gpu=a100",
        "--route",
        "zone=eu",
        "--connect",
        "tcp://127.0.0.1:1",
    ]
    assert cli.main(argv) == 0
    [(_, _, options)] = cli_calls
    assert {k: v for k, v in options.items() if v is not None} == {
        "queue": "q",
        "priority": 3,
        "max_attempts": 7,
        "unique_key": "u",
        "route": {"gpu": "a100", "zone": "eu"},
    }


def test_every_jobspec_option_is_reachable_from_corral_enqueue(cli_calls, capsys):
    argv = [
        "enqueue",
        "t",
        "1",
        "two",
        "--queue",
        "q",
        "--priority",
        "-2",
        "--at",
        f"{NOW + 60}",
        "--max-attempts",
        "4",
        "--retry-initial",
        "0.5",
        "--retry-backoff",
        "3",
        "--retry-max",
        "60",
        "--no-jitter",
        "--job-timeout",
        "45",
        "--route",
        "gpu=a100",
        "--unique-key",
        "u",
        "--meta",
        '{"owner": "ops"}',
        "--connect",
        "tcp://127.0.0.1:1",
    ]
    assert cli.main(argv) == 0
    [(_, args, options)] = cli_calls
    spec = job_spec(*args, **{k: v for k, v in options.items() if v is not None})
    assert parse_job_spec(spec) == JobSpec(
        type="t",
        args=(1, "two"),
        queue="q",
        priority=-2,
        scheduled_at=NOW + 60,
        max_attempts=4,
        retry=RetryPolicy(0.5, 3.0, 60.0, False),
        timeout=45.0,
        route={"gpu": "a100"},
        unique_key="u",
        meta={"owner": "ops"},
    )


def test_corral_retry_job_id_puts_a_discarded_job_back_through_client_retry(cli_calls, capsys):
    code = cli.main(["retry", "job-9", "--connect", "tcp://127.0.0.1:1"])
    assert code == 0
    assert [(kind, args) for kind, args, _ in cli_calls] == [("retry", ("job-9",))]
    assert "available" in capsys.readouterr().out


def test_corral_delete_job_id_forgets_an_ended_job_through_client_delete(cli_calls, capsys):
    code = cli.main(["delete", "job-9", "--connect", "tcp://127.0.0.1:1"])
    assert code == 0
    assert [(kind, args) for kind, args, _ in cli_calls] == [("delete", ("job-9",))]
    assert capsys.readouterr().out.strip() == "job job-9 deleted"


def test_corral_delete_is_an_admin_command_and_says_so_in_its_help():
    from nodes.cli import ADMIN_COMMANDS, build_parser

    assert "delete" in ADMIN_COMMANDS  # with --config, the key with the admin role is used
    usage = build_parser().format_help()
    assert "delete" in usage and "forget an ended job for good" in usage
