"""The coordinator's side of the extension "Progress": each worker session keeps the latest
progress its beats reported of its active jobs (the worker's side is actors/progress.py).

In memory only, on the `Session` (the supervisor's): progress is worth showing while a job runs
and nothing after, so it never costs a store write; a restarted coordinator shows it again from
the next beat.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from actors.jobs import Job
from actors.sessions import Session
from transport.messages import ProgressReport


def keep_progress(
    now: float, session: Session, reports: tuple[ProgressReport, ...]
) -> Iterator[tuple[Job, float, str]]:
    """Forget the progress of jobs the session no longer holds, keep what the beat reported of
    those it does, and yield each (job, fraction, message) that is new (for `job_progress`)."""
    kept = session.progress
    for gone in [job_id for job_id in kept if job_id not in session.active]:
        del kept[gone]
    for report in reports:
        job = session.active.get(report.job_id)
        if job is None:
            continue
        entry = kept.get(report.job_id) or {}
        known = (entry.get("attempt"), entry.get("fraction"), entry.get("message"))
        if known == (job.attempt, report.fraction, report.message):
            continue
        kept[report.job_id] = {
            "fraction": report.fraction,
            "message": report.message,
            "updated_at": now,
            "attempt": job.attempt,
        }
        yield job, report.fraction, report.message


def progress_of(session: Session | None, job_id: str, attempt: int) -> dict[str, Any] | None:
    """The last progress of this attempt of the job, if its session reported one."""
    entry = session.progress.get(job_id) if session is not None else None
    return entry if entry is not None and entry["attempt"] == attempt else None
