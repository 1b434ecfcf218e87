"""One msgpack map per frame: strict decoding with a size limit, and reply builders."""

from __future__ import annotations

from typing import Any

import msgpack

from transport.errors import BadRequest, TooLarge

MAX_MESSAGE_SIZE_BYTES = 1024 * 1024
MAX_RID_CHARS = 64

Rid = int | str


def _refuse_ext(code: int, data: bytes) -> Any:
    raise BadRequest(f"msgpack extension type {code} is not accepted")


def decode(frame: bytes, max_size: int = MAX_MESSAGE_SIZE_BYTES) -> dict[str, Any]:
    """Decode one frame into a map with string keys, or raise BadRequest/TooLarge.

    Extension types are refused (no object hooks, no pickle-like surprises) and every
    container length is bounded by the frame size, so a tiny frame cannot claim a huge array.
    """
    if len(frame) > max_size:
        raise TooLarge(f"frame of {len(frame)} bytes exceeds max_message_size {max_size}")
    try:
        value = msgpack.unpackb(
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
    if not isinstance(value, dict):
        raise BadRequest("a frame must be a msgpack map")
    for key in value:
        if not isinstance(key, str):
            raise BadRequest("map keys must be strings")
    return value


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
