"""The coordinator keeps the latest progress of each active job of a session, for its current
attempt only, and says when a report is new (actors/session_progress.py)."""

from __future__ import annotations

from actors.jobs import Job
from actors.session_progress import keep_progress, progress_of
from actors.sessions import Session
from transport import jobspec
from transport.messages import ProgressReport


def _session(*job_ids: str) -> Session:
    session = Session("w-1", b"peer", "host", 1, 0.0, 0.0)
    for job_id in job_ids:
        job = Job.from_spec(jobspec.JobSpec(type="t"), job_id, 0.0, 1)
        job.attempt = 1
        session.active[job_id] = job
    return session


def _new(now: float, session: Session, *reports: ProgressReport) -> list[tuple[str, float, str]]:
    return [(job.id, f, text) for job, f, text in keep_progress(now, session, reports)]


def test_a_report_is_kept_with_its_time_and_attempt_and_only_a_change_is_new():
    session = _session("a", "b")

    assert _new(10.0, session, ProgressReport("a", 0.5, "half")) == [("a", 0.5, "half")]
    assert _new(15.0, session, ProgressReport("a", 0.5, "half")) == []  # the same again
    assert progress_of(session, "a", 1) == {
        "fraction": 0.5,
        "message": "half",
        "updated_at": 10.0,
        "attempt": 1,
    }
    assert _new(20.0, session, ProgressReport("a", 0.5, "still half")) == [("a", 0.5, "still half")]
    assert progress_of(session, "a", 1)["updated_at"] == 20.0
    assert progress_of(session, "b", 1) is None


def test_reports_of_jobs_the_session_does_not_hold_are_ignored_and_left_ones_forgotten():
    session = _session("a")
    _new(10.0, session, ProgressReport("a", 0.2, ""), ProgressReport("stranger", 0.9, "x"))
    assert set(session.progress) == {"a"}

    del session.active["a"]  # acked, cancelled or recovered
    assert _new(15.0, session) == []
    assert session.progress == {}


def test_a_new_attempt_shows_nothing_of_the_last_one_until_it_reports():
    session = _session("a")
    _new(10.0, session, ProgressReport("a", 0.7, "old"))
    session.active["a"].attempt = 2

    assert progress_of(session, "a", 2) is None
    assert _new(15.0, session, ProgressReport("a", 0.7, "old")) == [("a", 0.7, "old")]
    assert progress_of(session, "a", 2)["attempt"] == 2
    assert progress_of(None, "a", 2) is None  # no live session
