"""Malformed and mutated frames of every request type against a real coordinator (SECURITY.md).

The coordinator runs its real actors over the in-process network with a ManualClock, delivering
one frame at a time to quiescence, so each example is deterministic. Hypothesis builds a valid
frame of one request type, then mutates it (fields deleted, types swapped, huge numbers, deep
nesting, random keys, bytes truncated, appended or flipped, rids and types replaced). For each:

- exactly one answer arrives, of the right shape (`reply`, `pong`, `workerregistered` or an
  `error` with a wire code, never `internal`), with the rid echoed when it could be read. Only a
  `fetch` or `get` that the protocol holds may answer later, and a fetch does once its (capped)
  wait has run out.
- a frame the edge must refuse (the oracle: the same decode, header, role and field checks the
  dispatcher runs) gets that exact error code and changes no job and no worker; a frame that
  passes may only create the job or the worker its reply names.
- afterwards the coordinator still runs a job end to end for a fresh worker and client.

The same property runs with security off and with roles on (keys stand-ins on the in-process
transport), so `unauthorized` is fuzzed too.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from actors.base import Activity
from actors.clock import ManualClock
from nodes import Coordinator
from transport import codec, jobspec
from transport import messages as m
from transport.auth import SecuritySettings, permits
from transport.errors import WIRE_CODES, CorralError
from transport.inproc import InprocNetwork
from transport.validation import REQUEST_TYPES, parse_request, request_rid, request_type
from transport.validation.limits import Limits

ADDRESS = "inproc://fuzzed"
QUEUE = "fuzz"
PAUSABLE = ["fuzz-paused", "default"]
SCHEDULES = ["fuzz-schedule", "other"]
HEARTBEAT_TIMEOUT_S = 5.0
MAX_MESSAGE_SIZE = 16 * 1024
LIMITS = Limits(max_job_size=4 * 1024, max_result_size=4 * 1024, max_batch_jobs=8)
HELD_GET_CHECKED_S = 60.0  # a held get with a longer wait is not waited out
REPLY_TYPES = {"reply", "pong", "workerregistered"}
EXAMPLES = 150  # per harness in the default suite; the slow tier runs EXAMPLES_IN_FULL too
EXAMPLES_IN_FULL = 350
KINDS = sorted(REQUEST_TYPES)  # every type the coordinator knows, extensions included
# inproc stand-ins for CURVE User-Ids: each example's connection holds one of these
IDENTITIES = {
    "all": frozenset({"worker", "client", "admin"}),
    "worker": frozenset({"worker"}),
    "client": frozenset({"client"}),
    "admin": frozenset({"admin"}),
}
MUTATIONS = ["delete", "swap", "swap", "add", "rid", "type", "nest", "inflate", "impersonate"]
MUTATIONS += ["version", "deep"]
OTHER_WORKER = "01890000-0000-7000-8000-000000000000"  # a well-formed id never issued
DEEP = "\x00deep\x00"  # replaced, once packed, by lists nested 33 to 2,000 deep


# -- the harness ---------------------------------------------------------------------------------


@dataclass
class Harness:
    """One coordinator on a deterministic in-process network, and raw connections to it."""

    secured: bool
    clock: ManualClock = field(default_factory=ManualClock)
    activity: Activity = field(default_factory=Activity)
    network: InprocNetwork = field(default_factory=lambda: InprocNetwork(auto=False))
    inboxes: dict[bytes, list[dict[str, Any]]] = field(default_factory=dict)
    users: dict[bytes, str] = field(default_factory=dict)
    frames_sent: int = 0

    def start(self) -> Harness:
        server = self.network.bind(ADDRESS)
        security = None
        if self.secured:
            server.peer_user_id = self.users.get  # type: ignore[attr-defined]
            security = SecuritySettings(b"-" * 40, b"-" * 40, dict(IDENTITIES))
        self.coordinator = Coordinator(
            ADDRESS,
            transport=server,
            clock=self.clock,
            activity=self.activity,
            max_message_size=MAX_MESSAGE_SIZE,
            limits=LIMITS,
            security=security,
            heartbeat_timeout=HEARTBEAT_TIMEOUT_S,
            heartbeat_interval=1.0,
            max_queues=16,
        ).start()
        self.observer = self.connect("all")
        return self

    def connect(self, identity: str) -> Any:
        inbox: list[dict[str, Any]] = []

        def on_frame(frame: bytes) -> None:
            inbox.append(msgpack.unpackb(frame, raw=False))

        conn = self.network.connector(ADDRESS)(on_frame)
        self.inboxes[conn.peer] = inbox
        self.users[conn.peer] = identity
        return conn

    def settle(self) -> None:
        while True:
            assert self.activity.wait_idle(10.0), "an actor never went idle"
            if not self.network.deliver_one():
                return

    def advance(self, seconds: float) -> None:
        self.settle()
        self.clock.advance(seconds, between=self.settle)
        self.settle()

    def send(self, conn: Any, frame: bytes) -> list[dict[str, Any]]:
        """Send one frame, run to quiescence, return (and clear) what came back."""
        self.frames_sent += 1
        conn.send(frame)
        self.settle()
        inbox = self.inboxes[conn.peer]
        answers, inbox[:] = list(inbox), []
        return answers

    def request(self, conn: Any, kind: str, **fields: Any) -> dict[str, Any]:
        [answer] = self.send(conn, codec.encode({"type": kind, "rid": 1, **fields}))
        return answer

    def snapshot(self) -> tuple[Any, ...]:
        """Every job (id, state, attempt, owner, errors), every worker minus timestamps, the
        counts, and the store's settings (paused queues)."""
        store = self.coordinator.ctx.store  # type: ignore[union-attr]
        stats = self.request(self.observer, "stats")
        jobs = sorted(
            (job.id, job.state, job.attempt, job.worker_id, len(job.errors))
            for job in (entry.job(0) for entry in store.unfinished())
        )
        workers = sorted(
            (w["worker_id"], w["state"], tuple(w["queues"]), w["concurrency"], w["active"])
            for w in stats["workers"]
        )
        counts = sorted((q, tuple(sorted(c.items()))) for q, c in stats["queues"].items())
        settings = tuple(sorted(store.settings().items()))
        return tuple(jobs), tuple(workers), tuple(counts), settings

    def stop(self) -> None:
        self.coordinator.stop()
        self.network.close()


