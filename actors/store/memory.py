"""A store in process memory: fast, and gone with the process."""

from __future__ import annotations

import builtins
import sys
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterable
from itertools import islice
from typing import Any

from actors import states
from actors.jobs import Job
from actors.store import record
from actors.store.base import Entry, Replay
from transport.errors import BadRequest, DuplicateJob

COMPLETED_RETENTION_S = 86_400.0  # a day of completed jobs stays readable through `get`
DISCARDED_RETENTION_S = 7 * 86_400.0  # failures are kept a week: someone may want to look
LIST_LIMIT = 50  # jobs a listing returns unless asked for another number
UNLINKED_SLACK = 64  # deleted jobs' retention entries tolerated beyond half the live ones


class MemoryStore:
    """One record per job in a dict, guarded by one lock.

    Records, not wire dicts: a wire dict cost ~1 KB per queued job, a record ~110 bytes
    (see actors.store.record). Only what is read is unpacked: `get`, the jobs a listing
    returns, the holder of a duplicate, and `unfinished` at a restart.

    Terminal jobs are forgotten `completed_retention_s` after they completed, or
    `discarded_retention_s` after they were discarded or cancelled, so memory stays bounded; or
    before, by hand (`remove`, the extension "Delete"), exactly as pruning forgets them.

    Request ids (the enqueue extension of docs/PROTOCOL.md) map to the jobs their request made:
    one id string, or a tuple for a batch. A key lives while the store holds any of its jobs:
    its retention is the dedup window. Per job enqueued alone it costs a dict slot (~40 bytes);
    the id string is the one the job holds anyway; a batch shares one key.
    """

    def __init__(
        self,
        *,
        completed_retention_s: float = COMPLETED_RETENTION_S,
        discarded_retention_s: float = DISCARDED_RETENTION_S,
    ) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, Entry] = {}
        self._counts: dict[str, dict[str, int]] = defaultdict(
            lambda: dict.fromkeys(states.JOB_STATES, 0)
        )
        self._unique: dict[str, str] = {}
        self._settings: dict[str, bytes] = {}
        self._requests: dict[str, str | tuple[str, ...]] = {}
        self.retention_s = {
            states.COMPLETED: completed_retention_s,
            states.DISCARDED: discarded_retention_s,
            states.CANCELLED: discarded_retention_s,
        }
        # (ended_at, job_id, entry) per terminal state in the order jobs ended: pruning pops from
        # the left, so a tick costs the jobs it forgets, not a scan of every job held.
        self._ended: dict[str, deque[tuple[float, str, Entry]]] = {
            state: deque() for state in self.retention_s
        }
        # Entries of `_ended` whose job was removed by hand since the deque was last rebuilt
        # (an upper bound: some were popped since). They are skipped when popped, as the entries
        # of jobs saved since are; `_unlink` rebuilds the deque once they outnumber the rest.
        self._unlinked: dict[str, int] = dict.fromkeys(self.retention_s, 0)

    def add(self, jobs: list[Job]) -> list[dict[str, Any] | None] | Replay:
        entries = [_entry(job) for job in jobs]  # packed before taking the lock
        request_id = jobs[0].request_id if jobs else None
        with self._lock:
            made = self._requests.get(request_id) if request_id is not None else None
            if made is not None:
                held = (made,) if isinstance(made, str) else made
                return Replay([record.unpack(self._jobs[i].blob) for i in held if i in self._jobs])
            taken = [job.id for job in jobs if job.id in self._jobs]
            if taken:  # a client named the id (extension "Job ids"): checked under the lock
                raise DuplicateJob(f"a job with id {taken[0]} exists")
            outcome: list[dict[str, Any] | None] = []
            for job, entry in zip(jobs, entries, strict=True):
                holder = self._unique.get(job.unique_key) if job.unique_key else None
                if holder is not None:
                    outcome.append(record.unpack(self._jobs[holder].blob))
                    continue
                if job.unique_key:
                    self._unique[job.unique_key] = job.id
                self._put(job.id, entry, job.completed_at or job.created_at)
                outcome.append(None)
            if request_id is not None:
                created = [job.id for job, dup in zip(jobs, outcome, strict=True) if dup is None]
                if created:  # a request that made no job has nothing to replay
                    self._requests[request_id] = created[0] if len(created) == 1 else (*created,)
            return outcome

    def save(self, job: Job) -> None:
        entry = _entry(job)
        with self._lock:
            self._put(job.id, entry, job.completed_at or job.created_at)
            if job.unique_key:
                holder = self._unique.get(job.unique_key)
                if job.state in states.TERMINAL_STATES:
                    if holder == job.id:
                        del self._unique[job.unique_key]
                elif holder is None:
                    self._unique[job.unique_key] = job.id  # a retried dead job takes it back

    def load(self, blobs: Iterable[bytes]) -> None:
        """Take in a durable store's rows: every row at open, or (a standby following the
        leader, actors.store.follower) the rows changed since, in the order they were written.
        A row replaces what the index held of its job.

        Raises RecordError for a row that is not a job.
        """
        made: dict[str, list[str]] = {}  # request id -> its new jobs, in the order made
        shared: dict[str, str] = {}  # one string per request id, as its live jobs had
        terminal = states.TERMINAL_STATES
        with self._lock:
            ended_before = {state: len(ended) for state, ended in self._ended.items()}
            for blob in blobs:
                compact, row = record.read_row(blob)
                job_id, state = row.id, sys.intern(row.state)
                request_id = row.request_id
                if request_id is not None:
                    request_id = shared.setdefault(request_id, request_id)
                    if job_id not in self._jobs:
                        made.setdefault(request_id, []).append(job_id)
                # Interned: msgpack gives each row its own copy of these few names.
                entry = Entry(
                    sys.intern(row.queue), state, sys.intern(row.type), compact, request_id
                )
                self._put(job_id, entry, row.completed_at or row.created_at)
                if row.unique_key:
                    if state not in terminal:
                        self._unique[row.unique_key] = job_id
                    elif self._unique.get(row.unique_key) == job_id:
                        del self._unique[row.unique_key]
            for state, ended in self._ended.items():
                if not _in_order(ended, ended_before[state]):
                    self._ended[state] = deque(sorted(ended))
            for request_id, job_ids in made.items():
                held = self._requests.get(request_id)  # a request's jobs in two batches
                if held is not None:
                    job_ids = [*((held,) if isinstance(held, str) else held), *job_ids]
                self._requests[request_id] = job_ids[0] if len(job_ids) == 1 else (*job_ids,)

    def _put(self, job_id: str, entry: Entry, ended_at: float) -> None:
        """Hold `entry` as the job's latest; `ended_at` matters only for terminal states."""
        previous = self._jobs.get(job_id)
        if previous is not None:
            self._counts[previous.queue][previous.state] -= 1
        self._counts[entry.queue][entry.state] += 1
        self._jobs[job_id] = entry
        if entry.state in self._ended:
            self._ended[entry.state].append((ended_at, job_id, entry))

    def get(self, job_id: str) -> dict[str, Any] | None:
        entry = self._jobs.get(job_id)
        return None if entry is None else record.unpack(entry.blob)

    def settings(self) -> dict[str, bytes]:
        with self._lock:
            return dict(self._settings)

    def put_setting(self, key: str, value: bytes | None) -> None:
        with self._lock:
            if value is None:
                self._settings.pop(key, None)
            else:
                self._settings[key] = value

    def load_settings(self, settings: dict[str, bytes]) -> None:
        """Hold exactly these settings (a durable store's, read at open or by a standby)."""
        with self._lock:
            self._settings = dict(settings)

    def packed(self, job_id: str) -> bytes | None:
        """The job's last saved record (what a durable store writes)."""
        entry = self._jobs.get(job_id)
        return None if entry is None else entry.blob

    def unique_holder(self, unique_key: str) -> str | None:
        return self._unique.get(unique_key)

    def made_by(self, request_id: str) -> builtins.list[dict[str, Any]]:
        with self._lock:
            made = self._requests.get(request_id)
            held = () if made is None else (made,) if isinstance(made, str) else made
            blobs = [self._jobs[job_id].blob for job_id in held if job_id in self._jobs]
        return [record.unpack(blob) for blob in blobs]  # unpacked outside the lock

    def counts(self) -> dict[str, dict[str, int]]:
        with self._lock:
            return {queue: dict(by_state) for queue, by_state in self._counts.items()}

    def unfinished(self) -> list[Entry]:
        terminal = states.TERMINAL_STATES
        with self._lock:  # the dict keeps jobs in the order they were first added: creation
            return [entry for entry in self._jobs.values() if entry.state not in terminal]

    def prune(self, now: float) -> int:
        return len(self.expire(now))

    def expire(self, now: float) -> list[str]:
        """Forget the terminal jobs past their retention; returns their ids."""
        gone: list[str] = []
        with self._lock:
            for state, ended in self._ended.items():
                cutoff = now - self.retention_s[state]
                while ended and ended[0][0] <= cutoff:
                    _, job_id, entry = ended.popleft()
                    # Saved since (a discarded job retried by hand, and maybe ended again): the
                    # newer save, if terminal, queued an entry of its own.
                    # Removed by hand (extension "Delete"): gone already.
                    if self._jobs.get(job_id) is not entry:
                        continue
                    self._drop(job_id, entry)
                    gone.append(job_id)
        return gone

    def delete(self, job_id: str) -> bool:
        """Forget an ended job now (`remove`); False when no job has this id."""
        return self.remove(job_id) is not None

    def remove(self, job_id: str) -> float | None:
        """Forget an ended job now, exactly as pruning forgets one at the end of its retention:
        its record, its counts, its request id (a resend of its enqueue no longer replays it)
        and its place in the retention order (skipped when its turn comes). Returns when its
        retention would have ended (when a standby's copy would forget it by itself); None
        when no job has this id. Raises BadRequest, changing nothing, for a job that has not
        ended: a queue or a worker holds it, and would save it again."""
        with self._lock:
            entry = self._jobs.get(job_id)
            if entry is None:
                return None
            if entry.state not in self._ended:
                raise BadRequest(
                    f"job {job_id} is {entry.state}: only an ended job can be deleted "
                    "(cancel it first)"
                )
            self._drop(job_id, entry)
            self._unlink(entry.state)
        row = record.read_row(entry.blob)[1]
        return (row.completed_at or row.created_at) + self.retention_s[entry.state]

    def forget(self, job_ids: Iterable[str]) -> None:
        """Forget these jobs whatever their state, skipping ids not held: a standby's copy
        told that the leader deleted them (actors.store.follower)."""
        with self._lock:
            for job_id in job_ids:
                entry = self._jobs.get(job_id)
                if entry is None:
                    continue
                self._drop(job_id, entry)
                if entry.state in self._ended:
                    self._unlink(entry.state)
                else:  # never from a leader, which deletes ended jobs; kept exact all the same
                    unique_key = record.read_row(entry.blob)[1].unique_key
                    if unique_key and self._unique.get(unique_key) == job_id:
                        del self._unique[unique_key]

    def _drop(self, job_id: str, entry: Entry) -> None:
        """Forget the job held as `entry` (lock held). A terminal job holds no unique key."""
        del self._jobs[job_id]
        self._counts[entry.queue][entry.state] -= 1
        if entry.request_id is not None:
            self._forget_request(entry.request_id, job_id)

    def _unlink(self, state: str) -> None:
        """A job ended in `state` was removed by hand, its entry left in `_ended` (finding it
        there is a scan). Once such entries outnumber half the deque (plus UNLINKED_SLACK), the
        deque is rebuilt from its live entries, so the records of deleted jobs do not outlive
        their deletion by long, and a rebuild's cost is paid for by the deletions since the
        last one (lock held)."""
        self._unlinked[state] += 1
        ended = self._ended[state]
        if self._unlinked[state] <= len(ended) // 2 + UNLINKED_SLACK:
            return
        jobs = self._jobs
        self._ended[state] = deque(item for item in ended if jobs.get(item[1]) is item[2])
        self._unlinked[state] = 0

    def _forget_request(self, request_id: str, job_id: str) -> None:
        """Drop the request id once the store holds none of the jobs it made (lock held)."""
        made = self._requests.get(request_id)
        if made == job_id or (
            # From the end: a batch mostly ends in order, so its last jobs are the ones held
            # and the scan stops at once; the whole tuple is read once, when its last job goes.
            isinstance(made, tuple)
            and not any(i in self._jobs for i in reversed(made))
            and job_id in made
        ):
            del self._requests[request_id]

    def after_commit(self, callback: Callable[[], None]) -> None:
        callback()  # nothing is ever pending in memory

    def close(self) -> None:
        pass

    def list(
        self,
        queue: str | None = None,
        state: str | None = None,
        type: str | None = None,  # the wire's field name, as in the `jobs` request
        limit: int = LIST_LIMIT,
    ) -> builtins.list[dict[str, Any]]:
        """Up to `limit` jobs matching every filter given, newest first (wire forms).

        Walks the jobs from the most recently enqueued and stops at `limit` matches, so the
        usual questions (the last jobs, the last failures) cost `limit` steps; a filter that
        matches nothing walks every job held (0.2 to 0.4 s per million). Filters read the
        entries; only the matches are unpacked. The lock is held only to copy the ids, so actors
        saving jobs meanwhile are not held up.
        """
        with self._lock:
            job_ids = builtins.list(self._jobs)
        blobs: builtins.list[bytes] = []
        for job_id in reversed(job_ids):
            entry = self._jobs.get(job_id)
            if (
                entry is None
                or (queue is not None and entry.queue != queue)
                or (state is not None and entry.state != state)
                or (type is not None and entry.type != type)
            ):
                continue
            blobs.append(entry.blob)
            if len(blobs) >= limit:
                break
        found = [record.unpack(blob) for blob in blobs]
        found.sort(key=lambda wire: (wire["created_at"], wire["id"]), reverse=True)
        return found


def _entry(job: Job) -> Entry:
    return Entry(job.queue, job.state, job.type, record.pack(job), job.request_id)


def _in_order(ended: deque[tuple[float, str, Entry]], start: int) -> bool:
    """Whether the entries from `start` on keep `ended` sorted (a standby's changes do,
    mostly: the deque is then not sorted anew at every catch-up). Reads only those entries,
    from the right end."""
    later = float("inf")
    for at, _, _ in islice(reversed(ended), len(ended) - start + (1 if start else 0)):
        if at > later:
            return False
        later = at
    return True
