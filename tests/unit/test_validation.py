"""Request validation against PROTOCOL.md sections 2 to 4: typed messages, defaults, refusals.

Field tables below are transcribed from PROTOCOL.md: a field without `?` and without a stated
default is required; `(default X)` fills X in; `field?` is optional.
"""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import codec, jobspec
from transport import messages as m
from transport.errors import BadRequest, TooLarge, UnsupportedVersion
from transport.validation import REQUEST_TYPES, parse_request, request_rid, request_type
from transport.validation.jobs import job_spec
from transport.validation.limits import DEFAULT_LIMITS, Limits
from transport.validation.workflows import compile_workflow, with_parents

DETERMINISTIC = settings(derandomize=True, deadline=None, database=None, max_examples=300)
WID = "0190f0a0-0000-7000-8000-000000000001"
JID = "0190f0a0-0000-7000-8000-000000000002"


def parse(body: dict[str, Any], limits: Limits = DEFAULT_LIMITS) -> m.Request:
    """What the coordinator's edge does with one frame."""
    frame = codec.encode(body)
    decoded = codec.decode(frame)
    rid = request_rid(decoded)
    return parse_request(request_type(decoded), rid, decoded, len(frame), limits)


# One complete, valid body per request type (every field PROTOCOL.md lists, none defaulted).
FULL: dict[str, dict[str, Any]] = {
    "hello": {"v": 1, "role": "worker", "hostname": "h1", "pid": 42},
    "register": {
        "worker_id": WID,
        "queues": ["q1", "q2"],
        "concurrency": 4,
        "functions": ["resize"],
        "labels": {"gpu": ["a100", "h100"]},
        "hostname": "h1",
        "pid": 42,
        "previous_worker_id": "0190f0a0-0000-7000-8000-0000000000ff",
        "active_job_ids": [JID],
    },
    "beat": {"worker_id": WID, "state": "running", "active_job_ids": [JID]},
    "fetch": {"worker_id": WID, "count": 2, "queues": ["q1"], "wait": 1.5},
    "ack": {"worker_id": WID, "job_id": JID, "attempt": 1, "result": {"ok": True}},
    "fail": {
        "worker_id": WID,
        "job_id": JID,
        "attempt": 2,
        "error": {"type": "ValueError", "message": "bad", "retryable": False, "backtrace": ["l1"]},
    },
    "outcomes": {  # extension of docs/PROTOCOL.md: several acks and fails in one frame
        "worker_id": WID,
        "outcomes": [
            {"job_id": JID, "attempt": 1, "result": {"ok": True}},
            {
                "job_id": JID,
                "attempt": 2,
                "error": {"type": "ValueError", "message": "bad", "retryable": False},
            },
        ],
    },
    "deregister": {"worker_id": WID},
    "ping": {},
    "enqueue": {"job": {"type": "resize"}},
    "get": {"job_id": JID, "wait": 2},
    "cancel": {"job_id": JID},
    "retry": {"job_id": JID},  # extension of docs/PROTOCOL.md: retry a discarded job by hand
    "delete": {"job_id": JID},  # extension "Delete": forget an ended job for good
    "stats": {},
    "jobs": {"queue": "q1", "state": "discarded", "job_type": "resize", "limit": 10},  # extension
    "direct": {"worker_id": WID, "state": "quiet"},
    "pause_queue": {"queue": "q1"},
    "resume_queue": {"queue": "q1"},
    "schedule_put": {"schedule": {"name": "s1", "job": {"type": "t"}, "every": 60}},
    "schedule_remove": {"name": "s1"},
    "schedule_pause": {"name": "s1"},
    "schedule_resume": {"name": "s1"},
    "schedules": {},
    # the workflow extension (docs/PROTOCOL.md, "Workflows")
    "workflow": {
        "workflow": {
            "chain": [{"type": "a"}, {"group": [{"type": "b"}], "callback": {"type": "c"}}]
        },
        "on_failure": "continue",
        "request_id": "wf-1",
    },
    "workflow_get": {"workflow_id": "wf-1", "limit": 10},
    "workflow_cancel": {"workflow_id": "wf-1"},
}
FULL_SPEC: dict[str, Any] = {
    "type": "resize",
    "args": [1, "two", {"three": 3}],
    "queue": "images",
    "priority": 5,
    "scheduled_at": 1_700_000_123.5,
    "max_attempts": 7,
    "retry": {
        "initial_interval": 0.5,
        "backoff_coefficient": 3.0,
        "max_interval": 60.0,
        "jitter": False,
    },
    "timeout": 30.0,
    "route": {"gpu": "a100"},
    "unique_key": "img-1",
    "meta": {"owner": "me"},
    "concurrency_key": "customer:1",  # the limit extension (docs/PROTOCOL.md, "Limits")
    "concurrency_limit": 2,
    "rate_limit": {"count": 5, "per": 60},
    "expires_at": 1_700_003_600.0,  # the extensions "Expiry" and "Run timeout"
    "run_timeout": 120,
}


def request(kind: str, rid: Any = 1, **changes: Any) -> dict[str, Any]:
    body = {"type": kind, "rid": rid, **copy.deepcopy(FULL[kind])}
    body.update(changes)
    return body


# -- every request type parses into its typed message -------------------------------------------


def test_hello_parses_into_hello():
    assert parse(request("hello")) == m.Hello(1, "worker", "h1", 42)


def test_register_parses_into_register_with_every_field():
    assert parse(request("register", rid="r")) == m.Register(
        rid="r",
        worker_id=WID,
        queues=("q1", "q2"),
        concurrency=4,
        functions=frozenset({"resize"}),
        labels={"gpu": frozenset({"a100", "h100"})},
        hostname="h1",
        pid=42,
        previous_worker_id="0190f0a0-0000-7000-8000-0000000000ff",
        active_job_ids=(JID,),
    )


def test_register_fills_in_concurrency_10_any_function_no_labels_and_no_previous_session():
    body = request("register")
    for optional in ("concurrency", "functions", "labels", "previous_worker_id", "active_job_ids"):
        del body[optional]
    parsed = parse(body)
    assert isinstance(parsed, m.Register)
    assert parsed.concurrency == 10
    assert parsed.functions == frozenset()
    assert parsed.labels == {}
    assert parsed.previous_worker_id is None
    assert parsed.active_job_ids == ()


def test_register_keeps_the_queue_order_given():
    parsed = parse(request("register", queues=["z", "a", "m"]))
    assert isinstance(parsed, m.Register)
    assert parsed.queues == ("z", "a", "m")


def test_beat_parses_into_beat():
    assert parse(request("beat")) == m.Beat(1, WID, "running", (JID,))


def test_a_beat_carries_the_progress_of_its_jobs():
    progress = {JID: {"fraction": 0.25, "message": "a quarter"}, "other": {"fraction": 1}}
    parsed = parse(request("beat", progress=progress))
    assert isinstance(parsed, m.Beat)
    assert parsed.progress == (
        m.ProgressReport(JID, 0.25, "a quarter"),
        m.ProgressReport("other", 1.0, ""),
    )


@pytest.mark.parametrize(
    ("progress", "says"),
    [
        ([0.5], "'progress' must be a map"),
        ({JID: 0.5}, "must be a map"),
        ({JID: {"fraction": 1.5}}, r"within \[0, 1\]"),
        ({JID: {"fraction": -0.1}}, "'fraction' must be >= 0"),
        ({JID: {"fraction": float("nan")}}, "'fraction' must be a finite number"),
        ({JID: {"fraction": "half"}}, "'fraction' must be a finite number"),
        ({JID: {}}, "missing field 'fraction'"),
        ({JID: {"fraction": 0.5, "message": 7}}, "'message' must be a string"),
        ({JID: {"fraction": 0.5, "message": "x" * 201}}, "more than 200 characters"),
        ({"": {"fraction": 0.5}}, "keyed by job ids"),
    ],
)
def test_a_malformed_progress_report_refuses_the_beat_saying_why(progress, says):
    with pytest.raises(BadRequest, match=says):
        parse(request("beat", progress=progress))