@pytest.fixture(scope="module", params=[False, True], ids=["open", "secured"])
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    made = Harness(secured=request.param).start()
    yield made
    assert made.network.callback_errors == 0, "the dispatcher raised on some frame"
    made.stop()


# -- valid frames and their mutations ------------------------------------------------------------

names = st.text(st.characters(codec="utf-8"), min_size=1, max_size=12)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.binary(max_size=20),
)
hostile = st.one_of(
    scalars,
    st.sampled_from([0, -1, 2**64 - 1, -(2**63), 1e308, -1e308, math.nan, math.inf, DEEP]),
    st.sampled_from(["", "x" * 257, "x" * (LIMITS.max_job_size + 10), "x" * MAX_MESSAGE_SIZE]),
    st.lists(scalars, max_size=5),
    st.dictionaries(st.text(max_size=5), scalars, max_size=4),
    st.dictionaries(st.integers(), scalars, min_size=1, max_size=2),
    st.lists(st.just("q"), min_size=300, max_size=300),
)


# The enqueue extension's request ids: a small pool, so later examples replay earlier requests,
# fresh text up to and past the 64-character limit, and values of the wrong type.
request_ids = st.one_of(
    st.sampled_from(["req-a", "req-b", "r" * 64]),
    st.text(st.characters(codec="utf-8"), min_size=0, max_size=70),
    st.sampled_from([5, 1.5, True, b"req", ["req"], {"r": 1}]),
)


