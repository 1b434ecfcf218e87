"""OJS times on the HTTP side: RFC 3339 timestamps and ISO-8601 durations, to and from the
UNIX seconds corral's wire uses (PROTOCOL.md section 1)."""

from __future__ import annotations

import re
import time
from datetime import datetime

from nodes.gateway.errors import invalid

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?"
)
_UNIT_S = {"weeks": 604_800.0, "days": 86_400.0, "hours": 3_600.0, "minutes": 60.0, "seconds": 1.0}
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def duration_s(text: object, field: str) -> float:
    """Seconds of an ISO-8601 duration such as `PT1S`, `PT5M` or `P1DT2H` (no years or months:
    their length in seconds depends on the calendar)."""
    match = _DURATION.fullmatch(text) if isinstance(text, str) and text != "P" else None
    if match is None or text.endswith("T") or not any(match.groupdict().values()):
        raise invalid(f"{field} must be an ISO-8601 duration such as PT30S, got {text!r}")
    return sum(float(value) * _UNIT_S[unit] for unit, value in match.groupdict().items() if value)


def timestamp_s(text: object, field: str, now: float) -> float:
    """UNIX seconds of an RFC 3339 timestamp with a zone (`2026-02-12T10:30:00Z`), or of a
    duration from now written `+PT5S`."""
    if isinstance(text, str) and text.startswith("+"):
        return now + duration_s(text[1:], field)
    if not isinstance(text, str) or _STAMP.fullmatch(text) is None:
        raise invalid(f"{field} must be an RFC 3339 timestamp with a time zone, got {text!r}")
    try:
        return datetime.fromisoformat(text.replace("z", "Z")).timestamp()
    except ValueError as exc:
        raise invalid(f"{field}: {exc}") from None


def rfc3339(seconds: float) -> str:
    """`2026-02-12T10:30:00.000Z`: UTC with milliseconds, as the binding writes times
    (time.strftime: half the cost of a datetime, and every job view writes two or three)."""
    whole, millis = divmod(int(seconds * 1000), 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"
