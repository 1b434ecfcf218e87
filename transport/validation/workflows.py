"""Workflow requests (docs/PROTOCOL.md, "Workflows"): workflow, workflow_get, workflow_cancel.

A workflow is a tree of nodes, each a JobSpec map (one step), `{chain: [node, ...]}` (each
node after the one before) or `{group: [node, ...], callback?: node}` (side by side, the
callback after all of them). `compile_workflow` turns it into steps in an order where every
step follows the steps it waits for, passing each node the steps it comes after: a chain's
node comes after the previous node's last steps, a group's members after what the group comes
after, a callback after every member's last steps. A group of n with a callback is n + 1 steps
and n dependencies: fan-in is linear. A chain step after a group waits for each of its last
steps, so a group followed by a group of m costs n x m dependencies; the whole workflow may
have at most `max_list_items` (100,000) of them. It may have at most twice `max_batch_jobs`
(20,000) steps: its reply lists every step's id and state, ~50 bytes each, and must fit in one
frame of `max_message_size` (1 MiB).

A step may not carry a `unique_key`: a duplicate of a live job would not be made, and the
steps after it would wait for a job that never exists. A workflow is made once per request
id instead (its id).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from transport import jobspec
from transport import messages as m
from transport.errors import BadRequest
from transport.validation.fields import Parser, integer, string
from transport.validation.jobs import REQUEST_ID_CHARS, job_spec
from transport.validation.limits import Limits

GET_LIMIT = 1_000  # steps a workflow_get lists unless asked for another number
FLOW_KEYS = ("depends_on",)  # set by the workflow, not by a step
# a step's own failure policy (extension "Step policies") and whether it takes its parents'
# results: not passed on to the step's JobSpec
STEP_ONLY = frozenset({"pass_results", "on_failure", *FLOW_KEYS})


class _Compiler:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps: list[m.WorkflowStep] = []
        self.edges = 0

    def node(self, raw: Any, after: tuple[int, ...], where: str) -> tuple[int, ...]:
        """Compile one node placed after the steps `after`; returns its last steps."""
        if not isinstance(raw, dict):
            raise BadRequest(f"{where}: a workflow node must be a map")
        if "chain" in raw or "group" in raw:
            return self._composite(raw, after, where)
        return (self._step(raw, after, where),)

    def _composite(
        self, raw: dict[str, Any], after: tuple[int, ...], where: str
    ) -> tuple[int, ...]:
        kind = "chain" if "chain" in raw else "group"
        allowed = {"chain"} if kind == "chain" else {"group", "callback"}
        unknown = sorted(set(raw) - allowed)
        if unknown:
            raise BadRequest(f"{where}: a {kind} takes no {', '.join(map(repr, unknown))}")
        members = raw[kind]
        if not isinstance(members, list) or not members:
            raise BadRequest(f"{where}.{kind} must be a non-empty list of nodes")
        if kind == "chain":
            for index, member in enumerate(members):
                after = self.node(member, after, f"{where}.chain[{index}]")
            return after
        last: list[int] = []
        for index, member in enumerate(members):
            last += self.node(member, after, f"{where}.group[{index}]")
        if raw.get("callback") is not None:
            return self.node(raw["callback"], tuple(last), f"{where}.callback")
        return tuple(last)

    def _step(self, raw: dict[str, Any], after: tuple[int, ...], where: str) -> int:
        given = [key for key in FLOW_KEYS if raw.get(key) not in (None, [])]
        if given:
            raise BadRequest(f"{where}: a workflow sets {given[0]} itself, from the step's place")
        for key in ("unique_key", "id"):
            if raw.get(key) is not None:
                raise BadRequest(
                    f"{where}: a workflow step cannot carry {key!r} (resend the workflow with"
                    " its request_id to make it once)"
                )
        pass_results = raw.get("pass_results")
        pass_results = True if pass_results is None else pass_results
        if not isinstance(pass_results, bool):
            raise BadRequest(f"{where}.pass_results must be a boolean")
        on_failure = raw.get("on_failure")
        if on_failure is not None and on_failure not in jobspec.ON_FAILURE:
            choices = ", ".join(jobspec.ON_FAILURE)
            raise BadRequest(f"{where}.on_failure must be one of {choices}")
        spec_map = {key: value for key, value in raw.items() if key not in STEP_ONLY}
        try:
            spec = job_spec(spec_map, check_size=True, limits=self.limits)
        except BadRequest as exc:
            raise BadRequest(f"{where}: {exc.message}") from None
        most_steps, most_edges = 2 * self.limits.max_batch_jobs, self.limits.max_list_items
        self.edges += len(after)
        if len(self.steps) >= most_steps:
            raise BadRequest(f"{where}: a workflow may have at most {most_steps} steps")
        if self.edges > most_edges:
            raise BadRequest(
                f"{where}: a workflow may have at most {most_edges} dependencies (a group"
                " followed by a group waits for every pair: put a callback between)"
            )
        self.steps.append(m.WorkflowStep(spec, after, pass_results, on_failure))
        return len(self.steps) - 1


def compile_workflow(raw: Any, limits: Limits) -> tuple[m.WorkflowStep, ...]:
    """The steps of a workflow tree, every step after the steps it waits for."""
    compiler = _Compiler(limits)
    compiler.node(raw, (), "workflow")
    return tuple(compiler.steps)


def with_parents(step: m.WorkflowStep, job_ids: list[str], on_failure: str) -> jobspec.JobSpec:
    """The step's JobSpec, waiting for its parents (by the ids their jobs were given), under
    its own failure policy or else the workflow's `on_failure`."""
    policy = step.on_failure or on_failure
    flow = jobspec.Flow(
        tuple(job_ids[p] for p in step.parents), policy, step.pass_results, workflow=True
    )
    return replace(step.spec, flow=flow)


def _submit(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.WorkflowSubmit:
    on_failure = string(b, "on_failure", "cancel")
    if on_failure not in jobspec.ON_FAILURE:
        raise BadRequest(f"field 'on_failure' must be one of {', '.join(jobspec.ON_FAILURE)}")
    if b.get("workflow") is None:
        raise BadRequest("missing field 'workflow'")
    return m.WorkflowSubmit(
        rid,
        compile_workflow(b["workflow"], limits),
        on_failure,
        string(b, "request_id", None, limit=REQUEST_ID_CHARS),
    )


def _workflow_id(b: dict[str, Any]) -> str:
    return string(b, "workflow_id", limit=REQUEST_ID_CHARS)


def _get(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.WorkflowGet:
    limit = integer(b, "limit", GET_LIMIT, minimum=0)
    if limit > limits.max_list_items:
        raise BadRequest(f"field 'limit' must be at most {limits.max_list_items}")
    return m.WorkflowGet(rid, _workflow_id(b), limit)


def _cancel(b: dict[str, Any], rid: m.Rid, size: int, limits: Limits) -> m.WorkflowCancel:
    return m.WorkflowCancel(rid, _workflow_id(b))


PARSERS: dict[str, Parser] = {
    "workflow": _submit,
    "workflow_get": _get,
    "workflow_cancel": _cancel,
}