# The limit extension's fields: valid ones, or any scalar (null, booleans, huge ints, NaN and
# infinities, text, binary); each is drawn alone, so a limit without its key comes up as well.
LIMIT_FIELDS = {
    "concurrency_key": st.one_of(names, scalars),
    "concurrency_limit": st.one_of(st.integers(1, 3), scalars),
    "rate_limit": st.one_of(
        st.fixed_dictionaries({"count": st.integers(1, 5), "per": st.floats(0.001, 3600)}),
        st.fixed_dictionaries({}, optional={"count": scalars, "per": scalars}),
        scalars,
    ),
}


# The expiry and run timeout extensions' fields: valid times (long past to far ahead of the
# ManualClock) and durations, or any scalar (null, booleans, NaN and infinities, 0, negatives).
DEADLINE_FIELDS = {
    "expires_at": st.one_of(st.floats(0, 4e9), scalars),
    "run_timeout": st.one_of(st.floats(0.001, 3600), scalars),
}


def uuid7(bits: int) -> str:
    """A UUID in version 7's layout from 128 random bits (uuid.UUID takes versions 1-5 only)."""
    bits = (bits & ~(0xF << 76) & ~(0x3 << 62)) | (0x7 << 76) | (0x2 << 62)
    return str(uuid.UUID(int=bits))


# A job id the client names (extension "Job ids"): a fresh UUIDv7, one of a few drawn again
# and again (so a later enqueue clashes with an earlier job: `duplicate_job`), or any scalar.
JOB_IDS = st.one_of(
    st.integers(0, 2**128 - 1).map(uuid7),
    st.sampled_from([f"019a0000-0000-7000-8000-00000000000{n}" for n in range(3)]),
    scalars,
)
# The retry policy with the linear backoff (extension "Linear backoff"), valid or any scalar
RETRIES = st.fixed_dictionaries(
    {},
    optional={
        "jitter": st.booleans(),
        "backoff": st.one_of(st.sampled_from(jobspec.BACKOFFS), scalars),
        "initial_interval": st.floats(0, 10),
    },
)
# A failure's error, sometimes asking to be requeued (extension "Requeue"), valid or not
ERRORS = st.fixed_dictionaries(
    {"type": names, "message": st.text(max_size=20)},
    optional={"retryable": st.booleans(), "requeue": st.one_of(st.booleans(), scalars)},
)


# The workflow extension's fields of a job spec: `depends_on` is drawn by the caller (ids of
# real jobs, unknown ones, any scalar), the policy fields valid or any scalar.
FLOW_FIELDS = {
    "on_failure": st.one_of(st.sampled_from(jobspec.ON_FAILURE), scalars),
    "pass_results": st.one_of(st.booleans(), scalars),
}


def job_specs(
    depends_on: st.SearchStrategy[Any] | None = None,
) -> st.SearchStrategy[dict[str, Any]]:
    flow = {} if depends_on is None else {"depends_on": depends_on, **FLOW_FIELDS}
    return st.fixed_dictionaries(
        {"type": names, "queue": st.just(QUEUE)},
        optional={
            "args": st.lists(scalars, max_size=4),
            "priority": st.integers(-10, 10),
            "max_attempts": st.integers(1, 5),
            "retry": RETRIES,
            "id": JOB_IDS,
            "route": st.dictionaries(names, names, max_size=2),
            "unique_key": names,
            "meta": st.dictionaries(names, scalars, max_size=2),
            "scheduled_at": st.floats(0, 2e9),
            **LIMIT_FIELDS,
            **DEADLINE_FIELDS,
            **flow,
        },
    )


