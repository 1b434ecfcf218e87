"""`corral workflow get|cancel` without a coordinator: the tree drawn from a `workflow_get`
reply (made here by the coordinator's own compiler and view, so its shape is the real one),
and the commands over a stand-in Client. Against a real coordinator over TCP:
tests/integration/test_workflow_cli.py."""

from __future__ import annotations

import io
import json
import re
import sys
from typing import Any

import pytest

from nodes import chain, cli, group, step
from nodes.cli import commands as cli_commands
from nodes.cli import views
from nodes.cli.workflow import workflow_view
from nodes.observe.workflow_tree import tree_rows
from tests.unit.workflow_replies import workflow_reply
from transport.errors import UnknownJob

NOWHERE = ["--connect", "tcp://127.0.0.1:1", "--timeout", "0.2"]
ROW = re.compile(r"^ (?P<step>.*?) +(?P<job>[0-9a-f]{12}) +(?P<state>[a-z]+) +(?P<attempt>\d+)$")


def reply(
    tree: dict[str, Any], limit: int = 1000, states: dict[int, str] | None = None
) -> dict[str, Any]:
    """What `workflow_get` answers for `tree`, every step completed unless `states` says."""
    return {"type": "reply", "rid": 1, **workflow_reply(tree, limit, states)}


def drawn(shown: dict[str, Any]) -> list[str]:
    """The lines `corral workflow get` prints on a pipe."""
    out = io.StringIO()
    views.show(out, workflow_view(shown))
    return out.getvalue().splitlines()


def rows(lines: list[str]) -> list[dict[str, str]]:
    """The table's rows: the step (tree prefix, type, note), short job id, state, attempt."""
    return [found.groupdict() for line in lines if (found := ROW.match(line))]


def tree(shown: dict[str, Any]) -> list[str]:
    return [row["step"] for row in rows(drawn(shown))]


def test_a_chain_reads_down_one_column_in_the_order_it_runs() -> None:
    lines = drawn(
        reply(chain(step("fetch"), step("resize"), step("publish")), states={2: "active"})
    )

    assert lines[:2] == ["Workflow wf-1: running", "3 steps: 1 active, 2 completed"]
    assert rows(lines) == [
        {"step": "fetch", "job": "000000000000", "state": "completed", "attempt": "1"},
        {"step": "resize", "job": "000000000001", "state": "completed", "attempt": "1"},
        {"step": "publish", "job": "000000000002", "state": "active", "attempt": "1"},
    ]
    assert "more not shown" not in "\n".join(lines)


def test_a_group_branches_and_its_callback_hangs_once_under_its_last_parent() -> None:
    workflow = chain(
        step("fetch"),
        group(
            step("resize"),
            chain(step("resize"), step("upload")),
            step("resize"),
            callback=step("merge"),
        ),
        step("publish"),
    )

    assert tree(reply(workflow)) == [
        "fetch",
        "├─ resize",
        "├─ resize",
        "│  upload",
        "└─ resize",
        "   └─ merge (after 3 steps)",
        "      publish",
    ]


def test_a_group_at_the_start_branches_from_the_top() -> None:
    workflow = group(step("w"), step("w"), callback=chain(step("m"), group(step("x"), step("y"))))

    assert tree(reply(workflow)) == [
        "├─ w",
        "└─ w",
        "   └─ m (after 2 steps)",
        "      ├─ x",
        "      └─ y",
    ]


def test_a_long_chain_stops_at_the_limit_says_how_many_are_left_out_and_stays_narrow() -> None:
    shown = reply(chain(*(step("square", [i]) for i in range(10_000))), limit=200)
    lines = drawn(shown)

    assert lines[1] == "10000 steps: 10000 completed"
    assert [row["step"] for row in rows(lines)] == ["square"] * 200
    assert lines[-1] == (
        "... and 9800 more not shown (the first 200 of 10000 steps; --limit N shows more)"
    )
    assert max(len(line) for line in lines) <= 80


