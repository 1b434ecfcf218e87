"""A workflow's steps laid out as a tree, for the terminal (`corral workflow get`) and the
dashboard alike: each step under its last parent, a chain down one column."""

from __future__ import annotations

from typing import Any

SHORT_ID = 12  # the last characters of a job id: the random part of a UUIDv7
BRANCH, LAST_BRANCH, PIPE, SPACE = "├─ ", "└─ ", "│  ", "   "


def tree_rows(steps: list[dict[str, Any]]) -> list[tuple[str, int]]:
    """Each step's tree prefix and index, in the order drawn (depth first, children in the
    order made). Iterative: a tree deeper than Python's recursion limit still draws."""
    children: list[list[int]] = [[] for _ in steps]
    roots: list[int] = []
    for index, step in enumerate(steps):
        (children[max(step["after"])] if step["after"] else roots).append(index)
    rows: list[tuple[str, int]] = []
    stack = _placed(roots, "", steps)[::-1]
    while stack:
        index, prefix, indent = stack.pop()
        rows.append((prefix, index))
        stack += _placed(children[index], indent, steps)[::-1]
    return rows


def _placed(
    kids: list[int], indent: str, steps: list[dict[str, Any]]
) -> list[tuple[int, str, str]]:
    """Where `kids` go below their parent, whose children are at `indent`: (index, prefix of
    its line, indent of its own children). An only kid waiting for its parent alone goes on
    at the parent's level; otherwise each kid branches off."""
    if len(kids) == 1 and len(steps[kids[0]]["after"]) <= 1:
        return [(kids[0], indent, indent)]
    placed: list[tuple[int, str, str]] = []
    for kid in kids:
        last = kid == kids[-1]
        branch, below = (LAST_BRANCH, SPACE) if last else (BRANCH, PIPE)
        placed.append((kid, indent + branch, indent + below))
    return placed