def workflow_trees() -> st.SearchStrategy[Any]:
    """Chains, groups and callbacks of steps (job specs, some with `pass_results` or a policy
    of their own: extension "Step policies")."""
    own = {"pass_results": st.booleans(), "on_failure": FLOW_FIELDS["on_failure"]}
    steps = st.tuples(job_specs(), st.fixed_dictionaries({}, optional=own)).map(
        lambda pair: {**pair[0], **pair[1]}
    )
    return st.recursive(
        steps,
        lambda inner: st.one_of(
            st.fixed_dictionaries({"chain": st.lists(inner, min_size=1, max_size=3)}),
            st.fixed_dictionaries(
                {"group": st.lists(inner, min_size=1, max_size=3)}, optional={"callback": inner}
            ),
        ),
        max_leaves=6,
    )


def valid_body(kind: str, worker_id: str, job_id: str) -> st.SearchStrategy[dict[str, Any]]:
    """A frame body (without type and rid) the protocol accepts for this connection."""
    me, job = st.just(worker_id), st.sampled_from([job_id, "no-such-job"])
    parents = st.one_of(st.lists(job, min_size=1, max_size=3), st.lists(names, max_size=2), scalars)
    bodies: dict[str, st.SearchStrategy[dict[str, Any]]] = {
        "hello": st.fixed_dictionaries(
            {"v": st.just(1), "role": st.just("worker"), "hostname": names, "pid": st.integers(0)}
        ),
        "register": st.fixed_dictionaries(
            {"worker_id": me, "queues": st.just([QUEUE]), "hostname": names, "pid": st.just(1)},
            optional={
                "concurrency": st.integers(1, 4),
                "functions": st.lists(names, max_size=2),
                "labels": st.dictionaries(names, st.lists(names, min_size=1, max_size=2)),
                "name": names,  # the `name` extension
            },
        ),
        "beat": st.fixed_dictionaries(
            {
                "worker_id": me,
                "state": st.sampled_from(m.WORKER_STATES),
                "active_job_ids": st.lists(job, max_size=2),
            },
            optional={  # the `Progress` extension, valid or not
                "progress": st.dictionaries(
                    job,
                    st.fixed_dictionaries(
                        {"fraction": st.one_of(st.floats(-1, 2), st.just("half"))},
                        optional={"message": st.one_of(st.text(max_size=210), st.integers())},
                    ),
                    max_size=2,
                )
            },
        ),
        "fetch": st.fixed_dictionaries(
            {"worker_id": me, "count": st.integers(1, 3)},
            optional={"queues": st.just([QUEUE]), "wait": st.floats(0, 10)},
        ),
        "ack": st.fixed_dictionaries(
            {"worker_id": me, "job_id": job, "attempt": st.integers(1, 3)},
            optional={"result": scalars},
        ),
        "fail": st.fixed_dictionaries(
            {
                "worker_id": me,
                "job_id": job,
                "attempt": st.integers(1, 3),
                "error": ERRORS,
            }
        ),
        "outcomes": st.fixed_dictionaries(
            {
                "worker_id": me,
                "outcomes": st.lists(
                    st.one_of(
                        st.fixed_dictionaries(
                            {"job_id": job, "attempt": st.integers(1, 3)},
                            optional={"result": scalars},
                        ),
                        st.fixed_dictionaries(
                            {
                                "job_id": job,
                                "attempt": st.integers(1, 3),
                                "error": ERRORS,
                            }
                        ),
                    ),
                    min_size=1,
                    max_size=3,
                ),
            }
        ),
        "deregister": st.fixed_dictionaries({"worker_id": me}),
        "ping": st.fixed_dictionaries({}, optional={"identify": st.booleans()}),
        "enqueue": st.one_of(
            st.fixed_dictionaries(
                {"job": job_specs(parents)}, optional={"request_id": request_ids}
            ),
            st.fixed_dictionaries(
                {"jobs": st.lists(job_specs(parents), min_size=1, max_size=3)},
                optional={"request_id": request_ids},
            ),
        ),
        "get": st.fixed_dictionaries({"job_id": job}, optional={"wait": st.floats(0, 100)}),
        "cancel": st.fixed_dictionaries({"job_id": job}),
        "retry": st.fixed_dictionaries({"job_id": job}),
        # the harness's job never ends here: refused as not ended, or unknown_job
        "delete": st.fixed_dictionaries({"job_id": job}),
        "stats": st.fixed_dictionaries({}, optional={"series": st.booleans()}),
        "direct": st.fixed_dictionaries(
            {"worker_id": me, "state": st.sampled_from(m.WORKER_STATES)}
        ),
        # never QUEUE: the job run after the fuzzing must not find it paused
        "pause_queue": st.fixed_dictionaries({"queue": st.sampled_from(PAUSABLE)}),
        "resume_queue": st.fixed_dictionaries({"queue": st.sampled_from(PAUSABLE)}),
        "schedule_put": st.fixed_dictionaries(
            {
                "schedule": st.fixed_dictionaries(
                    {"name": st.sampled_from(SCHEDULES), "job": job_specs()},
                    optional={
                        "cron": st.sampled_from(["*/5 * * * *", "@hourly", "61 * * * *", ""]),
                        "every": st.floats(0, 1e6),
                        "timezone": st.sampled_from(["UTC", "Europe/Riga", "Nowhere/At_All"]),
                        "overlap": st.sampled_from(["skip", "allow", "sometimes"]),
                        "misfire": st.sampled_from(["once", "skip", "never"]),
                    },
                )
            }
        ),
        "schedule_remove": st.fixed_dictionaries({"name": st.sampled_from(SCHEDULES)}),
        "schedule_pause": st.fixed_dictionaries({"name": st.sampled_from(SCHEDULES)}),
        "schedule_resume": st.fixed_dictionaries({"name": st.sampled_from(SCHEDULES)}),
        # workflow ids are request ids: the enqueues' pool, so either may replay the other
        "workflow": st.fixed_dictionaries(
            {"workflow": workflow_trees()},
            optional={
                "on_failure": st.one_of(st.sampled_from(jobspec.ON_FAILURE), scalars),
                "request_id": request_ids,
            },
        ),
        "workflow_get": st.fixed_dictionaries(
            {"workflow_id": request_ids}, optional={"limit": st.one_of(st.integers(0), scalars)}
        ),
        "workflow_cancel": st.fixed_dictionaries({"workflow_id": request_ids}),
    }
    return bodies.get(kind, st.just({}))  # a newer type: its defaults, then mutations


