"""A seed replays exactly: the random-fault simulation run twice with one seed gives the same
event trace, event for event (docs/ARCHITECTURE.md, "Time, randomness, determinism"), as
the `seed=N` a failing simulation prints relies on.

The trace is the History's: every coordinator event (enqueued, started, retried, recovered,
terminal, workers joined and lost, fetches answered, with each job's id, state, attempt and
worker) and every handler start, in the order they happened, then the network's counts of
frames delivered and dropped.

The seeds draw workers of every concurrency: a worker with two or more slots runs the jobs of
one fetch on threads of their own, which take turns in a deterministic order (actors/turns.py),
so the order they finish in, and of the outcomes it reports, is the seed's too.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.sim.conftest import History
from tests.sim.test_failover_sim import run_ha_seed
from tests.sim.test_random_faults import run_seed

# of test_random_faults' seeds: concurrency 1 (3 workers), 2 (4, 2), 3 (3, 4)
SEEDS = (7, 0, 4, 5, 9)


def trace_of(make_cluster: Any, seed: int, scenario: Any = run_seed) -> list[tuple[Any, ...]]:
    """Run test_random_faults' scenario (or another) for `seed`; return its trace."""
    history = History()
    made: list[Any] = []

    def make(*args: Any, **options: Any) -> Any:
        made.append(make_cluster(*args, observed=history, **options))
        return made[-1]

    scenario(make, history, seed)
    (cluster,) = made
    return [*history.trace, ("network", cluster.network.delivered, cluster.network.dropped)]


@pytest.mark.parametrize("seed", SEEDS, ids=lambda s: f"seed_{s}")
def test_one_seed_run_twice_gives_the_same_event_trace(make_cluster, seed):
    first = trace_of(make_cluster, seed)
    second = trace_of(make_cluster, seed)
    assert len(first) > 100, "too short a trace to show anything"
    for n, (a, b) in enumerate(zip(first, second, strict=False)):
        assert a == b, f"seed={seed} diverged at event {n}: {a} != {b}"
    assert len(first) == len(second)


def test_another_seed_gives_another_trace(make_cluster):
    assert trace_of(make_cluster, SEEDS[0]) != trace_of(make_cluster, SEEDS[1])


@pytest.mark.parametrize("seed", (1, 2), ids=lambda s: f"seed_{s}")
def test_a_seed_with_failovers_between_two_coordinators_replays_too(make_cluster, seed):
    first = trace_of(make_cluster, seed, run_ha_seed)
    second = trace_of(make_cluster, seed, run_ha_seed)
    assert len(first) > 50, "too short a trace to show anything"
    for n, (a, b) in enumerate(zip(first, second, strict=False)):
        assert a == b, f"seed={seed} diverged at event {n}: {a} != {b}"
    assert len(first) == len(second)