@pytest.mark.parametrize("state", ["running", "quiet", "terminate"])
def test_beat_and_direct_accept_each_worker_state(state):
    assert parse(request("beat", state=state)).state == state  # type: ignore[union-attr]
    assert parse(request("direct", state=state)).state == state  # type: ignore[union-attr]


def test_fetch_parses_into_fetch():
    assert parse(request("fetch")) == m.Fetch(1, WID, 2, ("q1",), 1.5)


def test_fetch_defaults_to_the_registered_queues_and_no_wait():
    assert parse({"type": "fetch", "rid": 1, "worker_id": WID, "count": 3}) == m.Fetch(
        1, WID, 3, None, 0.0
    )


def test_fetch_accepts_an_integer_wait_as_seconds():
    parsed = parse(request("fetch", wait=2))
    assert isinstance(parsed, m.Fetch)
    assert parsed.wait == 2.0


def test_ack_parses_into_ack_with_its_result():
    assert parse(request("ack")) == m.Ack(1, WID, JID, 1, {"ok": True})


def test_ack_without_a_result_has_none():
    body = request("ack")
    del body["result"]
    assert parse(body) == m.Ack(1, WID, JID, 1, None)


def test_fail_parses_into_fail_with_its_error():
    assert parse(request("fail")) == m.Fail(
        1, WID, JID, 2, m.ErrorInfo("ValueError", "bad", False, ("l1",))
    )


def test_a_fail_error_is_retryable_by_default_and_has_no_backtrace():
    body = request("fail", error={"type": "E", "message": "m"})
    assert parse(body) == m.Fail(1, WID, JID, 2, m.ErrorInfo("E", "m", True, ()))


def test_deregister_ping_cancel_and_stats_parse_into_their_messages():
    assert parse(request("deregister")) == m.Deregister(1, WID)
    assert parse(request("ping", rid="p")) == m.Ping("p")
    assert parse(request("cancel")) == m.Cancel(1, JID)
    assert parse(request("stats")) == m.Stats(1)


def test_stats_may_ask_for_the_series_extension_with_a_boolean():
    assert parse({"type": "stats", "rid": 1, "series": True}) == m.Stats(1, True)
    assert parse({"type": "stats", "rid": 1, "series": False}) == m.Stats(1, False)
    with pytest.raises(BadRequest, match="'series' must be a boolean"):
        parse({"type": "stats", "rid": 1, "series": "yes"})


def test_ping_identify_is_an_optional_boolean():
    assert parse({"type": "ping", "rid": 1, "identify": True}) == m.Ping(1, True)
    assert parse({"type": "ping", "rid": 1}) == m.Ping(1, False)
    for garbage in (1, "yes", [True]):
        with pytest.raises(BadRequest, match="identify"):
            parse(request("ping", identify=garbage))


def test_get_parses_into_get_and_its_wait_defaults_to_zero():
    assert parse(request("get")) == m.Get(1, JID, 2.0)
    assert parse({"type": "get", "rid": 1, "job_id": JID}) == m.Get(1, JID, 0.0)


def test_direct_parses_into_direct():
    assert parse(request("direct")) == m.Direct(1, WID, "quiet")


def test_pause_queue_and_resume_queue_name_a_queue():
    assert parse(request("pause_queue")) == m.PauseQueue(1, "q1", True)
    assert parse(request("resume_queue")) == m.PauseQueue(1, "q1", False)
    for kind in ("pause_queue", "resume_queue"):
        for bad in ("", 7, None, "q" * 257):
            with pytest.raises(BadRequest, match="queue"):
                parse(request(kind, queue=bad))


def test_delete_names_a_job_by_a_string_within_the_name_limit():
    assert parse(request("delete")) == m.Delete(1, JID)
    assert parse(request("delete", job_id="j" * 256)) == m.Delete(1, "j" * 256)
    for bad in ("", "j" * 257, 7, None, [JID]):
        with pytest.raises(BadRequest, match="'job_id'"):
            parse(request("delete", job_id=bad))
    with pytest.raises(BadRequest, match="'job_id' must have 1 to 8 characters"):
        parse(request("delete", job_id="j" * 9), Limits(max_name_chars=8))


def test_a_schedule_is_read_with_its_defaults():
    put = parse(request("schedule_put"))
    assert put == m.SchedulePut(1, m.Schedule("s1", {"type": "t"}, None, 60.0))
    assert (put.schedule.timezone, put.schedule.overlap, put.schedule.misfire) == (
        "UTC", "skip", "once",
    )  # fmt: skip
    assert parse(request("schedule_pause")) == m.SchedulePause(1, "s1", True)
    assert parse(request("schedule_resume")) == m.SchedulePause(1, "s1", False)
    assert parse(request("schedules")) == m.SchedulesList(1)


@pytest.mark.parametrize(
    ("schedule", "says"),
    [
        ({"job": {"type": "t"}, "every": 60}, "'name'"),
        ({"name": "s", "every": 60}, "'job' must be a map"),
        ({"name": "s", "job": {"args": []}, "every": 60}, "type"),
        ({"name": "s", "job": {"type": "t"}}, "exactly one of 'cron' and 'every'"),
        ({"name": "s", "job": {"type": "t"}, "every": 5, "cron": "* * * * *"}, "exactly one"),
        ({"name": "s", "job": {"type": "t"}, "every": 0.5}, "'every' must be >= 1"),
        ({"name": "s", "job": {"type": "t"}, "every": 60, "overlap": "x"}, "'overlap'"),
        ({"name": "s", "job": {"type": "t"}, "every": 60, "misfire": 1}, "'misfire'"),
        ({"name": "s", "job": {"type": "t"}, "cron": 5}, "'cron' must be a string"),
        ("every minute", "'schedule' must be a map"),
    ],
)
def test_a_malformed_schedule_is_a_bad_request_naming_the_field(schedule, says):
    with pytest.raises(BadRequest, match=says):
        parse(request("schedule_put", schedule=schedule))


def test_unknown_keys_are_ignored_in_every_request_type():
    for kind in FULL:
        extra = {"x-future": [1, 2], "also": {"nested": True}}
        plain = parse(request(kind))
        assert parse(request(kind, **extra)) == plain, kind


# -- JobSpec --------------------------------------------------------------------------------------


def test_an_enqueue_of_one_job_fills_in_every_jobspec_default():
    parsed = parse(request("enqueue"))
    assert parsed == m.Enqueue(1, (jobspec.JobSpec(type="resize"),), batch=False)
    spec = parsed.specs[0]  # type: ignore[union-attr]
    assert spec.args == ()
    assert spec.queue == "default"
    assert spec.priority == 0
    assert spec.scheduled_at is None
    assert spec.max_attempts == 3
    assert spec.retry == jobspec.RetryPolicy(1.0, 2.0, 300.0, True)
    assert spec.timeout is None
    assert spec.route == {}
    assert spec.unique_key is None
    assert spec.meta == {}


def test_a_jobspec_with_every_field_keeps_every_value():
    assert job_spec(copy.deepcopy(FULL_SPEC)) == jobspec.JobSpec(
        type="resize",
        args=(1, "two", {"three": 3}),
        queue="images",
        priority=5,
        scheduled_at=1_700_000_123.5,
        max_attempts=7,
        retry=jobspec.RetryPolicy(0.5, 3.0, 60.0, False),
        timeout=30.0,
        route={"gpu": "a100"},
        unique_key="img-1",
        meta={"owner": "me"},
        limit=jobspec.JobLimit("customer:1", 2, jobspec.Rate(5, 60.0)),
        expires_at=1_700_003_600.0,
        run_timeout=120.0,
    )


