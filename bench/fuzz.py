"""Fuzz campaign: malformed and mutated frames from several peers at a coordinator process.

    .venv/bin/python bench/fuzz.py                      # 100,000 frames, 8 peers, no CURVE
    .venv/bin/python bench/fuzz.py --secure             # CURVE with roles, plus intruders
    .venv/bin/python bench/fuzz.py --frames 200000 --peers 12 --seed 7
    .venv/bin/python bench/fuzz.py --no-create          # no enqueue/hello: RSS must stay flat

Not part of the test suite (it takes a minute or two). A coordinator runs in its own process
on 127.0.0.1 (memory store, default limits, stderr captured). Each mutator peer is a DEALER on
its own thread: it says hello, registers, enqueues one job, then sends batches of frames of
every request type, valid ones mutated (fields deleted or swapped for hostile values, keys
added, rid and type replaced, values nested up to 2,000 deep, strings inflated past the size
limits, other peers' worker ids, bytes truncated, appended, flipped or replaced, msgpack
extension types). Job specs (of enqueues and schedules) sometimes carry the limit fields,
`concurrency_key`, `concurrency_limit` and `rate_limit`, `expires_at` and `run_timeout`, an
`id` of their own (fresh, one of a few that clash, malformed) and a `retry.backoff`, valid and
not (a `fail` sometimes asks to be requeued, and a workflow step may carry its own policy),
and `depends_on` (with `on_failure`, `pass_results`): real ids from earlier replies, unknown
ids, guesses at the id the job itself is about to get, ids of the wrong kind.
`workflow` requests carry random trees of chains, groups and callbacks, or hostile ones (nested
past `max_depth`, groups of 100,001 steps, a group after a group that makes 160,000
dependencies, steps with `depends_on`, wrong types); now and then a valid group of 5,000 steps.
`workflow_get` and `workflow_cancel` name workflows from earlier replies, or none. A bomber
peer sends frames over twice `max_message_size` (ZeroMQ drops them with the connection),
multi-frame messages and garbage. With `--secure`, peers hold keys with different roles and
two intruders (an unknown key, no CURVE) send valid frames.

The coordinator must survive all of it. The summary counts:
- crashes: the process died, stopped answering `ping`, logged a traceback, or cannot run a job
  end to end afterwards;
- internal: `internal` errors; malformed: answers that are not a reply/error of the protocol;
- missing: frames the edge answers at once (per the same checks the dispatcher runs) that got
  no answer; spoofed: a request with another peer's `worker_id` that was not refused;
  intruder: answers received by peers without an allowed key;
- state changes: jobs or workers in `stats` that no accepted request created (the jobs a
  schedule made are the schedule's: they go to a queue of their own and carry its name; a
  workflow's steps are named in its reply, as an enqueue's jobs are), net of the jobs a
  `delete` answered `deleted: true` for (extension "Delete": gone from `stats` for good);
- RSS of the coordinator (from /proc) after warm-up and at the end, and frames/s.
The last line is one JSON object; exit status 1 when any count that must be 0 is not.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import selectors
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgpack
import zmq
import zmq.auth

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from transport import codec, jobspec  # noqa: E402
from transport import messages as m  # noqa: E402
from transport.auth import permits  # noqa: E402
from transport.errors import WIRE_CODES, CorralError  # noqa: E402
from transport.validation import (  # noqa: E402
    REQUEST_TYPES,
    parse_request,
    request_rid,
    request_type,
)
from transport.validation.limits import Limits  # noqa: E402

KINDS = sorted(REQUEST_TYPES)
CREATING = ("enqueue", "hello", "workflow")  # the requests whose success adds state
QUEUE = "fuzz"
FLOW_QUEUE = "fuzz-flow"  # the steps of large workflows: no worker fetches them
WORKFLOW_IDS = ["fuzz-wf-a", "fuzz-wf-b"]  # request ids, so that workflows are replayed too
FLOW_KINDS = ("workflow", "workflow_get", "workflow_cancel")
KEPT_IDS = 32  # the job and workflow ids a peer remembers from its replies
SCHEDULED = "fuzz-scheduled"  # the schedules' jobs: the coordinator makes them, no reply names them
PAUSABLE = ["fuzz-paused", "default"]
CRONS = ["*/5 * * * *", "@hourly", "61 * * * *", "* * 31 2 *"]
# The limit fields of a job spec (PROTOCOL.md extension "Limits"): (valid values, refused ones).
# Each field is drawn alone, so a limit without its key (refused too) comes up as well.
LIMIT_FIELDS: dict[str, tuple[list[Any], list[Any]]] = {
    "concurrency_key": (["k1", "k2", "é" * 256, None], ["", "x" * 257, 5, True, ["k1"], {}]),
    "concurrency_limit": (
        [1, 2, 2**64 - 1, None],
        [0, -1, -(2**63), True, False, 1.5, math.nan, "2", [2]],
    ),
    "rate_limit": (
        [
            {"count": 1, "per": 60},
            {"count": 3, "per": 0.5},
            {"count": 2**64 - 1, "per": 5e-324},
            {"count": 1, "per": 1e308, "extra": 1},
            None,
        ],
        [
            {"count": 0, "per": 1},
            {"count": -1, "per": 1},
            {"count": True, "per": 1},
            {"count": 1.5, "per": 1},
            {"count": 1, "per": 0},
            {"count": 1, "per": -1.0},
            {"count": 1, "per": False},
            {"count": 1, "per": math.nan},
            {"count": 1, "per": math.inf},
            {"count": 1, "per": "1"},
            {"count": 1},
            {"per": 1},
            {},
            [1, 60],
            5,
            "1/s",
        ],
    ),
}
# The expiry and run timeout fields of a job spec (PROTOCOL.md extensions "Expiry" and "Run
# timeout"): (valid values, refused ones). An expires_at may be long past (discarded at once).
DEADLINE_FIELDS: dict[str, tuple[list[Any], list[Any]]] = {
    "expires_at": (
        [0, 1.5, 4e9, 1e308, -1e308, None],
        [True, math.nan, math.inf, -math.inf, "soon", [1], {}],
    ),
    "run_timeout": (
        [0.001, 1, 3600.0, 1e308, None],
        [0, -1, -0.5, True, math.nan, math.inf, "5", [5], {}],
    ),
}
# Job ids a client may name (extension "Job ids"): drawn again and again, so enqueues clash
NAMED_IDS = [f"019a0000-0000-7000-8000-00000000000{n}" for n in range(3)]
MAX_MESSAGE_SIZE = codec.MAX_MESSAGE_SIZE_BYTES
LIMITS = Limits()
BATCH = 64  # frames sent before a peer collects the answers
ANSWER_DEADLINE_S = 10.0
INTRUDER_WATCH_S = 2.0
START_TIMEOUT_S = 20.0
REPLY_TYPES = {"reply", "pong", "workerregistered"}
MAX_EXAMPLES = 10
ROLE_SETS = {  # secure mode: the key each mutator peer holds, round-robin
    "all": ["worker", "client", "admin"],
    "worker": ["worker"],
    "client": ["client"],
    "admin": ["admin"],
}
MUTATIONS = ("delete", "swap", "swap", "add", "rid", "type", "nest", "deep", "inflate")
MUTATIONS += ("impersonate", "version")
DEEP = "\x00deep\x00"
HOSTILE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63 - 1,
    2**64 - 1,
    -(2**63),
    1e308,
    -1e308,
    math.nan,
    math.inf,
    "",
    "x" * 300,
    b"\x00\xff",
    [],
    {},
    [1, "a", None],
    {"a": 1},
    {1: 2},
    ["q"] * 300,
    [[[[[]]]]],
    DEEP,
]


# -- the coordinator process ---------------------------------------------------------------------


def serve(bind: str, keys: str | None) -> None:
    """Child mode: run a coordinator until stdin closes; print READY <address>."""
    import logging

    from nodes import Coordinator
    from transport.auth import SecuritySettings

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    security = None
    if keys:
        directory = Path(keys)
        security = SecuritySettings.from_files(
            directory / "coordinator.key_secret",
            [(directory / f"{name}.key", roles) for name, roles in ROLE_SETS.items()],
        )
    coordinator = Coordinator(bind=bind, security=security).start()
    print(f"READY {coordinator.address}", flush=True)
    with contextlib.suppress(OSError):
        while os.read(sys.stdin.fileno(), 4096):
            pass
    coordinator.stop()


@dataclass
class CoordinatorProcess:
    process: subprocess.Popen[bytes]
    stderr_path: Path
    address: str = ""

    def rss_kib(self) -> int | None:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            return None
        return None

    def tracebacks(self) -> int:
        text = self.stderr_path.read_text(errors="replace")
        return text.count("Traceback") + text.count("Exception in thread")

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def start_coordinator(keys: str | None, work: Path) -> CoordinatorProcess:
    stderr_path = work / "coordinator.stderr"
    argv = [sys.executable, __file__, "--serve", "tcp://127.0.0.1:*"]
    if keys:
        argv += ["--keys", keys]
    process = subprocess.Popen(
        argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr_path.open("wb")
    )
    node = CoordinatorProcess(process, stderr_path)
    assert process.stdout is not None
    deadline = time.monotonic() + START_TIMEOUT_S
    buffer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while b"\n" not in buffer:
            if time.monotonic() > deadline or process.poll() is not None:
                node.stop()
                raise RuntimeError(f"coordinator did not start: {stderr_path.read_text()}")
            if selector.select(0.1):
                buffer += os.read(process.stdout.fileno(), 4096)
    node.address = buffer.split(b"\n")[0].removeprefix(b"READY ").decode().strip()
    return node


# -- frames --------------------------------------------------------------------------------------


def named_jobs(answer: dict[str, Any]) -> list[str]:
    """The job ids a reply names: an enqueue's (one job or a batch), or a workflow's steps."""
    made = answer.get("job_ids") or [answer.get("job_id")]
    return [job_id for job_id in made if isinstance(job_id, str)]


@dataclass
class Seen:
    """The last ids a peer's replies named: jobs to depend on, workflows to read and cancel."""

    jobs: list[str] = field(default_factory=list)
    workflows: list[str] = field(default_factory=lambda: list(WORKFLOW_IDS))

    def note(self, job_ids: list[str], workflow_id: Any) -> None:
        self.jobs = [*self.jobs, *job_ids][-KEPT_IDS:]
        if isinstance(workflow_id, str) and workflow_id not in self.workflows:
            self.workflows = [*self.workflows[1 - KEPT_IDS :], workflow_id]


