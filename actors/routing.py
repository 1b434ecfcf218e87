"""Label routing (PROTOCOL.md section 6): who may take a job, and the most-specific rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

RouteClass = tuple[str, tuple[tuple[str, str], ...]]  # (job type, sorted route items)


@dataclass(frozen=True, slots=True)
class WorkerProfile:
    """What the queues need to know about one live, registered worker."""

    worker_id: str
    queues: frozenset[str]
    functions: frozenset[str]
    labels: tuple[tuple[str, frozenset[str]], ...]

    @classmethod
    def build(
        cls,
        worker_id: str,
        queues: Iterable[str],
        functions: Iterable[str] = (),
        labels: Mapping[str, Iterable[str]] | None = None,
    ) -> WorkerProfile:
        """A profile from plain collections (labels sorted, so equal workers compare equal)."""
        return cls(
            worker_id,
            frozenset(queues),
            frozenset(functions),
            tuple(sorted((key, frozenset(values)) for key, values in (labels or {}).items())),
        )

    @property
    def specificity(self) -> int:
        return len(self.labels)


def route_class(
    job_type: str, route: Mapping[str, str], label_keys: frozenset[str] | None = None
) -> RouteClass:
    """Jobs of one class have exactly the same eligible workers.

    Only route keys that some worker has as a label key can matter, so the others (a trace id,
    say) are left out: a class per distinct trace id would make every claim scan them all.
    """
    items = (
        route.items() if label_keys is None else [i for i in route.items() if i[0] in label_keys]
    )
    return job_type, tuple(sorted(items))


def eligible(worker: WorkerProfile, queue: str, job_class: RouteClass) -> bool:
    """Queue among the worker's, type among its functions (if any), every label key matched."""
    job_type, route_items = job_class
    if queue not in worker.queues:
        return False
    if worker.functions and job_type not in worker.functions:
        return False
    route = dict(route_items)
    return all(route.get(key) in values for key, values in worker.labels)


class Routing:
    """The live worker profiles of one queue, with the most-specific rule cached per class."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self._workers: dict[str, WorkerProfile] = {}
        self._top: dict[RouteClass, int] = {}
        self.label_keys: frozenset[str] = frozenset()

    def update(self, workers: tuple[WorkerProfile, ...]) -> bool:
        """Replace the worker set (a worker registered, left or died).

        Returns True when the set of label keys changed, so route classes must be recomputed.
        """
        self._workers = {w.worker_id: w for w in workers if self.queue in w.queues}
        self._top.clear()
        keys = frozenset(key for w in self._workers.values() for key, _ in w.labels)
        changed, self.label_keys = keys != self.label_keys, keys
        return changed

    def top_specificity(self, job_class: RouteClass) -> int:
        """Label-key count of the most specific eligible worker; -1 when none is eligible."""
        top = self._top.get(job_class)
        if top is None:
            top = max(
                (
                    w.specificity
                    for w in self._workers.values()
                    if eligible(w, self.queue, job_class)
                ),
                default=-1,
            )
            self._top[job_class] = top
        return top

    def may_take(self, worker: WorkerProfile, job_class: RouteClass) -> bool:
        """Eligible, and among the most specific eligible workers."""
        return eligible(
            worker, self.queue, job_class
        ) and worker.specificity == self.top_specificity(job_class)