@pytest.mark.parametrize(
    ("partial", "expected"),
    [
        ({}, jobspec.RetryPolicy(1.0, 2.0, 300.0, True)),
        ({"initial_interval": 5}, jobspec.RetryPolicy(5.0, 2.0, 300.0, True)),
        ({"backoff_coefficient": 1.5}, jobspec.RetryPolicy(1.0, 1.5, 300.0, True)),
        ({"max_interval": 10.0}, jobspec.RetryPolicy(1.0, 2.0, 10.0, True)),
        ({"jitter": False}, jobspec.RetryPolicy(1.0, 2.0, 300.0, False)),
        (
            {"initial_interval": 0.1, "jitter": False},
            jobspec.RetryPolicy(0.1, 2.0, 300.0, False),
        ),
    ],
    ids=["empty", "initial", "coefficient", "max", "jitter", "two-keys"],
)
def test_a_partial_retry_map_is_merged_with_the_defaults(partial, expected):
    assert job_spec({"type": "t", "retry": partial}).retry == expected


def test_a_negative_priority_is_a_valid_priority():
    assert job_spec({"type": "t", "priority": -3}).priority == -3


def test_an_integer_scheduled_at_is_read_as_seconds():
    assert job_spec({"type": "t", "scheduled_at": 1_700_000_000}).scheduled_at == 1_700_000_000.0


def test_a_batch_enqueue_keeps_its_specs_in_order_and_says_it_is_a_batch():
    parsed = parse(
        {"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, {"type": "b", "priority": 2}]}
    )
    assert parsed == m.Enqueue(
        1, (jobspec.JobSpec(type="a"), jobspec.JobSpec(type="b", priority=2)), batch=True
    )


@DETERMINISTIC
@given(
    st.fixed_dictionaries(
        {"type": st.text(min_size=1, max_size=20)},
        optional={
            "args": st.lists(st.integers() | st.text(max_size=5), max_size=4),
            "queue": st.text(min_size=1, max_size=20),
            "priority": st.integers(min_value=-(2**31), max_value=2**31),
            "scheduled_at": st.floats(min_value=0, max_value=4e9),
            "max_attempts": st.integers(min_value=1, max_value=1000),
            "timeout": st.floats(min_value=0.001, max_value=1e6),
            "route": st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=3),
            "unique_key": st.text(min_size=1, max_size=20),
            "meta": st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
        },
    )
)
def test_any_valid_jobspec_parses_to_its_own_values_with_the_rest_defaulted(raw):
    spec = job_spec(copy.deepcopy(raw))
    defaults = jobspec.JobSpec(type=raw["type"])
    assert list(spec.args) == raw.get("args", [])
    for name in (
        "queue",
        "priority",
        "scheduled_at",
        "max_attempts",
        "timeout",
        "route",
        "unique_key",
        "meta",
    ):
        assert getattr(spec, name) == raw.get(name, getattr(defaults, name)), name
    assert spec.retry == jobspec.DEFAULT_RETRY


# -- missing fields -------------------------------------------------------------------------------

# (request type, path to the field). All of these have neither `?` nor a default in PROTOCOL.md.
REQUIRED_FIELDS = [
    ("hello", ("v",)),
    ("hello", ("role",)),
    ("hello", ("hostname",)),
    ("hello", ("pid",)),
    ("register", ("worker_id",)),
    ("register", ("queues",)),
    ("register", ("hostname",)),
    ("register", ("pid",)),
    ("beat", ("worker_id",)),
    ("beat", ("state",)),
    ("beat", ("active_job_ids",)),
    ("fetch", ("worker_id",)),
    ("fetch", ("count",)),
    ("ack", ("worker_id",)),
    ("ack", ("job_id",)),
    ("ack", ("attempt",)),
    ("fail", ("worker_id",)),
    ("fail", ("job_id",)),
    ("fail", ("attempt",)),
    ("fail", ("error",)),
    ("fail", ("error", "type")),
    ("fail", ("error", "message")),
    ("outcomes", ("worker_id",)),
    ("outcomes", ("outcomes",)),
    ("outcomes", ("outcomes", 0, "job_id")),
    ("outcomes", ("outcomes", 0, "attempt")),
    ("outcomes", ("outcomes", 1, "job_id")),
    ("outcomes", ("outcomes", 1, "attempt")),
    ("outcomes", ("outcomes", 1, "error", "type")),
    ("outcomes", ("outcomes", 1, "error", "message")),
    ("deregister", ("worker_id",)),
    ("enqueue", ("job",)),
    ("enqueue", ("job", "type")),
    ("get", ("job_id",)),
    ("cancel", ("job_id",)),
    ("delete", ("job_id",)),
    ("direct", ("worker_id",)),
    ("direct", ("state",)),
    ("workflow", ("workflow",)),
    ("workflow", ("workflow", "chain", 0, "type")),
    ("workflow", ("workflow", "chain", 1, "callback", "type")),
    ("workflow_get", ("workflow_id",)),
    ("workflow_cancel", ("workflow_id",)),
]


