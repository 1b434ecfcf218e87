"""The OJS job envelope and corral's JobSpec and Job maps (nodes/gateway/envelope.py, times.py):
what is accepted, what is refused with which status, and that a job reads back as it was sent."""

from __future__ import annotations

from typing import Any

import pytest

from nodes.gateway.envelope import RESERVED_META, job_spec, ojs_job
from nodes.gateway.errors import OjsError
from nodes.gateway.times import duration_s, rfc3339, timestamp_s

NOW = 1_780_000_000.0
JOB_ID = "019a0000-0000-7000-8000-00000000abcd"


def refused(body: Any, status: int = 400) -> OjsError:
    with pytest.raises(OjsError) as caught:
        job_spec(body, NOW)
    assert caught.value.status == status, caught.value.message
    return caught.value


def stored(spec: dict[str, Any], **job: Any) -> dict[str, Any]:
    """The Job map the coordinator would give back for `spec`."""
    retry = {"initial_interval": 1.0, "backoff_coefficient": 2.0, "max_interval": 300.0,
             "jitter": True, **spec.get("retry", {})}  # fmt: skip
    base = {"max_attempts": 3, "attempt": 0, "state": "available", "created_at": NOW,
            "errors": [], "id": JOB_ID}  # fmt: skip
    return {**base, **spec, "retry": retry, **job}


def test_a_minimal_job_gets_corral_defaults_and_reads_back_without_unset_fields():
    spec = job_spec({"type": "email.send", "args": []}, NOW)
    assert spec == {"type": "email.send", "args": [], "queue": "default", "priority": 0,
                    "meta": {RESERVED_META: {"max_attempts": 3}}}  # fmt: skip
    view = ojs_job(stored(spec))
    assert view["specversion"] == "1.0.0-rc.1" and view["state"] == "available"
    assert view["created_at"] == rfc3339(NOW) and view["attempt"] == 0
    for unset in ("started_at", "completed_at", "error", "errors", "result", "scheduled_at"):
        assert unset not in view


def test_options_map_onto_the_jobspec_and_unknown_fields_travel_in_reserved_meta():
    body = {
        "id": JOB_ID,
        "type": "report.generate",
        "args": [42],
        "meta": {"tenant": "acme"},
        "x_custom": {"kept": True},
        "options": {
            "queue": "reports",
            "priority": 10,
            "visibility_timeout": "PT30S",
            "timeout_ms": 2000,
            "delay_until": rfc3339(NOW + 60),
            "tags": ["q4"],
            "metadata": {"from": "options"},
            "retry": {"max_attempts": 5, "initial_interval": "PT2S", "max_interval": "PT1M",
                      "backoff_strategy": "linear", "jitter": False,
                      "non_retryable_errors": ["Auth.*"]},
        },
    }  # fmt: skip
    spec = job_spec(body, NOW)
    assert spec["id"] == JOB_ID and spec["queue"] == "reports" and spec["priority"] == 10
    assert spec["scheduled_at"] == pytest.approx(NOW + 60)
    assert spec["timeout"] == 30.0 and spec["run_timeout"] == 2.0
    assert spec["max_attempts"] == 5
    assert spec["retry"] == {"initial_interval": 2.0, "max_interval": 60.0, "backoff": "linear",
                             "backoff_coefficient": 2.0, "jitter": False}  # fmt: skip
    assert spec["meta"]["tenant"] == "acme" and spec["meta"]["from"] == "options"
    view = ojs_job(stored(spec))
    assert view["x_custom"] == {"kept": True} and view["tags"] == ["q4"]
    assert RESERVED_META not in view["meta"]
    assert view["timeout_ms"] == 2000 and view["visibility_timeout_ms"] == 30000
    assert view["retry"]["non_retryable_errors"] == ["Auth.*"]