@st.composite
def mutated_frame(draw: st.DrawFn, kind: str, worker_id: str, job_id: str) -> bytes:
    body: dict[Any, Any] = {
        "type": kind,
        "rid": draw(st.integers(0, 2**32)),
        **draw(valid_body(kind, worker_id, job_id)),
    }
    for _ in range(draw(st.integers(0, 3))):
        body = draw(mutation(body))
    deep = b"\x91" * draw(st.sampled_from([33, 600, 1000, 2000])) + draw(
        st.sampled_from([b"\xc0", b"\xd6\xff\x00\x00\x00\x00"])  # nil, or a timestamp
    )
    frame = pack(body, deep)
    for _ in range(draw(st.integers(0, 1))):
        frame = draw(byte_mutation(frame))
    return frame


@st.composite
def mutation(draw: st.DrawFn, body: dict[Any, Any]) -> dict[Any, Any]:
    body = dict(body)
    paths = [(key,) for key in body] + [
        (key, inner) for key, value in body.items() if isinstance(value, dict) for inner in value
    ]
    how = draw(st.sampled_from(MUTATIONS))
    if how == "inflate":  # around each size limit: just under, just over, far over
        size = draw(st.sampled_from([LIMITS.max_job_size, MAX_MESSAGE_SIZE, 2 * MAX_MESSAGE_SIZE]))
        body[draw(st.sampled_from(["pad", "result", "job", "hostname"]))] = "x" * (
            size + draw(st.integers(-64, 64))
        )
    elif how == "version":
        body["v"] = draw(st.sampled_from([0, 2, -1, "1", True, None, 2**64 - 1]))
    elif how == "impersonate":
        body["worker_id"] = draw(st.sampled_from([OTHER_WORKER, "", "x" * 300]))
    elif how == "rid":
        body["rid"] = draw(st.one_of(hostile, st.text(min_size=65, max_size=70)))
    elif how == "type":
        body["type"] = draw(st.one_of(hostile, st.sampled_from(KINDS)))
    elif how == "add":
        body[draw(st.one_of(names, st.integers()))] = draw(hostile)
    elif paths:
        path = draw(st.sampled_from(paths))
        target = body if len(path) == 1 else dict(body[path[0]])
        if len(path) == 2:
            body[path[0]] = target
        if how == "delete":
            del target[path[-1]]
        elif how == "swap":
            target[path[-1]] = draw(hostile)
        elif how == "deep":
            target[path[-1]] = DEEP
        else:  # nest: the value wrapped in a list or map a few times
            for _ in range(draw(st.integers(1, 40))):
                target[path[-1]] = (
                    [target[path[-1]]] if draw(st.booleans()) else {"n": target[path[-1]]}
                )
    return body