def _without(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    holder = body
    for key in path[:-1]:
        holder = holder[key]
    del holder[path[-1]]
    return body


@pytest.mark.parametrize(
    ("kind", "path"),
    REQUIRED_FIELDS,
    ids=[f"{k}.{'.'.join(map(str, p))}" for k, p in REQUIRED_FIELDS],
)
def test_a_request_missing_a_required_field_raises_bad_request(kind, path):
    with pytest.raises(BadRequest):
        parse(_without(request(kind), path))


# -- request_id (extension of docs/PROTOCOL.md) ---------------------------------------------------


def test_an_enqueue_carries_its_request_id_for_one_job_or_a_batch():
    one = parse(request("enqueue", request_id="req-1"))
    assert one == m.Enqueue(1, (jobspec.JobSpec(type="resize"),), batch=False, request_id="req-1")
    batch = parse({"type": "enqueue", "rid": 2, "jobs": [{"type": "a"}], "request_id": "r"})
    assert batch == m.Enqueue(2, (jobspec.JobSpec(type="a"),), batch=True, request_id="r")


@pytest.mark.parametrize("body", [{}, {"request_id": None}], ids=["absent", "null"])
def test_an_enqueue_without_a_request_id_has_none(body):
    assert parse(request("enqueue", **body)).request_id is None  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "request_id", ["x", "r" * 64, "é" * 64, "🦀" * 64, " ", "a\x00b", "0" * 32]
)
def test_a_request_id_of_1_to_64_characters_of_any_kind_is_kept_as_given(request_id):
    assert parse(request("enqueue", request_id=request_id)).request_id == request_id  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("request_id", "problem"),
    [
        ("", "must have 1 to 64 characters"),
        ("r" * 65, "must have 1 to 64 characters"),
        ("é" * 65, "must have 1 to 64 characters"),
        (5, "must be a string"),
        (1.5, "must be a string"),
        (True, "must be a string"),
        (b"bin", "must be a string"),
        (["r"], "must be a string"),
        ({"r": 1}, "must be a string"),
    ],
    ids=["empty", "65", "65-wide", "int", "float", "bool", "bin", "list", "map"],
)
def test_a_bad_request_id_is_refused_naming_the_field_for_one_job_or_a_batch(request_id, problem):
    for body in (
        request("enqueue", request_id=request_id),
        {"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}], "request_id": request_id},
    ):
        with pytest.raises(BadRequest, match=f"field 'request_id' {problem}"):
            parse(body)


@given(st.text(min_size=1, max_size=90))
@settings(max_examples=200, deadline=None)
def test_any_text_is_a_request_id_exactly_when_it_has_at_most_64_characters(request_id):
    body = request("enqueue", request_id=request_id)
    if len(request_id) <= 64:
        assert parse(body).request_id == request_id  # type: ignore[union-attr]
    else:
        with pytest.raises(BadRequest, match="request_id"):
            parse(body)


def test_an_enqueue_with_neither_job_nor_jobs_raises_bad_request():
    with pytest.raises(BadRequest):
        parse({"type": "enqueue", "rid": 1})


# -- mistyped fields ------------------------------------------------------------------------------

STR = ["5", 5, 1.5, True, ["x"], {"x": 1}, b"bin"]
INT = ["1", 1.0, 1.5, True, False, [1], {"n": 1}]
NUMBER = ["1", True, [1.0], {"n": 1}, float("nan"), float("inf")]
BOOL = [1, 0, "true", 1.0, [True]]
STRS = ["q", [1], [["q"]], {"q": 1}, [b"q"], 5, True]
MAP = ["x", [1], 5, True]
# A mistyped value is the field's correct value's type swapped; strings lose the first entry
# (the numeral "5" is a valid string where a string is expected).
MISTYPED: list[tuple[str, tuple[str, ...], list[Any]]] = [
    ("hello", ("role",), STR[1:]),
    ("hello", ("hostname",), STR[1:]),
    ("hello", ("pid",), INT),
    ("register", ("worker_id",), STR[1:]),
    ("register", ("queues",), STRS),
    ("register", ("concurrency",), INT),
    ("register", ("functions",), STRS),
    ("register", ("labels",), MAP),
    ("register", ("labels", "gpu"), STRS),
    ("register", ("hostname",), STR[1:]),
    ("register", ("pid",), INT),
    ("register", ("previous_worker_id",), STR[1:]),
    ("register", ("active_job_ids",), STRS),
    ("beat", ("worker_id",), STR[1:]),
    ("beat", ("state",), STR[1:]),
    ("beat", ("active_job_ids",), STRS),
    ("fetch", ("worker_id",), STR[1:]),
    ("fetch", ("count",), INT),
    ("fetch", ("queues",), STRS),
    ("fetch", ("wait",), NUMBER),
    ("ack", ("worker_id",), STR[1:]),
    ("ack", ("job_id",), STR[1:]),
    ("ack", ("attempt",), INT),
    ("fail", ("worker_id",), STR[1:]),
    ("fail", ("job_id",), STR[1:]),
    ("fail", ("attempt",), INT),
    ("fail", ("error",), MAP),
    ("fail", ("error", "type"), STR[1:]),
    ("fail", ("error", "message"), STR[1:]),
    ("fail", ("error", "retryable"), BOOL),
    ("fail", ("error", "backtrace"), STRS),
    ("outcomes", ("worker_id",), STR[1:]),
    ("outcomes", ("outcomes",), [[], {}, "x", 5]),
    ("outcomes", ("outcomes", 0), ["x", 5, [], None]),
    ("outcomes", ("outcomes", 0, "job_id"), STR[1:]),
    ("outcomes", ("outcomes", 0, "attempt"), INT),
    ("outcomes", ("outcomes", 1, "error"), ["x", 5, []]),
    ("outcomes", ("outcomes", 1, "error", "type"), STR[1:]),
    ("outcomes", ("outcomes", 1, "error", "retryable"), BOOL),
    ("deregister", ("worker_id",), STR[1:]),
    ("enqueue", ("job",), MAP),
    ("enqueue", ("job", "type"), STR[1:]),
    ("enqueue", ("job", "args"), ["x", 5, {"a": 1}, True]),
    ("enqueue", ("job", "queue"), STR[1:]),
    ("enqueue", ("job", "priority"), INT),
    ("enqueue", ("job", "scheduled_at"), NUMBER),
    ("enqueue", ("job", "max_attempts"), INT),
    ("enqueue", ("job", "retry"), MAP),
    ("enqueue", ("job", "retry", "initial_interval"), NUMBER),
    ("enqueue", ("job", "retry", "backoff_coefficient"), NUMBER),
    ("enqueue", ("job", "retry", "max_interval"), NUMBER),
    ("enqueue", ("job", "retry", "jitter"), BOOL),
    ("enqueue", ("job", "timeout"), NUMBER),
    ("enqueue", ("job", "route"), MAP),
    ("enqueue", ("job", "route", "gpu"), STR[1:]),
    ("enqueue", ("job", "unique_key"), STR[1:]),
    ("enqueue", ("job", "meta"), MAP),
    ("enqueue", ("job", "expires_at"), NUMBER),
    ("enqueue", ("job", "run_timeout"), [*NUMBER, 0, -1.5]),
    ("get", ("job_id",), STR[1:]),
    ("get", ("wait",), NUMBER),
    ("cancel", ("job_id",), STR[1:]),
    ("delete", ("job_id",), STR[1:]),
    ("direct", ("worker_id",), STR[1:]),
    ("direct", ("state",), STR[1:]),
    ("enqueue", ("job", "depends_on"), STRS),
    ("workflow", ("workflow",), MAP),
    ("workflow", ("workflow", "chain"), ["x", 5, True, {"type": "a"}]),
    ("workflow", ("workflow", "chain", 1, "group"), ["x", 5, True, {"type": "a"}]),
    ("workflow", ("workflow", "chain", 0, "type"), STR[1:]),
    ("workflow", ("workflow", "chain", 0, "pass_results"), BOOL),
    ("workflow", ("on_failure",), STR[1:]),
    ("workflow", ("request_id",), STR[1:]),
    ("workflow_get", ("workflow_id",), STR[1:]),
    ("workflow_get", ("limit",), INT),
    ("workflow_cancel", ("workflow_id",), STR[1:]),
]
MISTYPED_CASES = [
    (kind, path, value) for kind, path, bad_values in MISTYPED for value in bad_values
]


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    holder = body
    for key in path[:-1]:
        holder = holder[key] if isinstance(holder, list) else holder.setdefault(key, {})
    holder[path[-1]] = value
    return body


def _base(kind: str) -> dict[str, Any]:
    body = request(kind)
    if kind == "enqueue":
        body["job"] = copy.deepcopy(FULL_SPEC)
    return body


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    MISTYPED_CASES,
    ids=[f"{k}.{'.'.join(map(str, p))}={v!r}" for k, p, v in MISTYPED_CASES],
)
def test_a_mistyped_field_raises_bad_request(kind, path, value):
    assert parse(_base(kind))  # the same body with the right type is accepted
    with pytest.raises(BadRequest):
        parse(_with(_base(kind), path, value))


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("hello", ("pid",)),
        ("register", ("concurrency",)),
        ("register", ("pid",)),
        ("fetch", ("count",)),
        ("ack", ("attempt",)),
        ("fail", ("attempt",)),
        ("enqueue", ("job", "priority")),
        ("enqueue", ("job", "max_attempts")),
    ],
)
@pytest.mark.parametrize("flag", [True, False])
def test_a_bool_is_not_accepted_where_an_int_is(kind, path, flag):
    with pytest.raises(BadRequest):
        parse(_with(_base(kind), path, flag))


@pytest.mark.parametrize(
    ("kind", "path"),
    [
        ("fetch", ("count",)),
        ("ack", ("attempt",)),
        ("register", ("concurrency",)),
        ("enqueue", ("job", "priority")),
        ("enqueue", ("job", "max_attempts")),
    ],
)
def test_a_float_is_not_accepted_where_an_int_is_even_when_whole(kind, path):
    with pytest.raises(BadRequest):
        parse(_with(_base(kind), path, 1.0))


@pytest.mark.parametrize(
    ("kind", "path", "value"),
    [
        ("register", ("queues",), []),
        ("register", ("concurrency",), 0),
        ("fetch", ("count",), 0),
        ("fetch", ("wait",), -0.5),
        ("enqueue", ("job", "max_attempts"), 0),
        ("beat", ("state",), "terminated"),
        ("beat", ("state",), "RUNNING"),
        ("direct", ("state",), "paused"),
        ("hello", ("role",), "client"),
    ],
    ids=lambda v: repr(v),
)
def test_a_value_outside_its_documented_range_raises_bad_request(kind, path, value):
    with pytest.raises(BadRequest):
        parse(_with(_base(kind), path, value))


