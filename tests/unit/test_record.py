"""Job records (actors.store.record) and the compact job: a record gives back exactly the job's
wire form in every state, reads the Job maps of SQLite schema version 1, and refuses anything
else by name; jobs built from specs or wire forms share their empty values."""

from __future__ import annotations

import random
import sys
from types import MappingProxyType
from typing import Any

import msgpack
import pytest

from actors import lifecycle, states
from actors.jobs import Job
from actors.store import record
from transport.jobspec import DEFAULT_RETRY, EMPTY_MAP, RetryPolicy
from transport.messages import ErrorInfo
from transport.validation.jobs import job_spec

T0 = 1_700_000_000.0


def queued(**spec: Any) -> Job:
    return Job.from_spec(job_spec({"type": "noop", **spec}), "job-1", T0, seq=1)


def active(job: Job) -> Job:
    if job.state != states.AVAILABLE:  # scheduled or retryable: promoted once due
        lifecycle.promote(job)
    lifecycle.activate(job, T0 + 1, "w-1", 30.0)
    return job


def failed_once(job: Job) -> Job:
    error = ErrorInfo("ValueError", "bad input", backtrace=("frame 1", "frame 2"))
    lifecycle.fail(active(job), T0 + 2, error, random.Random(0))
    return job


def completed(job: Job, result: Any = None) -> Job:
    lifecycle.complete(active(job), T0 + 4, result)
    return job


def expired(job: Job) -> Job:
    lifecycle.expire(job, T0 + 700)
    return job


def ended(job: Job, state: str) -> Job:
    if state == states.DISCARDED:
        fatal = ErrorInfo("Boom", "it broke", retryable=False)
        lifecycle.fail(active(job), T0 + 4, fatal, random.Random(0))
    else:
        active(job).record_error("Boom", "it broke", T0 + 2)
        lifecycle.cancel(job, T0 + 4)
    return job


EVERY_OPTION = {
    "args": [1, "two", {"three": [3]}],
    "queue": "images",
    "priority": -5,
    "scheduled_at": T0 + 60,
    "max_attempts": 7,
    "retry": {"initial_interval": 0.5, "max_interval": 60, "jitter": False},
    "timeout": 45,
    "route": {"gpu": "a100"},
    "unique_key": "nightly",
    "meta": {"owner": "ops", "tags": ["a", "b"]},
}

LIMITED = {"concurrency_key": "customer:42", "concurrency_limit": 2}
DEADLINES = {"expires_at": T0 + 600, "run_timeout": 30}
RATED_ONLY = {"rate_limit": {"count": 10, "per": 60.0}}
RATED = {"concurrency_key": "customer:42", **RATED_ONLY}

JOBS = {
    "queued no-op": lambda: queued(),
    "queued under its own limit": lambda: queued(**LIMITED),
    "queued under its own rate": lambda: queued(**RATED),
    "queued with a key alone": lambda: queued(concurrency_key="tenant-7"),
    "completed under a limit": lambda: completed(queued(**EVERY_OPTION, **LIMITED, **RATED_ONLY)),
    "deferred, waiting for two": lambda: queued(depends_on=["job-a", "job-b"]),
    "deferred, continuing on failure, without results": lambda: queued(
        depends_on=["job-a"], on_failure="continue", pass_results=False
    ),
    "queued with an expiry": lambda: queued(expires_at=T0 + 600),
    "queued with a run timeout": lambda: queued(run_timeout=2.5),
    "active with both deadlines": lambda: active(queued(expires_at=T0 + 600, run_timeout=9)),
    "completed with every option and deadlines": lambda: completed(
        queued(**EVERY_OPTION, **LIMITED, **DEADLINES), 1
    ),
    "expired unstarted": lambda: expired(queued(**DEADLINES)),
    "queued with every option": lambda: queued(**EVERY_OPTION),
    "scheduled": lambda: queued(scheduled_at=T0 + 60),
    "active": lambda: active(queued(**EVERY_OPTION)),
    "retryable with an error": lambda: failed_once(queued()),
    "completed with a result": lambda: completed(queued(), {"rows": [1, 2], "ok": True}),
    "completed with a nil result": lambda: completed(queued()),
    "completed after a retry": lambda: completed(failed_once(queued(**EVERY_OPTION)), 42),
    "discarded": lambda: ended(queued(), states.DISCARDED),
    "cancelled": lambda: ended(queued(route={"zone": "eu"}), states.CANCELLED),
}