def successor(job_id: str, step: int) -> str:
    """The UUIDv7 `step` after `job_id`: the ids of one millisecond count up from the last one,
    so this guesses the id the coordinator gives next (a job that depends on itself)."""
    try:
        return str(uuid.UUID(int=(uuid.UUID(job_id).int + step) % (1 << 128)))
    except ValueError:
        return job_id


class Mutator:
    """Valid frames of every request type, then mutated ones (seeded: a run replays)."""

    def __init__(
        self,
        rng: random.Random,
        worker_id: str,
        job_id: str,
        others: list[str],
        seen: Seen | None = None,
    ):
        self.rng = rng
        self.worker_id = worker_id
        self.job_id = job_id
        self.others = others  # every peer's worker id: impersonation targets
        self.seen = seen or Seen()

    def name(self) -> str:
        return self.rng.choice(["t", "a-b", "é", "x" * self.rng.randint(1, 40)])

    def spec(self) -> dict[str, Any]:
        """A JobSpec map of QUEUE, sometimes with the limit fields (valid or not)."""
        r = self.rng
        spec = {"type": self.name(), "queue": QUEUE, "args": [r.randint(0, 9), "s"]}
        if r.random() < 0.3:
            spec.update(priority=r.randint(-5, 5), unique_key=self.name(), meta={"k": 1})
        if r.random() < 0.3:  # the limit extension: each field present or not, valid or not
            for key, (valid, refused) in LIMIT_FIELDS.items():
                if r.random() < 0.7:
                    spec[key] = r.choice(valid if r.random() < 0.7 else refused)
        if r.random() < 0.2:  # expires_at and run_timeout: each present or not, valid or not
            for key, (valid, refused) in DEADLINE_FIELDS.items():
                if r.random() < 0.7:
                    spec[key] = r.choice(valid if r.random() < 0.7 else refused)
        if r.random() < 0.1:  # a job id of its own: fresh, one of a few (a clash), or bad
            fresh = (r.getrandbits(128) & ~(0xF << 76) & ~(0x3 << 62)) | (7 << 76) | (2 << 62)
            spec["id"] = r.choice([str(uuid.UUID(int=fresh)), *NAMED_IDS,
                                   "019A0000-0000-7000-8000-000000000001", 7, ""])
        if r.random() < 0.1:  # the linear backoff, valid or not
            spec["retry"] = {"backoff": r.choice([*jobspec.BACKOFFS, "cubic", 1, None])}
        return spec

    def parents(self) -> Any:
        """A `depends_on`: mostly ids of real jobs, else unknown, guessed or mistyped ones."""
        r = self.rng
        known = self.seen.jobs or [self.job_id]
        last = known[-1]
        return r.choice(
            [
                [r.choice(known)],
                r.sample(known, min(len(known), r.randint(1, 4))),
                [self.job_id, self.job_id],
                ["no-such-job"],
                [r.choice(known), "no-such-job"],
                [successor(last, r.randint(1, 3))],  # the job itself, if the guess is right
                [successor(last, 1), successor(last, 2)],
                [self.worker_id],  # an id, of another kind
                [r.choice(self.seen.workflows)],
                [],
                None,
                last,
                [""],
                ["x" * 257],
                [5],
                {last: 1},
            ]
        )

    def flow_fields(self) -> dict[str, Any]:
        """`depends_on`, `on_failure`, `pass_results`: each present or not, valid or not."""
        r = self.rng
        fields: dict[str, Any] = {"depends_on": self.parents()}
        if r.random() < 0.4:
            fields["on_failure"] = r.choice([*jobspec.ON_FAILURE, None, "stop", 1])
        if r.random() < 0.3:
            fields["pass_results"] = r.choice([True, False, None, 1, "no"])
        return {key: value for key, value in fields.items() if r.random() < 0.9}

    def workflow_tree(self, depth: int = 0) -> Any:
        """A random tree of chains, groups and callbacks over QUEUE's specs (valid or not)."""
        r = self.rng
        roll = r.random()
        if depth >= 3 or roll < 0.4:
            step = self.spec()
            step.pop("id", None)  # refused in a step: the tree would be refused whole
            if r.random() < 0.2:
                step["pass_results"] = r.choice([True, False])
            if r.random() < 0.2:  # a policy of its own (extension "Step policies")
                step["on_failure"] = r.choice(jobspec.ON_FAILURE)
            return step
        members = [self.workflow_tree(depth + 1) for _ in range(r.randint(1, 3))]
        if roll < 0.7:
            return {"chain": members}
        node: dict[str, Any] = {"group": members}
        if r.random() < 0.5:
            node["callback"] = self.workflow_tree(depth + 1)
        return node

    def hostile_workflow(self) -> Any:
        r = self.rng
        step: dict[str, Any] = {"type": "t"}  # 8 bytes: 100,001 of them fit in a frame
        how = r.randrange(10)
        if how == 0:  # nested chains: past max_depth from ~16 levels on
            tree: Any = step
            for _ in range(r.randint(5, 40)):
                tree = {"chain": [tree]}
            return tree
        if how == 1:  # over the step limit (refused), or now and then a valid group of 5,000
            if r.random() < 0.1:
                flow_step = {**step, "queue": FLOW_QUEUE}
                return {"group": [flow_step] * 5_000, "callback": flow_step}
            return {"group": [step] * (LIMITS.max_list_items + 1)}
        if how == 2:  # a group after a group: 400 x 400 = 160,000 dependencies
            return {"chain": [{"group": [step] * 400}, {"group": [step] * 400}]}
        if how == 3:
            return {**step, **self.flow_fields()}  # a step may not say what it waits for
        if how == 4:  # a step's own policy, of no known kind
            return {"group": [step], "callback": {**step, "on_failure": r.choice(HOSTILE)}}
        if how == 5:
            return {"chain": [step, {**step, "pass_results": r.choice(HOSTILE)}]}
        if how == 6:
            return r.choice(
                [{"chain": []}, {"group": []}, {"chain": {}}, {"group": [step], "chain": [step]}]
            )
        if how == 7:
            return {r.choice(["chain", "group"]): [step, r.choice(HOSTILE)], "then": step}
        if how == 8:
            return {"group": [step], "callback": r.choice(HOSTILE)}
        return r.choice(HOSTILE)

    def flow_body(self, kind: str) -> dict[str, Any]:
        """The workflow requests: real trees and hostile ones; reads and cancels of workflows
        from earlier replies, of one of the pooled request ids, or of none."""
        r = self.rng
        workflow_id = r.choice([*self.seen.workflows, "no-such-workflow", self.job_id])
        if kind == "workflow_get":
            return {"workflow_id": workflow_id, "limit": r.choice([0, 1, 10, 1000, 100_000])}
        if kind == "workflow_cancel":
            return {"workflow_id": workflow_id}
        body: dict[str, Any] = {
            "workflow": self.workflow_tree() if r.random() < 0.7 else self.hostile_workflow()
        }
        if r.random() < 0.5:
            body["on_failure"] = r.choice(
                [*jobspec.ON_FAILURE, *jobspec.ON_FAILURE, "stop", None, 0]
            )
        if r.random() < 0.4:
            body["request_id"] = r.choice(WORKFLOW_IDS)
        return body

    def valid(self, kind: str) -> dict[str, Any]:
        if kind in FLOW_KINDS:
            return self.flow_body(kind)
        r, me = self.rng, self.worker_id
        job = r.choice([self.job_id, "no-such-job"])
        spec = self.spec()
        if r.random() < 0.2:  # the workflow extension: a job that waits for others
            spec.update(self.flow_fields())
        return {
            "hello": {"v": 1, "role": "worker", "hostname": self.name(), "pid": r.randint(0, 99)},
            "register": {
                "worker_id": me,
                "queues": [QUEUE],
                "hostname": "h",
                "pid": 1,
                "name": self.name(),  # the `name` extension
            },
            "beat": {
                "worker_id": me,
                "state": "running",
                "active_job_ids": [job],
                # the `Progress` extension, sometimes out of range
                "progress": {job: {"fraction": r.choice([0.5, 1.0, 1.5]), "message": "m"}},
            },
            "fetch": {"worker_id": me, "count": r.randint(1, 3), "wait": r.choice([0, 0, 0.2])},
            "ack": {"worker_id": me, "job_id": job, "attempt": 1, "result": r.random()},
            "fail": {
                "worker_id": me,
                "job_id": job,
                "attempt": 1,
                # sometimes requeued at once (extension "Requeue"), valid or not
                "error": {"type": "E", "message": "m", "requeue": r.choice([False, True, "y"])}
                if r.random() < 0.3
                else {"type": "E", "message": "m"},
            },
            "outcomes": {
                "worker_id": me,
                "outcomes": [
                    {"job_id": job, "attempt": 1, "result": r.random()},
                    {"job_id": job, "attempt": 2, "error": {"type": "E", "message": "m"}},
                ],
            },
            "deregister": {"worker_id": me},
            "ping": {"identify": True} if r.random() < 0.5 else {},
            "enqueue": {"job": spec} if r.random() < 0.7 else {"jobs": [spec, dict(spec)]},
            "get": {"job_id": job, "wait": r.choice([0, 0, 0.1])},
            "cancel": {"job_id": "no-such-job"},  # the shared job stays for the others
            "retry": {"job_id": job},
            # jobs of earlier replies: most wait (refused), some ended and go (`deleted`)
            "delete": {"job_id": r.choice([*self.seen.jobs[-3:], "no-such-job"])},
            "stats": r.choice([{}, {"series": True}, {"series": False}]),
            "direct": {"worker_id": me, "state": r.choice(m.WORKER_STATES)},
            "pause_queue": {"queue": r.choice(PAUSABLE)},  # never QUEUE: jobs must still run
            "resume_queue": {"queue": r.choice(PAUSABLE)},
            "schedule_put": {
                "schedule": {
                    "name": r.choice(["fuzz-schedule", "other"]),
                    "job": {**spec, "queue": SCHEDULED},
                    **r.choice([{"every": r.choice([1, 60, 0.5])}, {"cron": r.choice(CRONS)}]),
                }
            },
            "schedule_remove": {"name": r.choice(["fuzz-schedule", "other"])},
            "schedule_pause": {"name": r.choice(["fuzz-schedule", "other"])},
            "schedule_resume": {"name": r.choice(["fuzz-schedule", "other"])},
        }.get(kind, {})  # a newer type: its defaults, then the mutations

    def frame(self, kind: str, rid: int) -> tuple[bytes, bool]:
        """(frame, impersonating): a frame of `kind`, mutated most of the time."""
        r = self.rng
        body: dict[Any, Any] = {"type": kind, "rid": rid, **self.valid(kind)}
        impersonating = False
        for _ in range(r.choice([0, 1, 1, 2, 3])):
            how = r.choice(MUTATIONS)
            if how == "impersonate" and "worker_id" in body and len(self.others) > 1:
                body["worker_id"] = r.choice([o for o in self.others if o != self.worker_id])
                impersonating = True
            else:
                body = self.mutate(body, how)
        deep = b"\x91" * r.choice([33, 600, 1000, 2000]) + r.choice([b"\xc0", b"\xd6\xff\0\0\0\0"])
        try:
            frame = msgpack.packb(body, use_bin_type=True).replace(msgpack.packb(DEEP), deep)
        except (OverflowError, ValueError):
            frame = b"\xc1garbage"
        if r.random() < 0.2:
            frame = self.mutate_bytes(frame)
        if len(frame) > 2 * MAX_MESSAGE_SIZE - 1024:  # two inflated fields: dropped by ZeroMQ
            frame = frame[: MAX_MESSAGE_SIZE * 3 // 2]  # with the connection; that is the bomber's
        spoofing = impersonating and str(body.get("type")) in m.WORKER_REQUEST_TYPES
        return frame, spoofing and "worker_id" in body

    def mutate(self, body: dict[Any, Any], how: str) -> dict[Any, Any]:
        r = self.rng
        body = dict(body)
        key = r.choice(list(body) or ["type"])
        if how == "delete":
            body.pop(key, None)
        elif how == "swap":
            body[key] = r.choice(HOSTILE)
        elif how == "add":
            added = r.choice(["z", "job", "jobs", "result", "queues", "labels", "wait", 7])
            body[r.choice([added, added, "workflow", "depends_on"])] = r.choice(HOSTILE)
        elif how == "rid":
            body["rid"] = r.choice([*HOSTILE, "r" * 65, "r" * 64])
        elif how == "type":
            body["type"] = r.choice(HOSTILE + KINDS)
        elif how == "nest":
            for _ in range(r.randint(1, 40)):
                body[key] = [body.get(key)] if r.random() < 0.5 else {"n": body.get(key)}
        elif how == "deep":
            body[key] = DEEP
        elif how == "inflate":  # rare: around each limit, never past 1.5x max_message_size
            if r.random() < 0.1:
                size = r.choice([LIMITS.max_job_size, MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE * 3 // 2])
                body[r.choice(["pad", "result", "job", "hostname"])] = "x" * (size - 40)
        elif how == "version":
            body["v"] = r.choice([0, 2, "1", True, None, 2**64 - 1])
        return body

    def mutate_bytes(self, frame: bytes) -> bytes:
        r = self.rng
        how = r.choice(["truncate", "append", "flip", "random", "ext"])
        if how == "truncate":
            return frame[: r.randrange(max(1, len(frame)))]
        if how == "append":
            return frame + r.randbytes(r.randint(1, 16))
        if how == "flip":
            at = r.randrange(len(frame))
            return frame[:at] + bytes([r.randrange(256)]) + frame[at + 1 :]
        if how == "ext":
            return frame + r.choice([b"\xd6\xff\0\0\0\1", b"\xd4\x05\0", b"\xc7\x01\x09a"])
        return r.randbytes(r.randint(0, 64))


def expected(frame: bytes, roles: frozenset[str] | None) -> tuple[bool, Any]:
    """(answered at once?, the rid the answer carries or None), by the dispatcher's checks."""
    rid = None
    try:
        if len(frame) > MAX_MESSAGE_SIZE:
            rid = codec.readable_rid(frame)
        body = codec.decode(frame, MAX_MESSAGE_SIZE, LIMITS.max_depth)
        rid = request_rid(body)
        kind = request_type(body)
        if not permits(roles, kind):
            return True, rid
        request = parse_request(kind, rid, body, len(frame), LIMITS)
    except (CorralError, RecursionError):  # refused at once (or, unfixed, `internal`)
        return True, rid
    return not (isinstance(request, m.Fetch | m.Get) and request.wait > 0), rid


# -- peers ---------------------------------------------------------------------------------------


@dataclass
class Tally:
    sent: int = 0
    answers: int = 0
    missing: int = 0
    malformed: int = 0
    internal: int = 0
    spoofed: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first few frames that failed
    job_ids: set[str] = field(default_factory=set)
    worker_ids: set[str] = field(default_factory=set)
    deleted: int = 0  # jobs a `delete` forgot (extension "Delete"): no longer in `stats`

    def add(self, other: Tally) -> None:
        for name in ("sent", "answers", "missing", "malformed", "internal", "spoofed", "deleted"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.codes.update(other.codes)
        self.examples += other.examples
        self.job_ids |= other.job_ids
        self.worker_ids |= other.worker_ids


def dealer(context: zmq.Context[Any], address: str, keys: Path | None, name: str | None) -> Any:
    sock = context.socket(zmq.DEALER)
    sock.linger = 0
    if keys is not None and name is not None:
        public, secret = zmq.auth.load_certificate(keys / f"{name}.key_secret")
        sock.curve_publickey, sock.curve_secretkey = public, secret
        sock.curve_serverkey = zmq.auth.load_certificate(keys / "coordinator.key")[0]
    sock.connect(address)
    return sock


class Peer(threading.Thread):
    """One mutator DEALER; the socket is used only on this thread."""

    def __init__(
        self, index: int, address: str, keys: Path | None, frames: int, seed: int, kinds: list[str]
    ):
        super().__init__(name=f"fuzz-peer-{index}", daemon=True)
        self.kinds = kinds
        self.index, self.address, self.keys, self.frames = index, address, keys, frames
        self.rng = random.Random(seed * 1000 + index)
        self.role_name = list(ROLE_SETS)[index % len(ROLE_SETS)] if keys else "all"
        self.roles = frozenset(ROLE_SETS[self.role_name]) if keys else None
        self.tally = Tally()
        self.ready = threading.Event()
        self.go = threading.Event()
        self.others: list[str] = []
        self.worker_id = "never-issued"
        self.awaiting: Counter[Any] = Counter()  # rid -> answers due at once (None: no rid)
        self.frames_of: dict[Any, bytes] = {}  # rid -> the last frame sent with it
        self.spoofs: set[Any] = set()  # rids of frames sent with another peer's worker_id
        self.seen = Seen()  # ids from this peer's replies, for the mutator to name
        self.error: BaseException | None = None  # a bug of this script, reported, never hidden
        self.rid = 0

    def run(self) -> None:
        context: zmq.Context[Any] = zmq.Context()
        self.sock = dealer(context, self.address, self.keys, self.role_name if self.keys else None)
        try:
            self._run()
        except BaseException as exc:
            self.error = exc
            self.ready.set()
            raise
        finally:
            self.sock.close(0)
            context.term()

    def _run(self) -> None:
        self.setup()
        self.ready.set()
        self.go.wait()
        mutator = Mutator(self.rng, self.worker_id, self.job_id, self.others, self.seen)
        while self.tally.sent < self.frames:
            for _ in range(min(BATCH, self.frames - self.tally.sent)):
                # random 62-bit rids: a flipped or truncated byte never lands on another
                # pending rid, so every answer is judged against its own frame
                self.rid = self.rng.getrandbits(62)
                kind = self.rng.choice(self.kinds)
                frame, impersonating = mutator.frame(kind, self.rid)
                at_once, rid = expected(frame, self.roles)
                if at_once:
                    self.awaiting[rid] += 1
                    self.frames_of[rid] = frame
                if impersonating:
                    self.spoofs.add(self.rid)
                self.sock.send(frame)
                self.tally.sent += 1
            self.collect()
        self.collect(linger=1.0)

    def setup(self) -> None:
        """A session and a job of our own, when our key allows (ids feed the mutator)."""
        self.job_id = "no-such-job"
        if self.roles is None or "worker" in self.roles:
            answer = self.call(
                {"type": "hello", "v": 1, "role": "worker", "hostname": "f", "pid": 1}
            )
            self.worker_id = answer["worker_id"]
            self.tally.worker_ids.add(self.worker_id)
            self.call({"type": "register", "worker_id": self.worker_id, "queues": [QUEUE],
                       "hostname": "f", "pid": 1})  # fmt: skip
        if self.roles is None or "client" in self.roles:
            spec = {"type": "t", "queue": QUEUE}
            self.job_id = self.call({"type": "enqueue", "job": spec})["job_id"]
            self.tally.job_ids.add(self.job_id)

    def call(self, body: dict[str, Any]) -> dict[str, Any]:
        self.rid += 1
        self.sock.send(msgpack.packb({**body, "rid": self.rid}))
        if not self.sock.poll(int(ANSWER_DEADLINE_S * 1000)):
            raise RuntimeError(f"peer {self.index}: no answer to setup {body['type']}")
        answer = msgpack.unpackb(self.sock.recv(), raw=False)
        assert answer.get("type") != "error", answer
        return answer

    def collect(self, linger: float = 0.0) -> None:
        """Read answers until every one due at once arrived (held ones may come later) or the
        deadline; then, with `linger`, whatever else arrives within it."""
        deadline = time.monotonic() + ANSWER_DEADLINE_S
        while True:
            due = any(self.awaiting.values())
            left = (deadline - time.monotonic()) if due else linger
            if left <= 0 or not self.sock.poll(int(left * 1000)):
                break
            self.judge(self.sock.recv_multipart())
        for rid, count in self.awaiting.items():
            if count > 0:
                self.tally.missing += count
                self.note("missing", [self.frames_of.get(rid, b"")])
        self.awaiting.clear()
        self.frames_of.clear()

    def note(self, what: str, frames: list[bytes], answer: Any = None) -> None:
        if len(self.tally.examples) < MAX_EXAMPLES:
            self.tally.examples += [f"{what}: {frame[:300]!r} -> {answer!r}" for frame in frames]

    def judge(self, parts: list[bytes]) -> None:
        t = self.tally
        t.answers += 1
        try:
            [frame] = parts
            answer = msgpack.unpackb(frame, raw=False)
            kind = answer["type"]
        except Exception:
            t.malformed += 1
            return
        if kind not in REPLY_TYPES | {"error"}:
            t.malformed += 1
            return
        code = answer.get("code", kind)
        if kind == "error" and code not in WIRE_CODES:
            t.malformed += 1
        t.codes[code] += 1
        t.internal += code == "internal"
        rid = answer.get("rid")
        if self.awaiting[rid] > 0:
            self.awaiting[rid] -= 1
        frame = self.frames_of.get(rid, b"")
        if rid in self.spoofs and kind != "error":
            t.spoofed += 1
            self.note("spoofed", [frame], answer)
        if code == "internal":
            self.note("internal", [frame], answer)
        if kind == "workerregistered":
            t.worker_ids.add(answer["worker_id"])
        elif kind == "reply":
            t.deleted += answer.get("deleted") is True
            made = named_jobs(answer)
            t.job_ids.update(made)
            self.seen.note(made, answer.get("workflow_id"))


class Bomber(threading.Thread):
    """Frames ZeroMQ must drop (over 2x max_message_size) or the edge must refuse whole."""

    def __init__(self, address: str, keys: Path | None, frames: int, seed: int) -> None:
        super().__init__(name="fuzz-bomber", daemon=True)
        self.address, self.keys, self.frames = address, keys, frames
        self.rng = random.Random(seed)
        self.sent = self.answers = self.malformed = 0

    def run(self) -> None:
        context: zmq.Context[Any] = zmq.Context()
        sock = dealer(context, self.address, self.keys, "all" if self.keys else None)
        big = b"\x81\xa3pad\xdb" + (2 * MAX_MESSAGE_SIZE + 16).to_bytes(4, "big")
        try:
            while self.sent < self.frames:
                how = self.rng.choice(["oversize", "multi", "multi", "empty", "garbage"])
                if how == "oversize":
                    sock.send(big + b"x" * (2 * MAX_MESSAGE_SIZE + 16))
                elif how == "multi":
                    sock.send_multipart([msgpack.packb({"type": "ping", "rid": 1})] * 2)
                elif how == "empty":
                    sock.send(b"")
                else:
                    sock.send(self.rng.randbytes(self.rng.randint(1, 256)))
                self.sent += 1
                self.drain(sock, 0 if self.sent % 16 else 200)
            self.drain(sock, 1000)
        finally:
            sock.close(0)
            context.term()

    def drain(self, sock: Any, wait_ms: int) -> None:
        while sock.poll(wait_ms):
            self.answers += 1
            self.malformed += len(sock.recv_multipart()) != 1


def intruders(address: str, keys: Path) -> int:
    """Valid frames from an unknown key and from a peer without CURVE; returns answers seen."""
    context: zmq.Context[Any] = zmq.Context()
    socks = [dealer(context, address, keys, "stranger"), dealer(context, address, None, None)]
    try:
        for sock in socks:
            for rid, body in enumerate(
                [{"type": "ping"}, {"type": "stats"}, {"type": "enqueue", "job": {"type": "t"}}]
            ):
                sock.send(msgpack.packb({**body, "rid": rid}))
        deadline = time.monotonic() + INTRUDER_WATCH_S
        return sum(
            1 for sock in socks if sock.poll(max(0, int((deadline - time.monotonic()) * 1000)))
        )
    finally:
        for sock in socks:
            sock.close(0)
        context.term()


# -- the campaign --------------------------------------------------------------------------------


def observe(address: str, keys: Path | None) -> dict[str, Any]:
    """The `stats` view, plus `unscheduled`: jobs in the schedules' queue that name none."""
    from nodes import Client
    from transport.auth import client_curve

    curve = client_curve(keys / "all.key_secret", keys / "coordinator.key") if keys else None
    with Client(address, curve=curve, timeout=10) as client:
        client.ping()
        listed = client.request("jobs", queue=SCHEDULED, limit=1000)["jobs"]
        unscheduled = sum(1 for job in listed if "schedule" not in job.get("meta", {}))
        return {**client.stats(), "unscheduled": unscheduled}


def still_runs_a_job(address: str, keys: Path | None) -> bool:
    from nodes import Client, WorkerNode
    from transport.auth import client_curve

    curve = client_curve(keys / "all.key_secret", keys / "coordinator.key") if keys else None
    worker = WorkerNode(
        address, queues=["after-fuzz"], curve=curve, handlers={"sq": lambda x: x * x}
    )
    worker.start()
    try:
        with Client(address, curve=curve, timeout=10) as client:
            return client.enqueue("sq", [12], queue="after-fuzz").result(timeout=20) == 144
    except Exception as exc:
        print(f"end-to-end job failed: {exc!r}", file=sys.stderr)
        return False
    finally:
        worker.kill()


def campaign(frames: int, peers: int, seed: int, secure: bool, kinds: list[str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="corral-fuzz-") as tmp:
        work = Path(tmp)
        keys = None
        if secure:
            keys = work / "keys"
            keys.mkdir()
            for name in ["coordinator", "stranger", *ROLE_SETS]:
                zmq.auth.create_certificates(keys, name)
        node = start_coordinator(str(keys) if keys else None, work)
        try:
            return run(node, frames, peers, seed, keys, kinds)
        finally:
            node.stop()


def run(
    node: CoordinatorProcess, frames: int, peers: int, seed: int, keys: Path | None, kinds: list
) -> dict[str, Any]:
    bomber_frames = max(1, frames // 100)
    share = (frames - bomber_frames) // peers
    mutators = [Peer(i, node.address, keys, share, seed, kinds) for i in range(peers)]
    for peer in mutators:
        peer.start()
    for peer in mutators:
        if not peer.ready.wait(START_TIMEOUT_S) or peer.error is not None:
            raise RuntimeError(f"{peer.name} did not set up: {peer.error!r}")
    worker_ids = [p.worker_id for p in mutators if p.worker_id != "never-issued"]
    for peer in mutators:
        peer.others = worker_ids
    rss_start = node.rss_kib()
    bomber = Bomber(node.address, keys, bomber_frames, seed)
    started = time.perf_counter()
    bomber.start()
    for peer in mutators:
        peer.go.set()
    rss_samples = []
    while any(p.is_alive() for p in mutators):
        time.sleep(1.0)
        rss_samples.append(node.rss_kib())
    bomber.join(60)
    elapsed = time.perf_counter() - started
    tally = Tally()
    for peer in mutators:
        if peer.error is not None:
            raise RuntimeError(f"{peer.name} failed: {peer.error!r}")
        tally.add(peer.tally)
    intruder_answers = intruders(node.address, keys) if keys else 0
    alive = node.process.poll() is None
    stats = (
        observe(node.address, keys) if alive else {"queues": {}, "workers": [], "unscheduled": 0}
    )
    jobs_in = {queue: sum(counts.values()) for queue, counts in stats["queues"].items()}
    scheduled = jobs_in.pop(SCHEDULED, 0)  # each checked by its meta instead (observe)
    unexplained_jobs = (
        sum(jobs_in.values()) - len(tally.job_ids) + tally.deleted + stats["unscheduled"]
    )
    workers_in_stats = {w["worker_id"] for w in stats["workers"]}
    served = alive and still_runs_a_job(node.address, keys)
    rss_end = node.rss_kib()
    warm = [s for s in rss_samples if s is not None]
    rss_warm = warm[len(warm) // 10] if warm else rss_start
    return {
        "frames": tally.sent + bomber.sent,
        "peers": peers,
        "secure": keys is not None,
        "seconds": round(elapsed, 1),
        "frames_per_s": round((tally.sent + bomber.sent) / elapsed),
        "crashes": int(not alive) + int(not served) + node.tracebacks(),
        "internal": tally.internal,
        "malformed": tally.malformed + bomber.malformed,
        "missing": tally.missing,
        "spoofed": tally.spoofed,
        "intruder_answers": intruder_answers,
        "unexplained_jobs": unexplained_jobs,
        "unexplained_workers": len(workers_in_stats - tally.worker_ids),
        "jobs_created": len(tally.job_ids),
        "jobs_scheduled": scheduled,
        "jobs_deleted": tally.deleted,
        "rss_start_mib": round((rss_start or 0) / 1024, 1),
        "rss_warm_mib": round((rss_warm or 0) / 1024, 1),
        "rss_end_mib": round((rss_end or 0) / 1024, 1),
        "answers": dict(tally.codes.most_common()),
        "bomber_answers": bomber.answers,
        "examples": tally.examples,
        "coordinator_log": log_summary(node.stderr_path),
    }


def log_summary(path: Path) -> dict[str, int]:
    """The coordinator's log lines, grouped by their first 60 characters, with counts."""
    lines = path.read_text(errors="replace").splitlines()
    return dict(Counter(line[:60] for line in lines).most_common(12))


MUST_BE_ZERO = (
    "crashes",
    "internal",
    "malformed",
    "missing",
    "spoofed",
    "intruder_answers",
    "unexplained_jobs",
    "unexplained_workers",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=100_000)
    parser.add_argument("--peers", type=int, default=8)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--secure", action="store_true", help="CURVE with roles, and intruders")
    parser.add_argument(
        "--no-create",
        action="store_true",
        help="no enqueue or hello frames (mutations may still make a few): RSS must stay flat",
    )
    parser.add_argument("--serve", metavar="BIND", help=argparse.SUPPRESS)
    parser.add_argument("--keys", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.keys)
        return 0
    kinds = [kind for kind in KINDS if not (args.no_create and kind in CREATING)]
    result = campaign(args.frames, args.peers, args.seed, args.secure, kinds)
    bad = {name: result[name] for name in MUST_BE_ZERO if result[name]}
    print(
        f"fuzz: {result['frames']:,} frames from {result['peers']} peers"
        f"{' (CURVE)' if result['secure'] else ''} in {result['seconds']} s "
        f"({result['frames_per_s']:,}/s): crashes {result['crashes']}, internal "
        f"{result['internal']}, malformed {result['malformed']}, missing {result['missing']}, "
        f"spoofed {result['spoofed']}, intruder answers {result['intruder_answers']}, "
        f"state changes {result['unexplained_jobs'] + result['unexplained_workers']}; "
        f"RSS {result['rss_start_mib']} -> {result['rss_warm_mib']} (warm) -> "
        f"{result['rss_end_mib']} MiB with {result['jobs_created']} jobs created "
        f"(and {result['jobs_scheduled']} by schedules)"
    )
    print(json.dumps(result))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
