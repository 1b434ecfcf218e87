"""One msgpack map per frame: strict decoding with a size limit, and reply builders."""

from __future__ import annotations

from typing import Any

import msgpack

from transport.errors import BadRequest, TooLarge

MAX_MESSAGE_SIZE_BYTES = 1024 * 1024
MAX_RID_CHARS = 64
# Lists and maps nested deeper than this are refused. msgpack decodes up to 1,024 levels, but
# Python code that walks a value recursively (the timestamp check below, copies, re-encoding
# for a fetch reply) fails well before that; no job argument needs more than a few dozen.
MAX_DEPTH = 32  # the coordinator's default for requests (configurable: Limits.max_depth)
# Peers decoding replies allow more: a fetch reply holds a job's args one level deeper than the
# enqueue that carried them, and a coordinator may be configured up to PEER_MAX_DEPTH - 8.
PEER_MAX_DEPTH = 128

Rid = int | str


def _refuse_ext(code: int, data: bytes) -> Any:
    raise BadRequest(f"msgpack extension type {code} is not accepted")


def decode(
    frame: bytes, max_size: int = MAX_MESSAGE_SIZE_BYTES, max_depth: int = PEER_MAX_DEPTH
) -> dict[str, Any]:
    """Decode one frame into a map with string keys, or raise BadRequest/TooLarge.

    Extension types are refused (no object hooks, no pickle-like surprises), every
    container length is bounded by the frame size, so a tiny frame cannot claim a huge array,
    and nesting is bounded by `max_depth` (the frame itself is level 1).
    """
    if len(frame) > max_size:
        raise TooLarge(f"frame of {len(frame)} bytes exceeds max_message_size {max_size}")
    value = _unpack(frame)
    if deeper_than(value, max_depth):
        raise BadRequest(f"lists and maps nest deeper than {max_depth} levels")
    if any(marker in frame for marker in _TIMESTAMP_MARKERS) and _holds_timestamp(value):
        raise BadRequest("msgpack extension type -1 (timestamp) is not accepted")
    if not isinstance(value, dict):
        raise BadRequest("a frame must be a msgpack map")
    for key in value:
        if not isinstance(key, str):
            raise BadRequest("map keys must be strings")
    return value


# The timestamp extension (-1) is decoded by msgpack itself, never through ext_hook; these are
# its three encodings. Only a frame holding one of these byte pairs pays for a full walk.
_TIMESTAMP_MARKERS = (b"\xd6\xff", b"\xd7\xff", b"\xc7\x0c\xff")


def deeper_than(value: Any, levels: int) -> bool:
    """True if `value` holds lists or maps nested more than `levels` deep (itself included).

    Level by level rather than by recursion: a comprehension per container instead of a call,
    ~45% less time on a fetch reply of 50 jobs, where the check cost more than the unpacking.
    msgpack yields plain `dict` and `list` only, so exact type checks suffice.
    """
    if type(value) is not dict and type(value) is not list:
        return False
    frontier: list[Any] = [value]
    for _ in range(levels):
        children: list[Any] = []
        for container in frontier:
            items = container.values() if type(container) is dict else container
            children += [item for item in items if type(item) is dict or type(item) is list]
        if not children:
            return False
        frontier = children
    return True


def _holds_timestamp(value: Any) -> bool:
    if isinstance(value, msgpack.Timestamp):
        return True
    if isinstance(value, dict):
        return any(_holds_timestamp(k) or _holds_timestamp(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_timestamp(item) for item in value)
    return False


def _unpack(frame: bytes) -> Any:
    try:
        return msgpack.unpackb(
            frame,
            raw=False,
            strict_map_key=True,
            ext_hook=_refuse_ext,
            timestamp=0,
        )
    except BadRequest:
        raise
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise BadRequest(f"undecodable frame: {type(exc).__name__}") from None


def readable_rid(frame: bytes) -> Rid | None:
    """The rid of a frame refused for its size, when it can be read (to echo it)."""
    try:
        value = _unpack(frame)
    except BadRequest:
        return None
    rid = value.get("rid") if isinstance(value, dict) else None
    return rid if valid_rid(rid) else None


def encode(message: dict[str, Any]) -> bytes:
    """Encode one map as a frame."""
    return msgpack.packb(message, use_bin_type=True)


def valid_rid(value: Any) -> bool:
    """True for an int >= 0 or a string of at most 64 characters (PROTOCOL.md section 2)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and len(value) <= MAX_RID_CHARS


def reply(rid: Rid, **fields: Any) -> bytes:
    """A success reply frame."""
    return encode({"type": "reply", "rid": rid, **fields})


def error(code: str, message: str, rid: Rid | None = None) -> bytes:
    """An error frame; rid is left out only when it could not be read."""
    body: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if rid is not None:
        body["rid"] = rid
    return encode(body)