@pytest.mark.parametrize("make", JOBS.values(), ids=JOBS.keys())
def test_a_record_unpacks_to_exactly_the_wire_form_of_its_job(make):
    job = make()
    wire = job.to_wire()
    unpacked = record.unpack(record.pack(job))
    assert unpacked == wire
    assert list(unpacked) == list(wire)  # the same keys in the same order, too
    assert ("result" in unpacked) == (job.state == states.COMPLETED)


@pytest.mark.parametrize("make", JOBS.values(), ids=JOBS.keys())
def test_a_job_rebuilt_from_its_wire_form_packs_to_the_same_record(make):
    job = make()
    assert record.pack(Job.from_wire(job.to_wire(), seq=9)) == record.pack(job)


@pytest.mark.parametrize("make", JOBS.values(), ids=JOBS.keys())
def test_the_job_of_a_record_is_the_job_its_wire_form_rebuilds(make):
    job = make()
    assert record.job(record.pack(job), 9) == Job.from_wire(job.to_wire(), seq=9)
    job.request_id = "req-3"  # kept in the record, given back to the Job (later saves keep it)
    rebuilt = record.job(record.pack(job), 9)
    assert rebuilt == Job.from_wire(job.to_wire(), seq=9, request_id="req-3")
    assert rebuilt.request_id == "req-3"


def test_the_jobs_of_queued_records_without_options_share_the_compact_values():
    blob = record.pack(queued())
    first, second = record.job(blob, 1), record.job(blob, 2)
    assert first.retry is DEFAULT_RETRY and first.route is EMPTY_MAP and first.meta is EMPTY_MAP
    assert first.type is second.type and first.queue is second.queue  # msgpack made two copies


def test_a_queued_job_without_options_packs_to_its_first_fields_alone():
    blob = record.pack(queued())
    assert msgpack.unpackb(blob) == ["job-1", "available", "noop", "default", T0, [], 0, 3, 0]
    assert len(blob) < 80


def test_a_schema_1_job_map_is_read_back_as_it_is_and_packed_anew_by_read_row():
    job = completed(failed_once(queued(**EVERY_OPTION)), {"n": 1})
    legacy = msgpack.packb(job.to_wire(), use_bin_type=True)  # a schema version 1 row
    assert record.unpack(legacy) == job.to_wire()
    indexed = record.Indexed(
        job.id, job.state, job.type, job.queue, job.created_at, job.unique_key, job.completed_at,
        None,
    )  # fmt: skip
    assert record.read_row(legacy) == (record.pack(job), indexed)
    current = record.pack(job)
    assert record.read_row(current) == (current, indexed)
    assert record.read_row(record.pack(queued()))[1][5:] == (None, None, None)  # the head only


def test_a_request_id_is_kept_in_the_record_beside_the_job_map_not_in_it():
    for job in (queued(), completed(failed_once(queued(**EVERY_OPTION)), {"n": 1})):
        job.request_id = "req-1"
        blob = record.pack(job)
        assert record.read(blob) == (job.to_wire(), "req-1")
        assert record.unpack(blob) == job.to_wire() and "request_id" not in job.to_wire()
        compact, indexed = record.read_row(blob)
        assert (compact, indexed.request_id, indexed.unique_key) == (blob, "req-1", job.unique_key)
        assert indexed.completed_at == job.completed_at


def test_a_request_id_costs_its_own_bytes_and_nothing_for_a_job_without_one():
    plain = queued()
    with_id = queued()
    with_id.request_id = "0" * 32
    assert msgpack.unpackb(record.pack(plain)) == [
        "job-1",
        "available",
        "noop",
        "default",
        T0,
        [],
        0,
        3,
        0,
    ]
    assert len(record.pack(with_id)) - len(record.pack(plain)) == 2 + 32  # the string alone
    assert msgpack.unpackb(record.pack(with_id))[record.HEAD :] == ["0" * 32]


def test_a_schema_2_full_record_without_the_request_id_field_is_still_read():
    job = completed(failed_once(queued(**EVERY_OPTION)), {"n": 1})
    fields = msgpack.unpackb(record.pack(job))
    assert [fields.pop() for _ in range(3)] == [None] * 3  # no deadlines, flow or limit at the end
    assert fields.pop(record.HEAD) is None  # version 2 had no request_id there
    version_2 = msgpack.packb(fields, use_bin_type=True)
    assert record.read(version_2) == (job.to_wire(), None)
    _, indexed = record.read_row(version_2)
    assert (indexed.unique_key, indexed.completed_at, indexed.request_id) == (
        job.unique_key, job.completed_at, None,
    )  # fmt: skip