@pytest.mark.parametrize(
    ("where", "value"),
    [(("route",), {b"gpu": "a100"}), (("labels",), {b"gpu": ["a100"]})],
    ids=["route", "labels"],
)
def test_a_binary_key_where_the_protocol_says_str_keys_raises_bad_request(where, value):
    # route is {str: str} and labels {str: [str]} (PROTOCOL.md sections 3 and 4).
    if where == ("route",):
        body = {"type": "enqueue", "rid": 1, "job": {"type": "t", "route": value}}
    else:
        body = request("register", labels=value)
    with pytest.raises(BadRequest):
        parse(body)


# -- limits (extension of docs/PROTOCOL.md, "Limits") ---------------------------------------------

LIMIT_KEY = "field 'concurrency_key'"
NEED_KEY = "concurrency_limit and rate_limit need a concurrency_key"
LIMIT_INT = "field 'concurrency_limit' must be an integer"
RATE_MAP = "field 'rate_limit' must be a map {count, per}"
RATE_COUNT = "field 'rate_limit.count' must be an integer >= 1"
RATE_PER = "field 'rate_limit.per' must be a number of seconds > 0"
ACCEPTED_LIMITS = [
    pytest.param({}, None, id="none"),
    pytest.param(
        {"concurrency_key": None, "concurrency_limit": None, "rate_limit": None}, None, id="nulls"
    ),
    pytest.param({"concurrency_key": "c1"}, jobspec.JobLimit("c1"), id="key-alone"),
    pytest.param(
        {"concurrency_key": "c1", "concurrency_limit": None, "rate_limit": None},
        jobspec.JobLimit("c1"),
        id="key-and-nulls",
    ),
    pytest.param(
        {"concurrency_key": "c1", "concurrency_limit": 1},
        jobspec.JobLimit("c1", 1),
        id="concurrency",
    ),
    pytest.param(
        {"concurrency_key": "c1", "rate_limit": {"count": 5, "per": 60}},
        jobspec.JobLimit("c1", rate=jobspec.Rate(5, 60.0)),
        id="rate-integer-per",
    ),
    pytest.param(
        {"concurrency_key": "c1", "concurrency_limit": 3, "rate_limit": {"count": 1, "per": 0.25}},
        jobspec.JobLimit("c1", 3, jobspec.Rate(1, 0.25)),
        id="both",
    ),
    pytest.param(
        {"concurrency_key": "é" * 256, "concurrency_limit": 2**64 - 1},
        jobspec.JobLimit("é" * 256, 2**64 - 1),
        id="longest-key-huge-limit",
    ),
    pytest.param(
        {"concurrency_key": "c1", "rate_limit": {"count": 2**64 - 1, "per": 5e-324}},
        jobspec.JobLimit("c1", rate=jobspec.Rate(2**64 - 1, 5e-324)),
        id="huge-count-tiny-per",
    ),
    pytest.param(
        {"concurrency_key": "c1", "rate_limit": {"count": 2, "per": 1e308, "burst": 9}},
        jobspec.JobLimit("c1", rate=jobspec.Rate(2, 1e308)),
        id="unknown-rate-key-ignored",
    ),
]


