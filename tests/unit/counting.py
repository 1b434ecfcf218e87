"""Counting a heap's work: a claim's cost is asserted in comparisons, never in seconds."""

from __future__ import annotations


class CountedSeq(int):
    """An enqueue sequence number that counts how often the heap compares it."""

    __slots__ = ()
    comparisons = 0

    def __lt__(self, other: object) -> bool:
        CountedSeq.comparisons += 1
        return int.__lt__(self, other)  # type: ignore[operator]


class CountedTime(float):
    """An `expires_at` that counts how often a heap compares it (by `<`, as heapq does)."""

    __slots__ = ()
    comparisons = 0

    def __lt__(self, other: object) -> bool:
        CountedTime.comparisons += 1
        return float.__lt__(self, other)  # type: ignore[operator]