def test_a_schema_4_full_record_without_the_limit_field_is_still_read():
    job = completed(failed_once(queued(**EVERY_OPTION)), {"n": 1})
    job.request_id = "req-4"
    fields = msgpack.unpackb(record.pack(job))
    assert [fields.pop() for _ in range(3)] == [None] * 3  # version 4 ended with the result
    version_4 = msgpack.packb(fields, use_bin_type=True)
    assert record.read(version_4) == (job.to_wire(), "req-4")
    assert record.read_row(version_4)[1].request_id == "req-4"


def test_a_schema_6_full_record_without_the_deadlines_field_is_still_read():
    job = queued(**EVERY_OPTION, **LIMITED, depends_on=["job-a"])  # deferred, with a flow
    job.request_id = "req-6"
    fields = msgpack.unpackb(record.pack(job))
    assert fields.pop() is None  # version 6 ended with the flow
    version_6 = msgpack.packb(fields, use_bin_type=True)
    assert record.read(version_6) == (job.to_wire(), "req-6")
    assert record.job(version_6, 3) == Job.from_wire(job.to_wire(), 3, "req-6")
    assert record.read_row(version_6)[1].request_id == "req-6"


def test_deadlines_are_one_field_at_the_end_and_nothing_for_a_job_without_them():
    plain, timed = queued(), queued(**DEADLINES)
    assert len(msgpack.unpackb(record.pack(plain))) == record.HEAD  # still the head alone
    fields = msgpack.unpackb(record.pack(timed))
    assert record.FIELDS[-1] == "deadlines" and fields[-1] == [T0 + 600, 30]
    assert fields[: record.HEAD] == msgpack.unpackb(record.pack(plain))
    only_timeout = msgpack.unpackb(record.pack(queued(run_timeout=4)))
    assert only_timeout[-1] == [None, 4]
    wire = record.unpack(record.pack(timed))
    assert (wire["expires_at"], wire["run_timeout"]) == (T0 + 600, 30.0)
    assert "expires_at" not in record.unpack(record.pack(plain))


@pytest.mark.parametrize("bad", [7, [T0], [T0, 1, 2], "soon"])
def test_a_deadlines_field_that_is_not_a_pair_is_refused(bad):
    fields = msgpack.unpackb(record.pack(queued(**DEADLINES)))
    fields[-1] = bad
    with pytest.raises(record.RecordError, match="not a job record"):
        record.unpack(msgpack.packb(fields))


def test_a_limit_round_trips_into_the_job_and_its_wire_form():
    job = queued(**LIMITED, rate_limit={"count": 3, "per": 1.5})
    rebuilt = record.job(record.pack(job), seq=9)
    assert rebuilt.limit == job.limit and rebuilt.limit is not None
    assert (rebuilt.limit.key, rebuilt.limit.concurrency) == ("customer:42", 2)
    assert job.to_wire()["rate_limit"] == {"count": 3, "per": 1.5}
    assert "concurrency_key" not in queued().to_wire()  # only when set


def test_a_job_with_options_and_a_request_id_round_trips_in_every_state():
    for make in (queued, lambda **o: failed_once(queued(**o)), lambda **o: completed(queued(**o))):
        job = make(**EVERY_OPTION)
        job.request_id = "req-9"
        assert record.read(record.pack(job)) == (job.to_wire(), "req-9")


@pytest.mark.parametrize(
    ("blob", "problem"),
    [
        (b"\xc1garbage", "undecodable job record"),
        (b"", "undecodable job record"),
        (record.pack(queued()) + b"\x00", "undecodable job record"),  # trailing bytes
        (msgpack.packb("a string"), "not a job record"),
        (msgpack.packb([1, 2, 3]), "not a job record"),
        (msgpack.packb([None] * len(record.FIELDS)), "not a job record"),
        (msgpack.packb({"id": "job-1", "state": "available"}), "not a job map"),
        (msgpack.packb([*msgpack.unpackb(record.pack(queued())), 7]), "not a job record"),
        (msgpack.packb([*msgpack.unpackb(record.pack(queued()))] + [None] * 17), "record"),
        (msgpack.packb([*msgpack.unpackb(record.pack(queued()))] + [None] * 13 + [7]), "record"),
        (msgpack.packb([*msgpack.unpackb(record.pack(queued()))] + [None] * 2), "record"),
    ],
    ids=[
        "bad byte",
        "empty",
        "trailing",
        "string",
        "short array",
        "nil fields",
        "partial map",
        "request id not a string",
        "a field too many",
        "limit not an array",
        "eleven fields",
    ],
)
def test_bytes_that_are_not_a_job_record_are_refused_by_name(blob, problem):
    with pytest.raises(record.RecordError, match=problem):
        record.unpack(blob)
    with pytest.raises(record.RecordError, match=problem):
        record.read_row(blob)  # what a store's index reads at open
    with pytest.raises(record.RecordError, match=problem):
        record.job(blob, 0)  # what a coordinator restores


