"""The coordinator's `job_limits:` key: limits per job type or per queue (actors/limits.py).

    job_limits:
      - job_type: sync_account       # or `queue: emails` (exactly one of the two)
        concurrency: 2               # at most 2 active jobs per concurrency_key
        rate: {count: 100, per: 60}  # at most 100 starts per 60 s per key (a token bucket)

Each entry needs `concurrency`, `rate` or both. The rate map is checked as a job's
`rate_limit` is on the wire; names are checked as schedule names are (the default
`max_name_chars`); a second rule for the same job type or queue is refused.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from actors.limits import LimitRule
from nodes.config import fields as f
from nodes.config.fields import Where
from transport.errors import BadRequest
from transport.jobspec import Rate
from transport.validation.jobs import rate
from transport.validation.limits import DEFAULT_LIMITS

RATE_KEYS = ("count", "per")


def _name(value: Any, where: Where, name: str) -> str:
    text = f.text(value, where, name)
    chars = DEFAULT_LIMITS.max_name_chars
    if len(text) > chars:
        raise where.error(f"expected at most {chars} characters, got {len(text)}", name)
    return text


def _rate(value: Any, where: Where, name: str) -> Rate:
    unknown = [key for key in value if key not in RATE_KEYS] if isinstance(value, dict) else []
    if unknown:
        key = f"{name}.{unknown[0]}"
        raise where.error(f"unknown key {key!r} (a rate has count and per)", at=key)
    try:
        return rate(value, name)
    except BadRequest as exc:  # "field 'job_limits[0].rate.per' must be ...": names the key
        raise where.error(exc.message, at=name) from None


@dataclass(frozen=True, kw_only=True)
class _Entry:
    """The keys of one `job_limits` item (LimitRule checks how they combine)."""

    job_type: str | None = field(default=None, metadata=f.check(_name))
    queue: str | None = field(default=None, metadata=f.check(_name))
    concurrency: int | None = field(default=None, metadata=f.POSITIVE_INT)
    rate: Rate | None = field(default=None, metadata=f.check(_rate))


def parse_job_limits(value: Any, where: Where, name: str) -> tuple[LimitRule, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise where.error("expected a list of limits", name)
    rules: dict[str, LimitRule] = {}
    for index, raw in enumerate(value):
        at = f"{name}[{index}]"
        try:
            rule = LimitRule(**f.parse_keys(raw, _Entry, where, f"{at}."))
        except ValueError as exc:  # both or neither of job_type/queue, nothing to limit
            raise where.error(str(exc), at) from None
        if rule.scope in rules:
            named = f"job_type {rule.job_type!r}" if rule.job_type else f"queue {rule.queue!r}"
            raise where.error(f"a second limit for {named}", at)
        rules[rule.scope] = rule
    return tuple(rules.values())
