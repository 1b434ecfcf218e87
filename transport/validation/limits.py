"""The size limits a coordinator validates requests against, and their defaults."""

from __future__ import annotations

from dataclasses import dataclass

from transport.codec import MAX_DEPTH

MAX_JOB_SIZE_BYTES = 512 * 1024
MAX_RESULT_SIZE_BYTES = 512 * 1024
MAX_NAME_CHARS = 256
MAX_BATCH_JOBS = 10_000
MAX_LIST_ITEMS = 100_000
MAX_PROGRESS_MESSAGE_CHARS = 200  # a progress report's message (extension "Progress")


@dataclass(frozen=True, slots=True)
class Limits:
    """Size limits applied while validating (all configurable on the coordinator).

    `max_name_chars` bounds names (job type, queue, function and label names, unique keys,
    hostnames, error types), `max_list_items` every list of names or ids in a request, and
    `max_depth` how deep lists and maps may nest in a frame.
    """

    max_job_size: int = MAX_JOB_SIZE_BYTES
    max_result_size: int = MAX_RESULT_SIZE_BYTES
    max_batch_jobs: int = MAX_BATCH_JOBS
    max_name_chars: int = MAX_NAME_CHARS
    max_list_items: int = MAX_LIST_ITEMS
    max_depth: int = MAX_DEPTH


DEFAULT_LIMITS = Limits()