@pytest.mark.parametrize(("fields", "limit"), ACCEPTED_LIMITS)
def test_the_limit_fields_give_the_jobspec_its_limit_and_the_job_map_echoes_them(fields, limit):
    spec = job_spec({"type": "t", **fields})
    assert spec.limit == limit
    parsed = parse({"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, {"type": "t", **fields}]})
    assert [s.limit for s in parsed.specs] == [None, limit]  # type: ignore[union-attr]
    if spec.limit is not None:  # the Job map carries the fields set, and reads back the same
        echo = spec.limit.to_wire()
        assert set(echo) == {name for name, value in fields.items() if value is not None}
        assert jobspec.JobLimit.of_wire(echo) == limit
        assert spec.limit.rate is None or type(spec.limit.rate.per) is float


REFUSED_LIMITS = [
    ({"concurrency_limit": 2}, NEED_KEY),
    ({"rate_limit": {"count": 1, "per": 1}}, NEED_KEY),
    ({"concurrency_key": None, "concurrency_limit": 2}, NEED_KEY),
    ({"concurrency_limit": 0}, NEED_KEY),  # the key is looked at first
    ({"concurrency_key": ""}, f"{LIMIT_KEY} must have 1 to 256 characters"),
    ({"concurrency_key": "k" * 257}, f"{LIMIT_KEY} must have 1 to 256 characters"),
    *[({"concurrency_key": bad}, f"{LIMIT_KEY} must be a string") for bad in STR[1:]],
    ({"concurrency_key": "c1", "concurrency_limit": 0}, "field 'concurrency_limit' must be >= 1"),
    ({"concurrency_key": "c1", "concurrency_limit": -1}, "field 'concurrency_limit' must be >= 1"),
    *[({"concurrency_key": "c1", "concurrency_limit": bad}, LIMIT_INT) for bad in INT],
    *[({"concurrency_key": "c1", "rate_limit": bad}, RATE_MAP) for bad in [*MAP, 0, "1/s"]],
    *[
        ({"concurrency_key": "c1", "rate_limit": {"count": bad, "per": 1}}, RATE_COUNT)
        for bad in [None, 0, -1, *INT]
    ],
    *[
        ({"concurrency_key": "c1", "rate_limit": {"count": 1, "per": bad}}, RATE_PER)
        for bad in [None, 0, 0.0, -1, -0.5, float("-inf"), False, *NUMBER]
    ],
    ({"concurrency_key": "c1", "rate_limit": {}}, RATE_COUNT),
]


@pytest.mark.parametrize(
    ("fields", "says"), REFUSED_LIMITS, ids=[repr(fields) for fields, _ in REFUSED_LIMITS]
)
def test_a_bad_limit_field_is_refused_naming_it_in_an_enqueue_a_batch_and_a_schedule(fields, says):
    spec = {"type": "t", **fields}
    for body, where in (
        ({"type": "enqueue", "rid": 1, "job": spec}, ""),
        ({"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, spec]}, "jobs[1]: "),
        (request("schedule_put", schedule={"name": "s", "job": spec, "every": 60}), ""),
    ):
        with pytest.raises(BadRequest) as refusal:
            parse(body)
        assert refusal.value.message == where + says


# -- workflows (extension of docs/PROTOCOL.md, "Workflows") ---------------------------------------

DEPENDS_ON = "field 'depends_on' must be a list of at most 100000 job ids"
JOB_IDS = "field 'depends_on' must hold job ids (1 to 256 characters)"
NEED_PARENTS = "on_failure and pass_results need depends_on"
ON_FAILURE = "field 'on_failure' must be one of cancel, continue, only"
ACCEPTED_FLOWS = [
    pytest.param({}, None, id="none"),
    pytest.param({"depends_on": None, "on_failure": None, "pass_results": None}, None, id="nulls"),
    pytest.param({"depends_on": []}, None, id="empty-list"),
    pytest.param({"depends_on": [JID]}, jobspec.Flow((JID,)), id="one-parent"),
    pytest.param(
        {"depends_on": ["b", "a", "b"]}, jobspec.Flow(("b", "a")), id="repeats-dropped-order-kept"
    ),
    pytest.param(
        {"depends_on": [JID], "on_failure": "continue"},
        jobspec.Flow((JID,), "continue"),
        id="continue",
    ),
    pytest.param(
        {"depends_on": [JID], "on_failure": None, "pass_results": None},
        jobspec.Flow((JID,)),
        id="policy-nulls",
    ),
    pytest.param(
        {"depends_on": [JID], "on_failure": "cancel", "pass_results": False},
        jobspec.Flow((JID,), "cancel", pass_results=False),
        id="no-results",
    ),
    pytest.param({"depends_on": ["é" * 256]}, jobspec.Flow(("é" * 256,)), id="longest-id"),
]


@pytest.mark.parametrize(("fields", "flow"), ACCEPTED_FLOWS)
def test_depends_on_gives_the_jobspec_its_flow_and_the_job_map_echoes_it(fields, flow):
    assert job_spec({"type": "t", **fields}).flow == flow
    parsed = parse({"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, {"type": "t", **fields}]})
    assert [s.flow for s in parsed.specs] == [None, flow]  # type: ignore[union-attr]
    if flow is not None:  # pass_results only when false, and no workflow_id outside a workflow
        wire = flow.to_wire("req-1")
        assert wire["depends_on"] == list(flow.depends_on)
        assert wire.get("pass_results", True) is flow.pass_results
        assert "workflow_id" not in wire
        assert jobspec.Flow.of_wire(wire) == flow


REFUSED_FLOWS = [
    ({"on_failure": "continue"}, NEED_PARENTS),
    ({"pass_results": False}, NEED_PARENTS),
    ({"depends_on": [], "on_failure": "cancel"}, NEED_PARENTS),
    ({"depends_on": None, "pass_results": True}, NEED_PARENTS),
    *[({"depends_on": bad}, DEPENDS_ON) for bad in ["a", JID, 5, True, {"a": 1}, b"a"]],
    *[({"depends_on": [bad]}, JOB_IDS) for bad in ["", "x" * 257, 5, None, True, ["a"], b"a"]],
    ({"depends_on": [JID, ""]}, JOB_IDS),
    *[({"depends_on": [JID], "on_failure": bad}, ON_FAILURE) for bad in ["x", "Cancel", ""]],
    *[
        ({"depends_on": [JID], "on_failure": bad}, "field 'on_failure' must be a string")
        for bad in STR[1:]
    ],
    *[
        ({"depends_on": [JID], "pass_results": bad}, "field 'pass_results' must be a boolean")
        for bad in BOOL
    ],
]


@pytest.mark.parametrize(
    ("fields", "says"), REFUSED_FLOWS, ids=[repr(fields) for fields, _ in REFUSED_FLOWS]
)
def test_a_bad_flow_field_is_refused_naming_it_in_an_enqueue_and_a_batch(fields, says):
    spec = {"type": "t", **fields}
    for body, where in (
        ({"type": "enqueue", "rid": 1, "job": spec}, ""),
        ({"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, spec]}, "jobs[1]: "),
    ):
        with pytest.raises(BadRequest) as refusal:
            parse(body)
        assert refusal.value.message == where + says


def test_depends_on_holds_at_most_max_list_items_ids():
    two = Limits(max_list_items=2)
    assert job_spec({"type": "t", "depends_on": ["a", "b"]}, limits=two).flow == jobspec.Flow(
        ("a", "b")
    )
    with pytest.raises(BadRequest, match="at most 2 job ids"):
        parse({"type": "enqueue", "rid": 1, "job": {"type": "t", "depends_on": ["a"] * 3}}, two)


def _step(job_type: str, parents: tuple[int, ...] = (), **spec: Any) -> m.WorkflowStep:
    pass_results = spec.pop("pass_results", True)
    return m.WorkflowStep(jobspec.JobSpec(type=job_type, **spec), parents, pass_results)


def test_a_workflow_request_parses_into_its_steps_in_order_with_its_policy_and_id():
    assert parse(request("workflow")) == m.WorkflowSubmit(
        1, (_step("a"), _step("b", (0,)), _step("c", (1,))), "continue", "wf-1"
    )
    bare = parse({"type": "workflow", "rid": 2, "workflow": {"type": "a"}, "on_failure": None})
    assert bare == m.WorkflowSubmit(2, (_step("a"),), "cancel", None)


def test_workflow_get_and_workflow_cancel_name_a_workflow_and_get_lists_1000_steps_by_default():
    assert parse(request("workflow_get")) == m.WorkflowGet(1, "wf-1", 10)
    assert parse({"type": "workflow_get", "rid": 1, "workflow_id": "w"}) == m.WorkflowGet(
        1, "w", 1000
    )
    assert parse(request("workflow_get", limit=None)).limit == 1000  # type: ignore[union-attr]
    for limit in (0, 100_000):
        assert parse(request("workflow_get", limit=limit)).limit == limit  # type: ignore[union-attr]
    assert parse(request("workflow_cancel")) == m.WorkflowCancel(1, "wf-1")


A, B, C, D, E = ({"type": name} for name in "abcde")
COMPILED = [
    pytest.param(A, [("a", ())], id="one-step"),
    pytest.param({"chain": [A, B, C]}, [("a", ()), ("b", (0,)), ("c", (1,))], id="chain"),
    pytest.param({"group": [A, B]}, [("a", ()), ("b", ())], id="group"),
    pytest.param(
        {"group": [A, B, C], "callback": D},
        [("a", ()), ("b", ()), ("c", ()), ("d", (0, 1, 2))],
        id="group-callback",
    ),
    pytest.param({"group": [A], "callback": None}, [("a", ())], id="null-callback"),
    pytest.param(
        {"chain": [{"group": [A, B]}, {"group": [C, D]}, E]},
        [("a", ()), ("b", ()), ("c", (0, 1)), ("d", (0, 1)), ("e", (2, 3))],
        id="chain-of-groups",
    ),
    pytest.param(
        {"chain": [A, {"group": [{"chain": [B, C]}, D], "callback": E}]},
        [("a", ()), ("b", (0,)), ("c", (1,)), ("d", (0,)), ("e", (2, 3))],
        id="group-of-chains-after-a-step",
    ),
    pytest.param(
        {"group": [A, B], "callback": {"chain": [C, D]}},
        [("a", ()), ("b", ()), ("c", (0, 1)), ("d", (2,))],
        id="chain-as-callback",
    ),
    pytest.param(
        {"chain": [{"chain": [A]}, {"chain": [{"chain": [B]}]}]},
        [("a", ()), ("b", (0,))],
        id="chains-in-chains",
    ),
]


@pytest.mark.parametrize(("tree", "steps"), COMPILED)
def test_a_workflow_compiles_to_steps_each_after_the_steps_it_waits_for(tree, steps):
    compiled = compile_workflow(copy.deepcopy(tree), DEFAULT_LIMITS)
    assert [(step.spec.type, step.parents) for step in compiled] == steps
    assert all(parent < index for index, s in enumerate(compiled) for parent in s.parents)


def test_a_step_keeps_its_jobspec_and_pass_results_and_its_job_waits_for_its_parents_ids():
    step_spec = {k: v for k, v in copy.deepcopy(FULL_SPEC).items() if k != "unique_key"}
    tree = {"chain": [step_spec, {"type": "b", "pass_results": False}]}
    first, second = compile_workflow(tree, DEFAULT_LIMITS)
    assert first.spec == job_spec(copy.deepcopy(step_spec))
    assert (second.spec, second.parents, second.pass_results) == (jobspec.JobSpec("b"), (0,), False)
    spec = with_parents(second, ["j0", "j1"], "continue")
    assert spec.flow == jobspec.Flow(("j0",), "continue", pass_results=False, workflow=True)
    assert spec.flow.to_wire("wf-1") == {
        "depends_on": ["j0"],
        "on_failure": "continue",
        "pass_results": False,
        "workflow_id": "wf-1",
    }
    assert with_parents(first, ["j0", "j1"], "cancel").flow == jobspec.Flow((), workflow=True)


def test_a_step_may_carry_its_own_failure_policy_over_the_workflows():
    """Extension "Step policies": a callback that runs whatever its parents did, in a workflow
    whose other steps give up when a parent fails."""
    tree = {"group": [{"type": "a"}], "callback": {"group": [
        {"type": "always", "on_failure": "continue"}, {"type": "on_success"}]}}  # fmt: skip
    _, always, on_success = compile_workflow(tree, DEFAULT_LIMITS)
    assert always.on_failure == "continue" and on_success.on_failure is None
    assert with_parents(always, ["j0"], "cancel").flow.on_failure == "continue"
    assert with_parents(on_success, ["j0"], "cancel").flow.on_failure == "cancel"
    assert "on_failure" not in always.spec.meta


NOT_A_NODE = "a workflow node must be a map"
SETS_ITSELF = "a workflow sets {} itself, from the step's place"
REFUSED_WORKFLOWS = [
    (5, f"workflow: {NOT_A_NODE}"),
    ([A], f"workflow: {NOT_A_NODE}"),
    ("a", f"workflow: {NOT_A_NODE}"),
    ({"chain": [A, "b"]}, f"workflow.chain[1]: {NOT_A_NODE}"),
    ({"group": [A], "callback": 5}, f"workflow.callback: {NOT_A_NODE}"),
    ({"chain": []}, "workflow.chain must be a non-empty list of nodes"),
    ({"group": []}, "workflow.group must be a non-empty list of nodes"),
    ({"chain": A}, "workflow.chain must be a non-empty list of nodes"),
    ({"group": None}, "workflow.group must be a non-empty list of nodes"),
    ({"chain": [A, {"group": []}]}, "workflow.chain[1].group must be a non-empty list of nodes"),
    ({"chain": [A], "callback": B}, "workflow: a chain takes no 'callback'"),
    ({"chain": [A], "group": [B]}, "workflow: a chain takes no 'group'"),
    ({"chain": [A], "type": "a"}, "workflow: a chain takes no 'type'"),
    ({"group": [A], "then": B, "x": 1}, "workflow: a group takes no 'then', 'x'"),
    ({"group": [{"chain": [A], "queue": "q"}]}, "workflow.group[0]: a chain takes no 'queue'"),
    ({}, "workflow: missing field 'type'"),
    ({"group": [A], "callback": {"args": []}}, "workflow.callback: missing field 'type'"),
    (
        {"chain": [A, {"group": [{"type": "b", "priority": "high"}]}]},
        "workflow.chain[1].group[0]: field 'priority' must be an integer",
    ),
    (
        {"group": [A, {"type": "b", "concurrency_limit": 2}]},
        "workflow.group[1]: concurrency_limit and rate_limit need a concurrency_key",
    ),
    (
        {"chain": [A, {"type": "b", "depends_on": [JID]}]},
        "workflow.chain[1]: " + SETS_ITSELF.format("depends_on"),
    ),
    (
        {"group": [A], "callback": {"type": "c", "on_failure": "later"}},
        "workflow.callback.on_failure must be one of cancel, continue, only",
    ),
    *[
        (
            {"chain": [A, {"type": "b", "pass_results": bad}]},
            "workflow.chain[1].pass_results must be a boolean",
        )
        for bad in BOOL
    ],
]


@pytest.mark.parametrize(
    ("tree", "says"), REFUSED_WORKFLOWS, ids=[repr(tree)[:60] for tree, _ in REFUSED_WORKFLOWS]
)
def test_a_bad_workflow_node_is_refused_naming_its_place(tree, says):
    with pytest.raises(BadRequest) as refusal:
        parse(request("workflow", workflow=tree))
    assert refusal.value.message == says


STEPS_AT_MOST = "a workflow may have at most {} steps"
EDGES_AT_MOST = (
    "a workflow may have at most {} dependencies (a group followed by a group waits for every"
    " pair: put a callback between)"
)
WORKFLOW_LIMITS = [  # (tree, max_batch_jobs: steps at most twice it, max_list_items, refusal)
    pytest.param({"group": [A] * 4}, 2, 100, None, id="4-steps"),
    pytest.param({"group": [A] * 5}, 2, 100, ("workflow.group[4]", STEPS_AT_MOST, 4), id="5-steps"),
    pytest.param(
        {"chain": [A] * 5}, 2, 100, ("workflow.chain[4]", STEPS_AT_MOST, 4), id="5-chained"
    ),
    pytest.param(
        {"chain": [{"group": [A] * 3}, {"group": [B] * 3}]},
        100,
        8,
        ("workflow.chain[1].group[2]", EDGES_AT_MOST, 8),
        id="group-then-group-9-dependencies",
    ),
    pytest.param(
        {"chain": [{"group": [A] * 3, "callback": C}, {"group": [B] * 3}]},
        100,
        8,
        None,
        id="a-callback-between-6-dependencies",
    ),
]


@pytest.mark.parametrize(("tree", "batch", "items", "refusal"), WORKFLOW_LIMITS)
def test_a_workflow_has_at_most_twice_max_batch_jobs_steps_and_max_list_items_dependencies(
    tree, batch, items, refusal
):
    body = request("workflow", workflow=tree)
    limits = Limits(max_batch_jobs=batch, max_list_items=items)
    if refusal is None:
        assert parse(body, limits)
        return
    with pytest.raises(BadRequest) as refused:
        parse(body, limits)
    where, says, most = refusal
    assert refused.value.message == f"{where}: {says.format(most)}"


def test_a_workflow_step_may_not_carry_a_unique_key():
    """A duplicate would not be made, and the steps after it would wait for nothing."""
    with pytest.raises(BadRequest, match=r"workflow.chain\[0\]: a workflow step cannot carry"):
        parse(request("workflow", workflow={"chain": [{"type": "a", "unique_key": "u"}, B]}))


def test_a_schedules_job_may_not_wait_for_other_jobs():
    schedule = {"name": "s", "every": 60, "job": {"type": "t", "depends_on": ["j1"]}}
    with pytest.raises(BadRequest, match="cannot wait for other jobs"):
        parse(request("schedule_put", schedule=schedule))


@pytest.mark.parametrize(
    ("field", "value"), [("id", "019a0000-0000-7000-8000-000000000001"), ("expires_at", 1e9)]
)
def test_a_schedules_job_may_not_name_one_id_or_expiry_for_every_slot(field, value):
    """Its second slot would clash with the first job's id, or every slot would expire."""
    schedule = {"name": "s", "every": 60, "job": {"type": "t", field: value}}
    with pytest.raises(BadRequest, match=f"cannot .*'{field}'"):
        parse(request("schedule_put", schedule=schedule))


def test_a_workflow_step_over_max_job_size_is_too_large():
    tree = {"chain": [A, {"type": "b", "args": ["x" * 1000]}]}
    with pytest.raises(TooLarge, match="max_job_size 1000"):
        parse(request("workflow", workflow=tree), SMALL)


@pytest.mark.parametrize(
    ("kind", "fields", "says"),
    [
        ("workflow", {"workflow": None}, "missing field 'workflow'"),
        ("workflow", {"on_failure": "stop"}, ON_FAILURE),
        ("workflow", {"on_failure": 1}, "field 'on_failure' must be a string"),
        ("workflow", {"request_id": "r" * 65}, "field 'request_id' must have 1 to 64 characters"),
        ("workflow_get", {"workflow_id": None}, "missing field 'workflow_id'"),
        ("workflow_get", {"workflow_id": ""}, "field 'workflow_id' must have 1 to 64 characters"),
        ("workflow_get", {"workflow_id": 5}, "field 'workflow_id' must be a string"),
        ("workflow_get", {"limit": -1}, "field 'limit' must be >= 0"),
        ("workflow_get", {"limit": 100_001}, "field 'limit' must be at most 100000"),
        ("workflow_get", {"limit": 2**64 - 1}, "field 'limit' must be at most 100000"),
        ("workflow_get", {"limit": True}, "field 'limit' must be an integer"),
        ("workflow_get", {"limit": 10.0}, "field 'limit' must be an integer"),
        ("workflow_cancel", {"workflow_id": None}, "missing field 'workflow_id'"),
        ("workflow_cancel", {"workflow_id": "w" * 65}, "1 to 64 characters"),
        ("workflow_cancel", {"workflow_id": ["w"]}, "field 'workflow_id' must be a string"),
    ],
    ids=repr,
)
def test_a_bad_workflow_request_field_is_refused_naming_it(kind, fields, says):
    with pytest.raises(BadRequest) as refusal:
        parse(request(kind, **fields))
    assert says in refusal.value.message


def test_the_workflow_get_limit_is_at_most_max_list_items():
    with pytest.raises(BadRequest, match="at most 3"):
        parse(request("workflow_get", limit=4), Limits(max_list_items=3))
    assert parse(request("workflow_get", limit=3), Limits(max_list_items=3))


# -- rid and type ---------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [0, 17, 2**63, "", "abc", "r" * 64])
def test_a_valid_rid_is_carried_into_the_typed_message(rid):
    assert parse(request("ping", rid=rid)) == m.Ping(rid)


@pytest.mark.parametrize(
    "rid",
    [-1, True, False, 1.0, "r" * 65, b"rid", [1], {"r": 1}, None],
    ids=["negative", "true", "false", "float", "65-chars", "bin", "list", "map", "nil"],
)
def test_an_invalid_rid_raises_bad_request(rid):
    with pytest.raises(BadRequest):
        request_rid(request("ping", rid=rid))


def test_a_missing_rid_raises_bad_request():
    with pytest.raises(BadRequest):
        request_rid({"type": "ping"})


def test_an_invalid_rid_is_refused_even_when_the_type_is_unknown_too():
    with pytest.raises(BadRequest, match="rid"):
        request_rid({"type": "frobnicate", "rid": -1})


@pytest.mark.parametrize(
    "kind",
    ["frobnicate", "", "PING", "reply", "workerregistered", "pong", "error", 5, None, ["ping"]],
)
def test_an_unknown_or_mistyped_type_raises_bad_request(kind):
    with pytest.raises(BadRequest):
        request_type({"type": kind, "rid": 1})


def test_a_missing_type_raises_bad_request():
    with pytest.raises(BadRequest):
        request_type({"rid": 1})


def test_every_request_type_of_the_protocol_is_known_and_no_other():
    assert frozenset(FULL) == REQUEST_TYPES


# -- hello version --------------------------------------------------------------------------------


@pytest.mark.parametrize("version", [0, 2, 3, 100, -1])
def test_a_hello_with_a_version_other_than_1_raises_unsupported_version(version):
    with pytest.raises(UnsupportedVersion):
        parse(request("hello", v=version))


@pytest.mark.parametrize("version", ["1", True, [1], 1.5])
def test_a_hello_whose_version_is_not_the_int_1_is_refused(version):
    # "mistyped" (bad_request) and "not 1" (unsupported_version) both describe these.
    with pytest.raises((UnsupportedVersion, BadRequest)):
        parse(request("hello", v=version))


# -- sizes ----------------------------------------------------------------------------------------

SMALL = Limits(max_job_size=1000, max_result_size=1000)


def test_a_job_spec_over_max_job_size_raises_too_large():
    body = {"type": "enqueue", "rid": 1, "job": {"type": "t", "args": ["x" * 1000]}}
    with pytest.raises(TooLarge):
        parse(body, SMALL)


def test_a_job_spec_just_under_max_job_size_is_accepted():
    spec = {"type": "t", "args": ["x" * 980]}
    assert 990 <= len(codec.encode(spec)) <= 1000
    parse({"type": "enqueue", "rid": 1, "job": spec}, SMALL)


def test_a_batch_with_one_job_over_max_job_size_raises_too_large_naming_its_index():
    jobs = [{"type": "t"}, {"type": "t", "meta": {"blob": "x" * 1000}}]
    with pytest.raises(TooLarge, match=r"jobs\[1\]"):
        parse({"type": "enqueue", "rid": 1, "jobs": jobs}, SMALL)


def test_a_batch_whose_jobs_are_each_under_max_job_size_is_accepted_though_larger_in_total():
    jobs = [{"type": "t", "args": ["x" * 600]} for _ in range(3)]
    parsed = parse({"type": "enqueue", "rid": 1, "jobs": jobs}, SMALL)
    assert len(parsed.specs) == 3  # type: ignore[union-attr]


def test_an_ack_result_over_max_result_size_raises_too_large():
    with pytest.raises(TooLarge):
        parse(request("ack", result={"blob": "x" * 1000}), SMALL)


def test_an_ack_result_under_max_result_size_is_accepted():
    parsed = parse(request("ack", result={"blob": "x" * 900}), SMALL)
    assert parsed.result == {"blob": "x" * 900}  # type: ignore[union-attr]


def test_outcomes_parse_into_acks_and_fails_in_their_order():
    parsed = parse(request("outcomes"))
    assert parsed == m.Outcomes(
        1,
        WID,
        (
            m.JobOutcome(JID, 1, {"ok": True}),
            m.JobOutcome(JID, 2, error=m.ErrorInfo("ValueError", "bad", retryable=False)),
        ),
    )


def test_an_outcome_with_both_a_result_and_an_error_is_refused():
    body = request("outcomes")
    body["outcomes"][1]["result"] = 5
    with pytest.raises(BadRequest, match=r"outcomes\[1\]"):
        parse(body)


def test_an_outcome_over_max_result_size_is_refused_alone_not_the_frame():
    body = request("outcomes")
    body["outcomes"][0]["result"] = {"blob": "x" * 1000}
    parsed = parse(body, SMALL)
    assert parsed.outcomes[0] == m.JobOutcome(JID, 1, too_large=True)  # type: ignore[union-attr]
    assert parsed.outcomes[1].error is not None  # type: ignore[union-attr]


def test_outcomes_hold_at_most_max_batch_jobs_items():
    item = {"job_id": JID, "attempt": 1}
    with pytest.raises(BadRequest, match="at most 2"):
        parse(request("outcomes", outcomes=[item] * 3), Limits(max_batch_jobs=2))
    assert parse(request("outcomes", outcomes=[item] * 2), Limits(max_batch_jobs=2))


def test_the_default_job_and_result_limits_are_512_kib():
    assert DEFAULT_LIMITS.max_job_size == 512 * 1024
    assert DEFAULT_LIMITS.max_result_size == 512 * 1024


# -- batches --------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [0, 2, 4])
def test_one_bad_spec_rejects_the_whole_batch_with_its_index_in_the_message(index):
    jobs: list[Any] = [{"type": f"t{i}"} for i in range(5)]
    jobs[index] = {"type": "t", "priority": "high"}
    with pytest.raises(BadRequest, match=rf"jobs\[{index}\]"):
        parse({"type": "enqueue", "rid": 1, "jobs": jobs})


def test_a_batch_entry_that_is_not_a_map_rejects_the_batch_with_its_index():
    with pytest.raises(BadRequest, match=r"jobs\[1\]"):
        parse({"type": "enqueue", "rid": 1, "jobs": [{"type": "a"}, "b"]})


@pytest.mark.parametrize("jobs", [[], "x", {"type": "a"}, 5], ids=["empty", "str", "map", "int"])
def test_a_jobs_field_that_is_not_a_non_empty_list_raises_bad_request(jobs):
    with pytest.raises(BadRequest):
        parse({"type": "enqueue", "rid": 1, "jobs": jobs})


# -- nothing but the documented errors ------------------------------------------------------------

field_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.sampled_from(["running", "quiet", WID, JID, "q1"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=10,
)
FIELD_NAMES = sorted(
    {key for body in FULL.values() for key in body} | set(FULL_SPEC) | {"job", "jobs"}
)


@DETERMINISTIC
@given(
    st.sampled_from(sorted(REQUEST_TYPES)),
    st.dictionaries(st.sampled_from(FIELD_NAMES), field_values, max_size=8),
)
def test_any_fields_on_any_request_type_parse_or_raise_only_a_protocol_error(kind, fields):
    body = {**fields, "type": kind, "rid": 1}
    try:
        parsed = parse(body, SMALL)
    except (BadRequest, TooLarge, UnsupportedVersion):
        return
    assert parsed.rid == 1


@DETERMINISTIC
@given(st.sampled_from(sorted(FULL)), st.data())
def test_a_valid_request_with_one_field_replaced_by_garbage_parses_or_raises_bad_request(
    kind, data
):
    body = _base(kind)
    if kind != "ping" and kind != "stats":
        key = data.draw(st.sampled_from(sorted(body)))
        if key not in ("type", "rid"):
            body[key] = data.draw(field_values)
    with contextlib.suppress(BadRequest, UnsupportedVersion):
        parse(body)
