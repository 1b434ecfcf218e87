"""What a job is made of on the wire: its spec and the values inside it (retry policy, limit,
flow), and the job states. Frozen, slotted, compact: a million queued jobs keep theirs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# PROTOCOL.md section 5, and `deferred` (the extension "Workflows": a job waiting for its
# parents); actors.states builds the lifecycle table on these names.
JOB_STATES = (
    "deferred",
    "scheduled",
    "available",
    "active",
    "retryable",
    "completed",
    "discarded",
    "cancelled",
)


EXPONENTIAL, LINEAR = "exponential", "linear"
BACKOFFS = (EXPONENTIAL, LINEAR)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Backoff of PROTOCOL.md section 5; `backoff` is the extension "Linear backoff"."""

    initial_interval: float = 1.0
    backoff_coefficient: float = 2.0
    max_interval: float = 300.0
    jitter: bool = True
    backoff: str = EXPONENTIAL

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {
            "initial_interval": self.initial_interval,
            "backoff_coefficient": self.backoff_coefficient,
            "max_interval": self.max_interval,
            "jitter": self.jitter,
        }
        if self.backoff != EXPONENTIAL:  # base-protocol peers see the map they know
            wire["backoff"] = self.backoff
        return wire


DEFAULT_RETRY = RetryPolicy()


@dataclass(frozen=True, slots=True)
class Rate:
    """At most `count` starts per `per` seconds (a token bucket: `count` tokens, refilled at
    count/per a second)."""

    count: int
    per: float

    def to_wire(self) -> dict[str, Any]:
        return {"count": self.count, "per": self.per}


@dataclass(frozen=True, slots=True)
class JobLimit:
    """A job's limit fields (docs/PROTOCOL.md extension "Limits"): the key it is counted under,
    and its own limits, which take the place of any configured for its type or queue."""

    key: str | None = None
    concurrency: int | None = None
    rate: Rate | None = None

    @property
    def own(self) -> bool:
        """True when the job names a limit of its own (not only a key for a configured one)."""
        return self.concurrency is not None or self.rate is not None

    @classmethod
    def of_wire(cls, wire: Mapping[str, Any]) -> JobLimit | None:
        """The limit of a trusted Job map (a stored one), None when it names none."""
        key, concurrency, rate = (
            wire.get("concurrency_key"),
            wire.get("concurrency_limit"),
            wire.get("rate_limit"),
        )
        if key is None and concurrency is None and rate is None:
            return None
        return cls(key, concurrency, Rate(rate["count"], rate["per"]) if rate else None)

    def to_wire(self) -> dict[str, Any]:
        """The limit's fields of the Job map: only those set."""
        wire: dict[str, Any] = {}
        if self.key is not None:
            wire["concurrency_key"] = self.key
        if self.concurrency is not None:
            wire["concurrency_limit"] = self.concurrency
        if self.rate is not None:
            wire["rate_limit"] = self.rate.to_wire()
        return wire


# The route and meta of every job that has none: one shared map, read-only so that sharing it is
# safe (a dict per job cost 64 bytes each, twice, with a million jobs queued). msgpack cannot
# pack a mappingproxy: the wire forms give `{}` for it (actors.jobs, actors.store.record).
EMPTY_MAP: Mapping[str, Any] = MappingProxyType({})
NAMES_KEPT = 10_000
_names: dict[str, str] = {}


def shared_name(text: str) -> str:
    """One str object per distinct job type or queue name.

    msgpack decodes a new string per occurrence, so a million queued jobs would hold a million
    copies of "default". Not `sys.intern`: from Python 3.12 interned strings are immortal, and
    names are chosen by clients, so a stream of distinct names would never be freed. This cache
    forgets every name once it holds NAMES_KEPT (sharing is an optimisation, not a rule).
    """
    name = _names.get(text)
    if name is None:
        if len(_names) >= NAMES_KEPT:
            _names.clear()
        name = _names.setdefault(text, text)
    return name


# What a parent's failure does to its dependents: cancels them, lets them run (given None for
# its result), or is what they wait for: `only` runs a job only when some parent failed
# (cancelled as `not_needed` once all completed), as an OJS batch's on_failure callback.
ON_FAILURE = ("cancel", "continue", "only")


@dataclass(frozen=True, slots=True)
class Flow:
    """A job's place in a workflow (docs/PROTOCOL.md extension "Workflows"): the jobs it waits
    for, what their failure does to it, whether it gets their results as its last argument,
    and whether it belongs to a workflow (whose id is the request id that made it)."""

    depends_on: tuple[str, ...] = ()
    on_failure: str = "cancel"
    pass_results: bool = True
    workflow: bool = False

    def to_wire(self, request_id: str | None) -> dict[str, Any]:
        """The flow's fields of the Job map."""
        wire: dict[str, Any] = {"depends_on": list(self.depends_on), "on_failure": self.on_failure}
        if not self.pass_results:
            wire["pass_results"] = False
        if self.workflow and request_id is not None:
            wire["workflow_id"] = request_id
        return wire

    @classmethod
    def of_wire(cls, wire: Mapping[str, Any]) -> Flow | None:
        """The flow of a trusted Job map (a stored one), None when it has none."""
        if "depends_on" not in wire:
            return None
        return cls(
            tuple(wire["depends_on"]),
            wire.get("on_failure", "cancel"),
            wire.get("pass_results", True),
            "workflow_id" in wire,
        )


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What a client sends, with every default filled in.

    Compact because a million queued jobs keep theirs: `args` a tuple (the shared `()` when
    empty), `route` and `meta` EMPTY_MAP when empty, `type` and `queue` shared strings
    (`shared_name`).
    """

    type: str
    args: tuple[Any, ...] = ()
    queue: str = "default"
    priority: int = 0
    scheduled_at: float | None = None
    max_attempts: int = 3
    retry: RetryPolicy = DEFAULT_RETRY
    timeout: float | None = None
    route: Mapping[str, str] = field(default_factory=lambda: EMPTY_MAP)
    unique_key: str | None = None
    meta: Mapping[str, Any] = field(default_factory=lambda: EMPTY_MAP)
    limit: JobLimit | None = None  # concurrency_key, concurrency_limit, rate_limit
    flow: Flow | None = None  # depends_on, on_failure, pass_results
    id: str | None = None  # the client's own job id (docs/PROTOCOL.md extension "Job ids")
    # no attempt starts at or after it, UNIX seconds (docs/PROTOCOL.md extension "Expiry")
    expires_at: float | None = None
    # the longest one attempt runs, from its start (docs/PROTOCOL.md extension "Run timeout")
    run_timeout: float | None = None