def test_a_tree_deeper_than_the_recursion_limit_is_laid_out() -> None:
    stages = sys.getrecursionlimit()  # each group and its callback: two levels deeper
    workflow = chain(*(group(step("a"), step("b"), callback=step("c")) for _ in range(stages)))

    laid = tree_rows(reply(workflow, limit=3 * stages)["steps"])
    assert [index for _, index in laid] == list(range(3 * stages))
    assert len(laid[-1][0]) == 3 * 2 * stages  # the last callback: 2 x stages levels deep


def test_a_failed_workflow_says_so_and_counts_its_states_in_their_order() -> None:
    lines = drawn(reply(chain(step("a"), step("b")), states={0: "discarded", 1: "cancelled"}))

    assert lines[:2] == ["Workflow wf-1: failed", "2 steps: 1 discarded, 1 cancelled"]


# -- the commands over a stand-in Client --------------------------------------------------------


class StandIn:
    """What the commands ask of a Client, answered from `shown`; `wf-9` exists nowhere."""

    asked: list[tuple[str, Any]]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.shown = reply(chain(step("fetch"), group(step("a"), step("b"))))

    def __enter__(self) -> StandIn:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def workflow(self, workflow_id: str, limit: int = 1000) -> dict[str, Any]:
        StandIn.asked.append(("workflow", (workflow_id, limit)))
        if workflow_id == "wf-9":
            raise UnknownJob("no workflow wf-9", context="workflow_get")
        return self.shown

    def cancel_workflow(self, workflow_id: str) -> int:
        StandIn.asked.append(("cancel_workflow", workflow_id))
        return 2


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch) -> type[StandIn]:
    StandIn.asked = []
    monkeypatch.setattr(cli_commands, "Client", StandIn)
    return StandIn


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = cli.main(list(argv))
    except SystemExit as exc:  # argparse's own refusals
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_get_asks_for_the_limit_and_draws_the_tree(capsys, stand_in) -> None:
    code, out, err = run(capsys, "workflow", "get", "wf-1", "--limit", "5", *NOWHERE)

    assert (code, err) == (0, "")
    assert stand_in.asked == [("workflow", ("wf-1", 5))]
    assert out.startswith("Workflow wf-1: completed\n3 steps: 3 completed\n")
    assert [row["step"] for row in rows(out.splitlines())] == ["fetch", "├─ a", "└─ b"]


def test_get_json_is_the_reply_without_its_envelope(capsys, stand_in) -> None:
    code, out, _ = run(capsys, "workflow", "get", "wf-1", "--json", *NOWHERE)

    assert code == 0
    assert stand_in.asked == [("workflow", ("wf-1", 200))]  # the default limit
    expected = {k: v for k, v in StandIn().shown.items() if k not in ("type", "rid")}
    assert json.loads(out) == expected


def test_an_unknown_workflow_is_one_line_on_stderr_and_exit_1(capsys, stand_in) -> None:
    code, out, err = run(capsys, "workflow", "get", "wf-9", *NOWHERE)

    assert (code, out) == (1, "")
    assert err == "error: unknown_job: no workflow wf-9\n"


def test_cancel_prints_how_many_steps_were_asked_to_cancel(capsys, stand_in) -> None:
    code, out, _ = run(capsys, "workflow", "cancel", "wf-1", *NOWHERE)

    assert code == 0
    assert stand_in.asked == [("cancel_workflow", "wf-1")]
    assert out == "workflow wf-1: 2 steps asked to cancel\n"


@pytest.mark.parametrize("limit", ["0", "-3", "many"])
def test_a_limit_that_is_not_a_positive_count_is_refused_before_anything_is_sent(
    capsys, stand_in, limit
) -> None:
    code, _, err = run(capsys, "workflow", "get", "wf-1", "--limit", limit, *NOWHERE)

    assert code == 2
    assert "--limit" in err and len(err.strip().splitlines()) == 1
    assert stand_in.asked == []