@st.composite
def byte_mutation(draw: st.DrawFn, frame: bytes) -> bytes:
    how = draw(st.sampled_from(["truncate", "append", "flip", "random", "ext"]))
    if how == "truncate":
        return frame[: draw(st.integers(0, max(0, len(frame) - 1)))]
    if how == "append":
        return frame + draw(st.binary(min_size=1, max_size=16))
    if how == "flip":
        at = draw(st.integers(0, len(frame) - 1))
        return frame[:at] + bytes([draw(st.integers(0, 255))]) + frame[at + 1 :]
    if how == "ext":  # a timestamp or another extension type as the value of a new key
        ext = draw(
            st.sampled_from([b"\xd6\xff\x00\x00\x00\x01", b"\xd4\x05\x00", b"\xc7\x01\x09a"])
        )
        return b"\x82\xa1z" + ext + frame[1:] if frame[:1] == b"\x81" else frame + ext
    return draw(st.binary(max_size=64))


def pack(body: dict[Any, Any], deep: bytes) -> bytes:
    """msgpack of `body`, with every DEEP marker replaced by the `deep` bytes."""
    try:
        frame = msgpack.packb(body, use_bin_type=True)
    except (OverflowError, ValueError):  # an int msgpack cannot carry: send it as garbage
        return b"\xc1" + repr(body).encode()[:64]
    return frame.replace(msgpack.packb(DEEP), deep)


# -- the oracle ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Expected:
    """What the edge decides before any actor sees the frame."""

    rid: Any  # None: the error must carry no rid
    refusal: str | None  # the error code the edge answers, or None if the frame passes
    request: m.Request | None = None


def expect(frame: bytes, roles: frozenset[str] | None, greeted: bool) -> Expected:
    rid = None
    try:
        if len(frame) > MAX_MESSAGE_SIZE:
            rid = codec.readable_rid(frame)
        body = codec.decode(frame, MAX_MESSAGE_SIZE, LIMITS.max_depth)
        rid = request_rid(body)
        kind = request_type(body)
        if not permits(roles, kind):
            return Expected(rid, "unauthorized")
        if kind in m.WORKER_REQUEST_TYPES and not greeted:
            return Expected(rid, "not_registered")
        return Expected(rid, None, parse_request(kind, rid, body, len(frame), LIMITS))
    except CorralError as exc:
        return Expected(rid, exc.code)


def held(request: m.Request | None) -> float | None:
    """How long the protocol may hold this request's reply (None: it answers at once)."""
    if isinstance(request, m.Fetch) and request.wait > 0:
        return min(request.wait, HEARTBEAT_TIMEOUT_S)
    if isinstance(request, m.Get) and request.wait > 0:
        return request.wait
    return None


