"""The runner's table of what a node process' end means, and its restart backoff (pure)."""

from __future__ import annotations

import pytest

from nodes.process.restarts import ACTIONS, Action, Ended, RestartPolicy, Restarts, action

EXPECTED = {
    "coordinator": (Action.NOTHING, Action.STOP_RUN, Action.STOP_RUN),
    "worker": (Action.NOTHING, Action.LEFT, Action.RESTART),
    "producer": (Action.NOTHING, Action.FINISHED, Action.FINISHED),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
@pytest.mark.parametrize("ended", list(Ended))
def test_every_pair_of_the_table(kind: str, ended: Ended) -> None:
    assert ACTIONS[(kind, ended)] is EXPECTED[kind][list(Ended).index(ended)]


def test_the_table_has_every_pair_and_no_other() -> None:
    assert set(ACTIONS) == {(kind, ended) for kind in EXPECTED for ended in Ended}


@pytest.mark.parametrize(
    ("code", "asked", "ended"),
    [
        (0, True, Ended.ASKED),
        (1, True, Ended.ASKED),
        (0, False, Ended.CLEAN),
        (1, False, Ended.FAILED),
        (-9, False, Ended.FAILED),
    ],
)
def test_an_exit_is_asked_clean_or_failed(code: int, asked: bool, ended: Ended) -> None:
    assert action("worker", code, asked) is ACTIONS[("worker", ended)]


def test_the_backoff_doubles_to_its_maximum_then_gives_up_after_the_limit() -> None:
    restarts = Restarts(RestartPolicy(initial=1, maximum=30, limit=7, window=300))
    delays = [restarts.delay("w", now=float(t)) for t in range(8)]
    assert delays == [1, 2, 4, 8, 16, 30, 30, None]


def test_restarts_older_than_the_window_are_forgotten_and_nodes_count_apart() -> None:
    restarts = Restarts(RestartPolicy(initial=1, maximum=30, limit=2, window=60))
    assert [restarts.delay("w", 0.0), restarts.delay("w", 10.0)] == [1, 2]
    assert restarts.delay("w", 20.0) is None
    assert restarts.delay("other", 20.0) == 1
    assert restarts.delay("w", 65.0) == 2  # the restart at 0 s left the window; 10 s did not