def test_a_record_error_is_a_value_error_so_a_store_can_name_its_file():
    assert issubclass(record.RecordError, ValueError)


# -- the compact job ------------------------------------------------------------------------------


def test_a_job_from_a_spec_without_options_shares_its_empty_values():
    first, second = queued(), queued()
    assert first.args is () and first.errors is ()  # noqa: F632 - the shared empty tuple
    assert first.route is EMPTY_MAP and first.meta is EMPTY_MAP
    assert first.retry is DEFAULT_RETRY
    assert first.type is second.type and first.queue is second.queue


def test_the_job_type_and_queue_of_decoded_specs_are_shared_strings():
    specs = msgpack.unpackb(msgpack.packb([{"type": "resize", "queue": "images"}] * 2))
    first, second = (job_spec(spec) for spec in specs)
    assert specs[0]["type"] is not specs[1]["type"]  # msgpack makes a string per occurrence
    assert first.type is second.type
    assert first.queue is second.queue


def test_the_shared_empty_map_cannot_be_changed():
    assert isinstance(EMPTY_MAP, MappingProxyType)
    with pytest.raises(TypeError):
        EMPTY_MAP["key"] = "value"  # type: ignore[index]


def test_a_spec_with_values_keeps_them_as_given():
    job = queued(**EVERY_OPTION)
    assert job.args == (1, "two", {"three": [3]})
    assert job.route == {"gpu": "a100"} and type(job.route) is dict
    assert job.meta == {"owner": "ops", "tags": ["a", "b"]} and type(job.meta) is dict
    assert job.retry == RetryPolicy(0.5, 2.0, 60.0, False)


def test_the_wire_form_gives_lists_and_maps_that_msgpack_can_pack():
    wire = failed_once(queued()).to_wire()
    assert (wire["args"], wire["route"], wire["meta"]) == ([], {}, {})
    assert all(type(wire[key]) is dict for key in ("route", "meta", "retry"))
    assert type(wire["errors"]) is list and len(wire["errors"]) == 1
    msgpack.packb(wire)  # nothing in it is a mappingproxy or another unpackable type


def test_recording_an_error_makes_a_new_tuple_and_leaves_earlier_snapshots_alone():
    job = queued()
    before = job.errors
    wire = job.to_wire()
    active(job).record_error("E", "first", T0)
    assert before == () and wire["errors"] == []
    assert [error["message"] for error in job.errors] == ["first"]
    assert type(job.errors) is tuple


def test_a_job_keeps_its_request_id_from_its_spec_or_as_rebuilt_from_a_record():
    job = Job.from_spec(job_spec({"type": "noop"}), "job-1", T0, seq=1, request_id="req-1")
    wire, request_id = record.read(record.pack(job))
    assert Job.from_wire(wire, seq=1, request_id=request_id) == job
    assert queued().request_id is None


def test_a_job_rebuilt_from_a_wire_form_takes_the_compact_forms_too():
    rebuilt = Job.from_wire(record.unpack(record.pack(failed_once(queued()))), seq=3)
    assert rebuilt.args is ()  # noqa: F632
    assert rebuilt.route is EMPTY_MAP and rebuilt.meta is EMPTY_MAP
    assert rebuilt.retry is DEFAULT_RETRY
    assert type(rebuilt.errors) is tuple and len(rebuilt.errors) == 1
    assert rebuilt.type is sys.intern("noop")


def test_shared_names_are_one_object_per_name_and_the_cache_stays_bounded():
    from transport import jobspec

    first = jobspec.shared_name("".join(["que", "ue-a"]))
    assert jobspec.shared_name("".join(["queu", "e-a"])) is first
    for n in range(jobspec.NAMES_KEPT + 10):
        jobspec.shared_name(f"name-{n}")
    assert len(jobspec._names) <= jobspec.NAMES_KEPT
