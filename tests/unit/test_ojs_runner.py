"""The OJS conformance runner (tests/ojs): JSONPath, matchers, templates, assertions, the
vendored case files, and whole cases played against a tiny in-process HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.ojs.assertions import Response, check_cross_step, check_response, same_json
from tests.ojs.jsonpath import MISSING, PathError, resolve_path
from tests.ojs.matchers import match, substitute, substitute_value
from tests.ojs.runner import SUITE_DIR, describe, load_case, load_cases, main, run_case

DOC = {
    "job": {"id": "j1", "args": [[1, 2], {"k": "v"}], "meta": {"ojs.x": 7}, "error": None},
    "jobs": [{"id": "a", "state": "active"}, {"id": "b", "state": "done", "n": 2}],
}


# --- JSONPath --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("$", DOC),
        ("$.job.id", "j1"),
        ("$.job.args[0][1]", 2),
        ("$.job.args[1].k", "v"),
        ("$.jobs[*].id", ["a", "b"]),
        ("$.jobs[*].n", [2]),
        ("$.jobs[?(@.id=='b')].state", "done"),
        ('$.jobs[?(@.n==2)]["id"]', "b"),
        ('$.job.meta["ojs.x"]', 7),
        ("$.job.meta['ojs.x']", 7),
        ("job.id", "j1"),
        ("$.job.nope", MISSING),
        ("$.job.nope.deeper", MISSING),
        ("$.job.error", None),
        ("$.jobs[?(@.id=='zz')]", MISSING),
    ],
)
def test_resolve_path(path: str, expected: Any) -> None:
    assert resolve_path(path, DOC) == expected


@pytest.mark.parametrize("path", ["$.jobs[5]", "$.job.id.x", "$.job[0]", "$.jobs[x]", "$.a[0"])
def test_resolve_path_errors(path: str) -> None:
    with pytest.raises(PathError):
        resolve_path(path, DOC)


# --- matchers --------------------------------------------------------------------------------

UUID7 = "019539a4-aaaa-7000-8000-111111111111"


@pytest.mark.parametrize(
    ("matcher", "actual", "passes"),
    [
        ("any", MISSING, True),
        ("exists", 0, True),
        ("exists", None, False),
        ("absent", MISSING, True),
        ("absent", None, True),
        ("absent", 1, False),
        ("string:nonempty", "x", True),
        ("string:non_empty", "", False),
        ("string:uuid", "550e8400-e29b-41d4-a716-446655440000", True),
        ("string:uuidv7", UUID7, True),
        ("string:uuidv7", UUID7.upper(), False),
        ("string:uuidv7", UUID7 + "\n", False),
        ("string:datetime", "2026-02-12T10:30:00.000Z", True),
        ("string:datetime", "2026-02-12 10:30:00", False),
        ("string:contains:max", "bad max_attempts", True),
        ("string:pattern(^test\\.)", "test.echo", True),
        ("number:positive", 1, True),
        ("number:non_negative", -1, False),
        ("number:range(400,422)", 409, True),
        ("number:range(400,422)", 500, False),
        ("~1000", 1400, True),
        ("~1000", 1600, False),
        ("array:empty", [], True),
        ("array:nonempty", [], False),
        ("array:length:2", [1, 2], True),
        ("array:length(0)", [1], False),
        ("array:min_length:2", [1, 2, 3], True),
        ("array:min:2", [1], False),
        ("contains:b", ["a", "b"], True),
        ("contains:42", [42.0], True),
        ("not_contains:b", ["a", "b"], False),
        ("not_contains:b", [], True),
        ("available", "available", True),
        ("available", "active", False),
        (1, 1.0, True),
        (1, True, False),
        (3.14, 3.14, True),
        (True, True, True),
        (True, 1, False),
        (None, MISSING, True),
        ([], [], True),
        ([1, "string:nonempty"], [1, "x"], True),
        ([1], [1, 2], False),
        ({"$exists": True, "$type": "string"}, "x", True),
        ({"$exists": True, "$type": "string"}, 1, False),
        ({"$exists": False}, MISSING, True),
        ({"$match": "application/(openjobspec\\+)?json"}, "application/json", True),
        ({"$in": ["ok", "healthy"]}, "degraded", False),
        ({"$in": [{"$exists": False}, "x"]}, MISSING, True),
        ({"$size": 0}, [], True),
        ({"$size": {"$gte": 1}}, [], False),
        ({"$or": ["a", "number:positive"]}, 3, True),
        ({"range": {"min": 1000, "max": 3000}}, 2500, True),
        ({"range": {"min": 1000}}, 10, False),
        ({"$gte": 1}, 1, True),
        ({"$gte": 1}, 0, False),
        ({"$empty": True}, [], True),
        ({"state": "done", "gone": "absent"}, {"state": "done", "other": 1}, True),
        ({"state": "done", "gone": "absent"}, {"state": "done", "gone": None}, False),
    ],
)
def test_matchers(matcher: Any, actual: Any, passes: bool) -> None:
    problem = match(matcher, actual)
    assert (problem is None) is passes, problem


def test_a_failed_match_explains_what_was_expected_and_what_came() -> None:
    assert match("completed", "active") == "expected 'completed', got \"active\""
    assert "missing" in (match({"$exists": True}, MISSING) or "")


# --- templates -------------------------------------------------------------------------------

BODIES = {"s1": {"job": {"id": "j1", "attempt": 2.0, "tags": ["a"]}}, "s2": [1]}


def lookup(step_id: str) -> Any:
    return BODIES.get(step_id, MISSING)


def test_templates_substitute_text() -> None:
    text = "/jobs/{{steps.s1.response.body.job.id}}?a={{steps.s1.response.body.job.attempt}}"
    assert substitute(text, lookup) == "/jobs/j1?a=2"
    assert substitute("{{steps.s1.response.body.job.tags}}", lookup) == '["a"]'
    assert substitute("{{steps.s2.response.body[0]}}", lookup) == "{{steps.s2.response.body[0]}}"
    assert substitute("{{steps.s9.response.body.x}}", lookup) == "{{steps.s9.response.body.x}}"
    assert substitute("{{steps.s1.response.body.job.nope}}", lookup).startswith("{{")


def test_templates_in_values_and_whole_values() -> None:
    spec = {"$.x.{{steps.s1.response.body.job.id}}": ["{{steps.s1.response.body.job.tags}}"]}
    assert substitute_value(spec, lookup) == {"$.x.j1": ['["a"]']}
    whole = substitute_value(spec, lookup, whole_values=True)
    assert whole == {"$.x.j1": [["a"]]}
    assert substitute_value("{{steps.s1.response.body}}", lookup, whole_values=True) == BODIES["s1"]


# --- response assertions ---------------------------------------------------------------------


def response(status: int = 200, body: Any = MISSING, **headers: str) -> Response:
    text = "" if body is MISSING else json.dumps(body)
    lowered = {name.lower().replace("_", "-"): value for name, value in headers.items()}
    return Response(status, text, body, lowered, elapsed_ms=20.0)


@pytest.mark.parametrize(
    ("spec", "status", "passes"),
    [
        (201, 201, True),
        (201, 200, False),
        ("one_of:400,422", 422, True),
        ("number:range(400,422)", 404, True),
        ({"$in": [200, 409]}, 404, False),
    ],
)
def test_status_assertions(spec: Any, status: int, passes: bool) -> None:
    assert (check_response({"status": spec}, response(status)) == []) is passes
    assert (check_response({"status_in": [status]}, response(status))) == []


def test_header_assertions_are_case_insensitive_exact_or_matchers() -> None:
    reply = response(404, {}, Content_Type="application/openjobspec+json")
    assert (
        check_response({"headers": {"content-type": "application/openjobspec+json"}}, reply) == []
    )
    assert check_response({"headers": {"Content-Type": {"$match": "json$"}}}, reply) == []
    failures = check_response({"headers": {"OJS-Version": "1.0.0-rc.1"}}, reply)
    assert failures == ["header OJS-Version: expected '1.0.0-rc.1', got <missing>"]


def test_body_assertions_or_absent_contains_and_timing() -> None:
    reply = response(200, {"jobs": [], "n": 1})
    either = {"$or": [{"$.jobs[0].id": "x"}, {"$.jobs": {"$size": 0}}]}
    assert check_response({"body": either}, reply) == []
    neither = check_response({"body": {"$or": [{"$.n": 2}, {"$.jobs": "array:nonempty"}]}}, reply)
    assert neither and neither[0].startswith("$or: no alternative matched")
    assert check_response({"body_absent": ["$.job.error", "$.jobs[3]"]}, reply) == []
    assert check_response({"body_absent": ["$.n"]}, reply) == ["$.n: expected absent, got 1"]
    assert (
        check_response({"body_contains": ['"jobs"'], "timing_ms": {"less_than": 500}}, reply) == []
    )
    assert check_response({"timing_ms": {"greater_than": 500, "approximate": 1000}}, reply)
    assert check_response({"bogus": 1}, reply) == ["unsupported assertion 'bogus'"]


def test_a_body_that_is_not_an_object_fails_value_assertions_but_not_absent_ones() -> None:
    empty = Response(204, "", MISSING)
    assert check_response({"body": {"$.jobs": "absent"}}, empty) == []
    failures = check_response({"body": {"$.jobs": "array:empty"}}, empty)
    assert failures and "not a JSON object" in failures[0]
    assert (
        check_response({"body": {"$or": [{"$.jobs": {"$size": 0}}, {"$empty": True}]}}, empty) == []
    )
    assert check_response({"body": {"$.jobs[0].id": "x"}}, response(200, {"jobs": []}))


def test_cross_step_assertions() -> None:
    claim = {"job_id": "j", "exactly_one_has_job": True, "exactly_one_empty": True}
    assert (
        check_cross_step({"exclusive_claim": {**claim, "fetches": [[{"id": "j"}], []]}}, {}) == []
    )
    twice = {"exclusive_claim": {**claim, "fetches": [[{"id": "j"}], [{"id": "j"}]]}}
    assert len(check_cross_step(twice, {})) == 2
    seen = {"a": response(200, {"x": 1}), "b": response(200, {"x": True})}
    assert check_cross_step({"equality": {"$.steps.a.response.body": {"x": 1}}}, seen) == []
    assert check_cross_step({"equality": {"$.steps.b.response.body": {"x": 1}}}, seen)
    assert not same_json([1, {"a": True}], [1, {"a": 1}])


# --- the vendored cases ----------------------------------------------------------------------


def test_every_vendored_file_is_json_and_loads_as_a_case() -> None:
    files = sorted(SUITE_DIR.rglob("*.json"))
    for file in files:
        json.loads(file.read_text(encoding="utf-8"))
    cases = load_cases()
    assert len(cases) == len(files) == 133
    assert len({case.path for case in cases}) == len(cases)
    counts = {level: sum(case.level == level for case in cases) for level in range(5)}
    assert counts == {0: 65, 1: 25, 2: 13, 3: 14, 4: 16}
    assert [case.path for case in load_cases([2])] == [c.path for c in cases if c.level == 2]
    assert all(case.path.startswith(f"level-{case.level}-") for case in cases)
    assert (SUITE_DIR / "LICENSE").read_text().startswith("Apache License")


# --- whole cases against a fake server -------------------------------------------------------


class FakeOJS(BaseHTTPRequestHandler):
    """Just enough of OJS for the cases below: enqueue, fetch, info, health."""

    jobs: dict[str, dict[str, Any]] = {}
    lock = threading.Lock()
    authorizations: list[str | None] = []

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/openjobspec+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.authorizations.append(self.headers.get("Authorization"))
        if self.path == "/ojs/v1/health":
            return self.reply(200, {"status": "ok"})
        job = self.jobs.get(self.path.rsplit("/", 1)[-1])
        if job is None:
            return self.reply(404, {"error": {"code": "not_found", "message": "no such job"}})
        return self.reply(200, {"job": job})

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            body = json.loads(raw)
        except ValueError:
            return self.reply(400, {"error": {"code": "invalid_payload", "message": "bad"}})
        with self.lock:
            if self.path == "/ojs/v1/jobs":
                job_id = f"01900000-0000-7000-8000-{len(self.jobs):012d}"
                job = {"id": job_id, "type": body["type"], "state": "available"}
                job["queue"] = body.get("options", {}).get("queue", "default")
                self.jobs[job_id] = job
                return self.reply(201, {"job": job})
            ready = [j for j in self.jobs.values() if j["state"] == "available"]
            ready = [j for j in ready if j["queue"] in body["queues"]][:1]
            for job in ready:
                job["state"] = "active"
            return self.reply(200, {"jobs": ready})


@pytest.fixture
def server() -> Iterator[str]:
    FakeOJS.jobs, FakeOJS.authorizations = {}, []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOJS)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


def step(step_id: str, action: str, path: str = "", **extra: Any) -> dict[str, Any]:
    return {"id": step_id, "action": action, "path": path, **extra}


JOB = "{{steps.push.response.body.job.id}}"
PASSING = {
    "test_id": "T-1",
    "level": 0,
    "name": "passing",
    "setup": {"steps": [step("health", "GET", "/ojs/v1/health", assertions={"status": 200})]},
    "steps": [
        step(
            "push",
            "POST",
            "/ojs/v1/jobs",
            body={"type": "t.a", "args": [], "options": {"queue": "q"}},
            assertions={"status": 201, "body": {"$.job.id": "string:uuidv7"}},
        ),
        step("f1", "POST", "/ojs/v1/workers/fetch", body={"queues": ["q"]}, parallel_with="f2"),
        step("f2", "POST", "/ojs/v1/workers/fetch", body={"queues": ["q"]}, parallel_with="f1"),
        step(
            "claim",
            "ASSERT",
            assertions={
                "exclusive_claim": {
                    "job_id": JOB,
                    "exactly_one_has_job": True,
                    "exactly_one_empty": True,
                    "fetches": [
                        "{{steps.f1.response.body.jobs}}",
                        "{{steps.f2.response.body.jobs}}",
                    ],
                }
            },
        ),
        step("pause", "WAIT", duration_ms=1500),
        step(
            "info1",
            "GET",
            f"/ojs/v1/jobs/{JOB}",
            delay_ms=10,
            assertions={"body": {"$.job.state": "active", "$.job.id": JOB}},
        ),
        step("info2", "GET", f"/ojs/v1/jobs/{JOB}"),
        step(
            "same",
            "ASSERT",
            assertions={
                "equality": {"$.steps.info1.response.body": "{{steps.info2.response.body}}"}
            },
        ),
        step(
            "bad",
            "POST",
            "/ojs/v1/jobs",
            raw_body="{ invalid json }",
            assertions={"status": 400, "body": {"$.error.code": "invalid_payload"}},
        ),
    ],
}


def write_case(tmp_path: Path, data: dict[str, Any]) -> Any:
    file = tmp_path / "level-0-core" / f"{data['name']}.json"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text(json.dumps(data))
    return load_case(file, tmp_path)


def test_a_passing_case_end_to_end(server: str, tmp_path: Path) -> None:
    slept: list[float] = []
    case = write_case(tmp_path, PASSING)
    result = run_case(case, server, headers={"Authorization": "Bearer t0k"}, sleep=slept.append)
    assert result.passed, describe(result)
    assert (result.path, result.test_id, result.errored) == (
        "level-0-core/passing.json",
        "T-1",
        False,
    )
    assert [s.id for s in result.steps][:4] == ["health", "push", "f1", "f2"]
    assert slept == [1.5, 0.01]
    assert set(FakeOJS.authorizations) == {"Bearer t0k"}
    info = next(s for s in result.steps if s.id == "info1")
    assert info.path.startswith("/ojs/v1/jobs/01900000-") and info.status == 200


def test_a_failing_case_reports_each_failed_assertion(server: str, tmp_path: Path) -> None:
    failing = {
        **PASSING,
        "name": "failing",
        "steps": [
            PASSING["steps"][0],
            step(
                "info",
                "GET",
                f"/ojs/v1/jobs/{JOB}",
                assertions={"status": 200, "body": {"$.job.state": "completed"}},
            ),
            step("gone", "GET", "/ojs/v1/jobs/nope", assertions={"status": 404}),
        ],
    }
    result = run_case(write_case(tmp_path, failing), server, sleep=lambda _: None)
    assert not result.passed and not result.errored
    info = next(s for s in result.steps if s.id == "info")
    assert info.failures == ["$.job.state: expected 'completed', got \"available\""]
    assert describe(result).splitlines()[0] == "FAIL level-0-core/failing.json T-1"


def test_a_failing_setup_marks_the_case_errored(server: str, tmp_path: Path) -> None:
    broken = {
        **PASSING,
        "name": "broken",
        "setup": {"steps": [step("h", "GET", "/ojs/v1/health", assertions={"status": 500})]},
    }
    result = run_case(write_case(tmp_path, broken), server, sleep=lambda _: None)
    assert result.errored and not result.passed
    assert [s.id for s in result.steps] == ["h"]
    assert describe(result).startswith("ERROR ")


def test_the_command_line_runs_vendored_cases(
    server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--url", server, "--level", "0", "--path-contains", "health-endpoint"]) == 0
    assert capsys.readouterr().out.startswith("PASS level-0-core/operations/health-endpoint.json")
    assert main(["--url", server, "--path-contains", "health-endpoint", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["passed"] is True
    assert main(["--url", server, "--path-contains", "no-such-case"]) == 2