def check_shape(answer: dict[str, Any], expected: Expected) -> None:
    assert answer.get("type") in REPLY_TYPES | {"error"}, answer
    if answer["type"] == "error":
        assert answer.get("code") in WIRE_CODES, answer
        assert answer["code"] != "internal", answer
        assert isinstance(answer.get("message"), str), answer
    if answer["type"] == "pong":  # `instance` only for `identify` (PROTOCOL.md Extensions)
        assert set(answer) <= {"type", "rid", "instance"}, answer
    if expected.rid is None:
        assert "rid" not in answer and answer.get("code") in ("bad_request", "too_large"), answer
    else:
        assert answer.get("rid") == expected.rid, (answer, expected)


# -- the property --------------------------------------------------------------------------------


FUZZED = settings(
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
)
DRAWS = {
    "kind": st.sampled_from(KINDS),
    "identity": st.sampled_from(["all", "all", "worker", "client", "admin"]),
    "greet": st.sampled_from([True, True, True, False]),
    "data": st.data(),
}


@settings(FUZZED, max_examples=EXAMPLES)
@given(**DRAWS)
def test_a_mutated_frame_gets_one_answer_of_the_right_shape_and_changes_only_what_it_may(
    harness: Harness, kind: str, identity: str, greet: bool, data: st.DataObject
) -> None:
    a_mutated_frame_gets_one_answer_and_changes_only_what_it_may(
        harness, kind, identity, greet, data
    )


@pytest.mark.slow  # the same property at full strength: EXAMPLES_IN_FULL frames per harness
@settings(FUZZED, max_examples=EXAMPLES_IN_FULL)
@given(**DRAWS)
def test_a_mutated_frame_gets_one_answer_of_the_right_shape_and_changes_only_what_it_may_in_full(
    harness: Harness, kind: str, identity: str, greet: bool, data: st.DataObject
) -> None:
    a_mutated_frame_gets_one_answer_and_changes_only_what_it_may(
        harness, kind, identity, greet, data
    )


def a_mutated_frame_gets_one_answer_and_changes_only_what_it_may(
    harness: Harness, kind: str, identity: str, greet: bool, data: st.DataObject
) -> None:
    if not harness.secured:
        identity = "all"
    roles = IDENTITIES[identity] if harness.secured else None
    conn = harness.connect(identity)
    greeted = greet and "worker" in IDENTITIES[identity]
    worker_id = "never-issued"
    if greeted:
        hello = harness.request(conn, "hello", v=1, role="worker", hostname="fuzz", pid=1)
        worker_id = hello["worker_id"]
        harness.request(conn, "register", worker_id=worker_id, queues=[QUEUE], hostname="h", pid=1)
    job_id = harness.request(harness.observer, "enqueue", job={"type": "t", "queue": QUEUE})[
        "job_id"
    ]
    frame = data.draw(mutated_frame(kind, worker_id, job_id), label="frame")
    expected = expect(frame, roles, greeted)
    before = harness.snapshot()

    answers = harness.send(conn, frame)
    wait = held(expected.request)
    if not answers and wait is not None and wait <= HELD_GET_CHECKED_S:
        harness.advance(wait + 0.01)
        answers = harness.inboxes[conn.peer][:]
        harness.inboxes[conn.peer].clear()

    if not answers:
        assert wait is not None, f"no answer to {frame!r} ({expected})"
    else:
        assert len(answers) == 1, answers
        check_shape(answers[0], expected)
    after = harness.snapshot()
    event(f"answer: {answers[0].get('code', answers[0]['type']) if answers else 'held'}")
    if expected.refusal is not None:
        assert answers and answers[0].get("code") == expected.refusal, (answers, expected)
        unchanged = (after[0], after[1], after[3]) == (before[0], before[1], before[3])
        assert unchanged, f"{frame!r} was refused yet changed state"
    else:
        created = {row[0] for row in after[0]} - {row[0] for row in before[0]}
        named = set(answers[0].get("job_ids", [answers[0].get("job_id")])) if answers else set()
        assert created <= named, f"jobs {created - named} appeared from {frame!r}"
        if answers and answers[0].get("replayed"):  # a request id seen before: nothing new
            assert isinstance(expected.request, m.Enqueue | m.WorkflowSubmit)
            assert expected.request.request_id
            assert not created, f"a replay of {frame!r} created {created}"
            event(f"{type(expected.request).__name__} replayed")
        workers = {row[0] for row in after[1]} - {row[0] for row in before[1]}
        assert workers <= {answers[0].get("worker_id")} if answers else not workers
    conn.close()


