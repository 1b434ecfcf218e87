"""Logs through the standard `logging` module: plain lines or one JSON object per line.

- `setup_logging(level, log_format, node=...)` configures the root logger of a node process
  (`corral run FILE --node NAME`); `log_format: json` in the YAML picks `JsonFormatter`.
- `EventLog` is an event observer every coordinator attaches: each worker join, death,
  directive, job recovery, retry and discard is logged with its ids, both in the message and
  as structured fields (`event`, `worker_id`, `job_id`, ...) that the JSON lines carry.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors import events
from nodes.observe.formatting import format_time

if TYPE_CHECKING:
    from nodes.addons import AddonHost

LOG_FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s.%(msecs)03d %(levelname)s %(name)s: %(message)s"
TEXT_DATE_FORMAT = "%H:%M:%S"

# Attributes every LogRecord has; anything else on a record came from `extra=` and is a field.
_STANDARD_ATTRIBUTES = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {
    "message",
    "asctime",
    "taskName",
}

event_log = logging.getLogger("corral.events")


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, the fields
    given with `extra=`, and the traceback as `exc` when there is one."""

    def __init__(self, static: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.static = dict(static or {})

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            **self.static,
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD_ATTRIBUTES and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        return json.dumps(entry, default=str, ensure_ascii=False)


def setup_logging(level: str, log_format: str = "text", **static: Any) -> None:
    """Configure the root logger on stderr; `static` fields (node, kind) go on JSON lines."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {log_format!r}")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonFormatter(static))
    else:
        handler.setFormatter(logging.Formatter(TEXT_FORMAT, TEXT_DATE_FORMAT))
    logging.basicConfig(level=level, handlers=[handler], force=True)


def check_log_format(value: Any, where: Any, name: str) -> str:
    """Config check for `log_format` (see nodes.config.fields)."""
    if value not in LOG_FORMATS:
        raise where.error(f"expected one of {', '.join(LOG_FORMATS)}, got {value!r}", name)
    return str(value)


class EventLog:
    """Event observer: the coordinator's lifecycle events as log records with their ids.

    Every coordinator runs one as its first add-on (subscribed while it runs).
    """

    def __init__(self, logger: logging.Logger = event_log) -> None:
        self.log = logger
        self._unsubscribe: Callable[[], None] | None = None

    def start(self, coordinator: AddonHost) -> None:
        self._unsubscribe = coordinator.events.subscribe(self)

    def stop(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None

    def __call__(self, name: str, payload: dict[str, Any]) -> None:
        handler = self._handlers.get(name)
        if handler is not None:
            handler(self, payload)

    def _joined(self, p: dict[str, Any]) -> None:
        self.log.info(
            "worker %s joined from %s pid %s",
            p["worker_id"],
            p["hostname"],
            p["pid"],
            extra={"event": events.WORKER_JOINED, **p},
        )

    def _lost(self, p: dict[str, Any]) -> None:
        level = logging.WARNING if p["reason"] == "timeout" else logging.INFO
        what = "died (silent past heartbeat_timeout)" if p["reason"] == "timeout" else "left"
        self.log.log(
            level,
            "worker %s %s: %s",
            p["worker_id"],
            what,
            p["reason"],
            extra={"event": events.WORKER_LOST, **p},
        )

    def _directed(self, p: dict[str, Any]) -> None:
        self.log.info(
            "worker %s directed to %s",
            p["worker_id"],
            p["state"],
            extra={"event": events.WORKER_DIRECTED, **p},
        )

    def _recovered(self, p: dict[str, Any]) -> None:
        job = p["job"]
        self.log.warning(
            "job %s recovered from worker %s (%s) after attempt %d of %d",
            job.id,
            job.worker_id,
            p["reason"],
            job.attempt,
            job.max_attempts,
            extra=_job_fields(events.JOB_RECOVERED, job, reason=p["reason"]),
        )

    def _retry(self, p: dict[str, Any]) -> None:
        job = p["job"]
        error = job.errors[-1] if job.errors else {}
        retry_at = job.next_attempt_at or 0.0
        delay = max(retry_at - error.get("at", retry_at), 0.0)  # `at`: when the attempt failed
        self.log.info(
            "job %s attempt %d failed (%s: %s); retry in %.1f s (at %s)",
            job.id,
            job.attempt,
            error.get("type"),
            error.get("message"),
            delay,
            format_time(retry_at),
            extra=_job_fields(
                events.JOB_RETRY, job, error_type=error.get("type"), retry_at=retry_at
            ),
        )

    def _progress(self, p: dict[str, Any]) -> None:
        """At DEBUG: every running job may report at every beat."""
        job = p["job"]
        self.log.debug(
            "job %s attempt %d at %.0f%%: %s",
            job.id,
            job.attempt,
            p["fraction"] * 100,
            p["message"],
            extra=_job_fields(
                events.JOB_PROGRESS, job, fraction=p["fraction"], progress_message=p["message"]
            ),
        )

    def _terminal(self, p: dict[str, Any]) -> None:
        job = p["job"]
        if job.state != "discarded":
            return
        error = job.errors[-1] if job.errors else {}
        self.log.warning(
            "job %s discarded after attempt %d (%s: %s)",
            job.id,
            job.attempt,
            error.get("type"),
            error.get("message"),
            extra=_job_fields("job_discarded", job, error_type=error.get("type")),
        )

    def _leadership(self, p: dict[str, Any]) -> None:
        level = logging.WARNING if p["previous"] == "leading" else logging.INFO
        self.log.log(
            level,
            "coordinator %s: %s -> %s, term %s: %s",
            p["coordinator"],
            p["previous"],
            p["role"],
            p["term"],
            p["reason"],
            extra={"event": events.LEADERSHIP, **p},
        )

    def _paused(self, p: dict[str, Any]) -> None:
        self.log.warning(
            "queue %s %s",
            p["queue"],
            "paused: it takes enqueues and hands out no job" if p["paused"] else "resumed",
            extra={"event": events.QUEUE_PAUSED, **p},
        )

    _handlers = {
        events.LEADERSHIP: _leadership,
        events.QUEUE_PAUSED: _paused,
        events.WORKER_JOINED: _joined,
        events.WORKER_LOST: _lost,
        events.WORKER_DIRECTED: _directed,
        events.JOB_RECOVERED: _recovered,
        events.JOB_RETRY: _retry,
        events.JOB_PROGRESS: _progress,
        events.JOB_TERMINAL: _terminal,
    }


def _job_fields(event: str, job: Any, **more: Any) -> dict[str, Any]:
    return {
        "event": event,
        "job_id": job.id,
        "job_type": job.type,
        "queue": job.queue,
        "attempt": job.attempt,
        "worker_id": job.worker_id,
        **more,
    }