@pytest.mark.parametrize(
    "body",
    [
        {"type": "Email.Send", "args": []},
        {"type": "email send", "args": []},
        {"type": "1email", "args": []},
        {"type": "", "args": []},
        {"args": []},
        {"type": "a"},
        {"type": "a", "args": {"not": "a list"}},
        {"type": "a", "args": [], "options": {"priority": 101}},
        {"type": "a", "args": [], "options": {"priority": 1.5}},
        {"type": "a", "args": [], "options": {"queue": "Bad Queue"}},
        {"type": "a", "args": [], "id": JOB_ID.upper()},
        {"type": "a", "args": [], "options": {"delay_until": "2026-01-01T00:00:00"}},
        "not an object",
    ],
)
def test_a_malformed_envelope_is_refused_with_400(body):
    error = refused(body)
    assert error.code == "invalid_request" and error.message and error.retryable is False


@pytest.mark.parametrize(
    "retry",
    [{"max_attempts": -1}, {"backoff_coefficient": 0.5}, {"initial_interval": "soon"},
     {"backoff_strategy": "cubic"}, {"non_retryable_errors": "Auth"}],
)  # fmt: skip
def test_a_malformed_retry_policy_is_refused_with_422(retry):
    refused({"type": "a", "args": [], "options": {"retry": retry}}, 422)


def test_a_unique_policy_becomes_one_key_per_distinct_value_of_the_fields_it_names():
    def key(args: list[Any], keys: list[str] | None = None) -> str:
        unique = {"keys": keys} if keys else {}
        return job_spec({"type": "a", "args": args, "unique": unique}, NOW)["unique_key"]

    assert key([1]) == key([1]) != key([2])
    assert key([1], ["type"]) == key([2], ["type"])
    refused({"type": "a", "args": [], "unique": {"keys": ["colour"]}})


def test_states_errors_and_ends_are_rendered_as_the_binding_names_them():
    spec = job_spec({"type": "a", "args": []}, NOW)
    errors = [{"attempt": 1, "type": "Boom", "message": "no", "at": NOW + 2}]
    discarded = ojs_job(stored(spec, state="discarded", completed_at=NOW + 2, errors=errors))
    assert discarded["discarded_at"] == discarded["completed_at"] == rfc3339(NOW + 2)
    assert discarded["error"] == {"code": "Boom", "type": "Boom", "message": "no",
                                  "attempt": 1, "occurred_at": rfc3339(NOW + 2)}  # fmt: skip
    cancelled = ojs_job(stored(spec, state="cancelled", completed_at=NOW + 3))
    assert cancelled["cancelled_at"] == rfc3339(NOW + 3) and "completed_at" not in cancelled
    done = ojs_job(stored(spec, state="completed", completed_at=NOW, result={"n": 1},
                          errors=errors))  # fmt: skip
    assert done["result"] == {"n": 1} and "error" not in done and done["errors"]
    assert ojs_job(stored(spec, state="deferred"))["state"] == "pending"


def test_a_dead_letter_retry_starts_a_new_round_of_attempts_counted_from_zero():
    spec = job_spec({"type": "a", "args": [], "options": {"retry": {"max_attempts": 2}}}, NOW)
    revived = ojs_job(stored(spec, attempt=2, max_attempts=4))  # corral: one more round of 2
    assert revived["attempt"] == 0 and revived["max_attempts"] == 2
    assert revived["retry"]["max_attempts"] == 2
    assert ojs_job(stored(spec, attempt=3, max_attempts=4))["attempt"] == 1


def test_durations_and_timestamps():
    assert duration_s("PT1S", "f") == 1.0
    assert duration_s("PT1.5S", "f") == 1.5
    assert duration_s("PT5M", "f") == 300.0
    assert duration_s("P1DT2H", "f") == 93_600.0
    assert duration_s("P1W", "f") == 604_800.0
    for bad in ("P", "PT", "1S", "PT1X", "P1Y", 5, None):
        with pytest.raises(OjsError):
            duration_s(bad, "f")
    assert timestamp_s("+PT5S", "f", NOW) == NOW + 5
    assert timestamp_s("2026-02-12T10:30:00Z", "f", NOW) == timestamp_s(
        "2026-02-12T11:30:00+01:00", "f", NOW
    )
    assert rfc3339(0.25) == "1970-01-01T00:00:00.250Z"
