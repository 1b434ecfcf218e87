"""Log lines say times and durations the way people read them, and the library prints nothing
when its embedder configured no logging."""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from actors.jobs import Job
from actors.link.core import LinkCore
from actors.link.session import Session
from actors.worker_settings import WorkerSettings
from nodes.observe.formatting import format_time
from nodes.observe.logs import EventLog, JsonFormatter
from transport import jobspec
from transport.endpoints import Endpoints

REPO = Path(__file__).resolve().parents[2]
FAILED_AT = 1_765_000_000.25
ADDRESS = "tcp://127.0.0.1:5555"


def test_a_retry_is_logged_with_its_delay_in_seconds_and_a_local_time(caplog):
    job = Job.from_spec(jobspec.JobSpec(type="t"), "job-1", FAILED_AT - 5, 1)
    job.attempt = 1
    job.record_error("ValueError", "bad", FAILED_AT)
    job.next_attempt_at = FAILED_AT + 1.3
    logger = logging.getLogger("test.corral.retry")
    with caplog.at_level(logging.INFO, logger=logger.name):
        EventLog(logger)("job_retry", {"job": job})
    [record] = caplog.records
    message = record.getMessage()
    assert f"retry in 1.3 s (at {format_time(FAILED_AT + 1.3)})" in message
    assert str(round(FAILED_AT + 1.3, 3)) not in message  # no raw UNIX timestamp


def test_progress_is_logged_at_debug_with_its_percentage_and_fields(caplog):
    job = Job.from_spec(jobspec.JobSpec(type="t"), "job-1", FAILED_AT, 1)
    job.attempt = 2
    logger = logging.getLogger("test.corral.progress")
    with caplog.at_level(logging.DEBUG, logger=logger.name):
        EventLog(logger)("job_progress", {"job": job, "fraction": 0.425, "message": "rows"})
    [record] = caplog.records
    assert record.levelno == logging.DEBUG
    assert record.getMessage() == "job job-1 attempt 2 at 42%: rows"
    fields = (record.event, record.fraction, record.progress_message)
    assert fields == ("job_progress", 0.425, "rows")


def test_a_worker_that_cannot_reach_its_coordinator_says_where_and_when_it_retries(caplog):
    settings = WorkerSettings(reconnect_initial=2.0)
    session = Session(settings, random.Random(1))
    with caplog.at_level(logging.WARNING, logger="actors.link.session"):
        session.lost("no reply to hello", ADDRESS, ADDRESS)
        delay = session.lost("no reply to hello", ADDRESS, ADDRESS)
    first, second = (record.getMessage() for record in caplog.records)
    assert first == f"cannot reach the coordinator at {ADDRESS} (no reply to hello); retrying now"
    assert second == (
        f"cannot reach the coordinator at {ADDRESS} (no reply to hello); "
        f"retrying in {delay:.1f} s"
    )
    assert 1.0 <= delay <= 2.0


def test_a_worker_whose_hello_goes_unanswered_says_so_at_its_first_beat_once(caplog):
    # Given a link saying hello to a coordinator that does not answer
    settings = WorkerSettings(heartbeat_interval=5.0)
    core = LinkCore(settings, random.Random(1), 100.0, Endpoints([(ADDRESS, None)]))
    core.start()
    core.connect(100.0)
    with caplog.at_level(logging.WARNING, logger="actors.link.session"):
        # When beats come and the hello is still unanswered, long before heartbeat_timeout
        core.beat(103.0, due=True)
        core.beat(105.0, due=True)
        core.beat(110.0, due=True)
    # Then it says so once, at the first beat a whole interval after the hello
    assert [r.getMessage() for r in caplog.records] == [
        f"no answer from the coordinator at {ADDRESS} after 5 s; still trying"
    ]


def test_a_worker_that_loses_its_session_names_it_and_reconnects(caplog):
    session = Session(WorkerSettings(), random.Random(1))
    session.welcomed("w-1")
    with caplog.at_level(logging.WARNING, logger="actors.link.session"):
        session.lost("no reply for 30.0 s", ADDRESS, ADDRESS)
        session.welcomed("w-2")
        session.lost("hello answered not_leader", ADDRESS, "tcp://10.0.0.2:5555", endpoints=2)
    assert [r.getMessage() for r in caplog.records] == [
        f"worker w-1: coordinator lost (no reply for 30.0 s); reconnecting to {ADDRESS} now",
        f"worker w-2: coordinator at {ADDRESS} lost (hello answered not_leader); "
        "reconnecting to tcp://10.0.0.2:5555 now",
    ]


EMBEDDED = textwrap.dedent(
    """
    from nodes import Cluster

    def broken():
        raise ValueError("always")

    with Cluster(workers=1, handlers={"broken": broken}) as cluster:
        client = cluster.client()
        job = client.enqueue("broken", [], max_attempts=1)
        assert client.get(job.id, wait=20).state == "discarded"
    print("done")
    """
)


@pytest.mark.timeout(60)
def test_an_embedded_cluster_prints_nothing_when_no_logging_is_configured():
    # A discarded job is a WARNING: with no handler anywhere, Python's last-resort handler
    # would print it on stderr.
    done = subprocess.run(
        [sys.executable, "-c", EMBEDDED],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "done"
    assert done.stderr == ""


def test_a_leadership_change_is_one_json_line_saying_who_what_term_and_why(caplog):
    logger = logging.getLogger("test.corral.leadership")
    with caplog.at_level(logging.INFO, logger=logger.name):
        EventLog(logger)(
            "leadership",
            {"coordinator": "b@host:7", "role": "leading", "previous": "promoting", "term": 4,
             "reason": "serving term 4", "endpoint": "tcp://10.0.0.2:5555"},
        )  # fmt: skip
        EventLog(logger)(
            "leadership",
            {"coordinator": "a@host:6", "role": "standby", "previous": "leading", "term": 3,
             "reason": "another coordinator took the lease", "endpoint": "tcp://10.0.0.1:5555"},
        )  # fmt: skip
    serving, deposed = caplog.records
    expected = "coordinator b@host:7: promoting -> leading, term 4: serving term 4"
    assert serving.getMessage() == expected
    assert deposed.levelno == logging.WARNING  # a leader losing its place is worth a look
    line = json.loads(JsonFormatter({"node": "a"}).format(deposed))
    assert (line["event"], line["role"], line["previous"], line["term"]) == (
        "leadership", "standby", "leading", 3,
    )  # fmt: skip
    assert line["reason"] == "another coordinator took the lease"