def test_after_the_fuzzing_the_coordinator_still_runs_a_job_end_to_end(harness: Harness) -> None:
    """Runs after the property on the same coordinator (module-scoped, in file order)."""
    worker, client = harness.connect("all"), harness.connect("all")
    worker_id = harness.request(worker, "hello", v=1, role="worker", hostname="h", pid=1)[
        "worker_id"
    ]
    only_mine = {"queues": [QUEUE], "functions": ["after-fuzzing"], "hostname": "h", "pid": 1}
    harness.request(worker, "register", worker_id=worker_id, **only_mine)
    spec = {"type": "after-fuzzing", "queue": QUEUE, "args": [3]}
    job_id = harness.request(client, "enqueue", job=spec)["job_id"]
    [job] = harness.request(worker, "fetch", worker_id=worker_id, count=1)["jobs"]
    assert job["id"] == job_id
    ack = harness.request(worker, "ack", worker_id=worker_id, job_id=job_id, attempt=1, result=9)
    assert ack["type"] == "reply"
    assert harness.request(client, "get", job_id=job_id)["job"]["result"] == 9
    assert all(mailbox.alive for mailbox in harness.coordinator._actors)
    assert harness.frames_sent > EXAMPLES


# -- what the fuzz campaign (bench/fuzz.py) found, pinned ----------------------------------------


@pytest.mark.parametrize("depth", [33, 600, 1000, 1023, 2000])
@pytest.mark.parametrize("tail", [b"\xc0", b"\xd6\xff\x00\x00\x00\x00"], ids=["nil", "timestamp"])
def test_lists_nested_past_max_depth_are_refused_with_bad_request_not_internal(
    harness: Harness, depth: int, tail: bytes
) -> None:
    """Up to 1,023 levels decode; walking them (the timestamp check) overflowed Python's stack
    and the frame got `internal`. Now nesting is bounded at decode time."""
    frame = msgpack.packb({"type": "ping", "rid": 5, "x": DEEP}).replace(
        msgpack.packb(DEEP), b"\x91" * depth + tail
    )
    with pytest.raises(CorralError) as refusal:
        codec.decode(frame, max_depth=LIMITS.max_depth)
    assert refusal.value.code == "bad_request"
    [answer] = harness.send(harness.connect("all"), frame)
    assert (answer["type"], answer["code"]) == ("error", "bad_request")


def test_a_timer_due_in_1e300_seconds_leaves_the_system_clock_running() -> None:
    """A client's `get` with wait=1e300 overflowed the clock thread's wait and killed it, and
    every timer of the coordinator with it (fetch waits, reaper ticks)."""
    import threading

    from actors.clock import SystemClock

    clock, fired = SystemClock(), threading.Event()
    clock.call_later(1e300, lambda: None)
    clock.call_later(0.01, fired.set)
    assert fired.wait(5.0)


def test_a_job_nested_as_deep_as_an_enqueue_may_be_is_still_delivered_and_read_back() -> None:
    """A fetch reply holds args one level deeper than the enqueue did, so peers decode replies
    with more room (codec.PEER_MAX_DEPTH) than the coordinator gives requests."""
    from nodes.cluster import Cluster

    nested: Any = 0
    for _ in range(LIMITS.max_depth - 3):  # frame, job and args take the first three levels
        nested = [nested]
    with Cluster(workers=1, handlers={"echo": lambda value: value}) as cluster:
        client = cluster.client()
        assert client.enqueue("echo", [nested]).result(timeout=10) == nested
