"""The frame codec against PROTOCOL.md sections 1 and 2: one msgpack map with string keys."""

from __future__ import annotations

import struct
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transport import codec
from transport.errors import BadRequest, TooLarge

DETERMINISTIC = settings(derandomize=True, deadline=None, database=None, max_examples=300)
# The properties over nested values draw slowly (~6 ms an example): a third of the examples in
# the default suite, all of them again in the slow tier (the `_in_full` twins).
QUICK = settings(DETERMINISTIC, max_examples=100)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=20)
    | st.binary(max_size=20)
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
frames_as_maps = st.dictionaries(st.text(max_size=10), values, max_size=6)


def pack(value: Any) -> bytes:
    return msgpack.packb(value, use_bin_type=True)


# -- round trip and garbage -------------------------------------------------------------------


def survives_a_round_trip(body: dict[str, Any]) -> None:
    assert codec.decode(codec.encode(body)) == body


@QUICK
@given(frames_as_maps)
def test_every_map_with_string_keys_survives_an_encode_decode_round_trip(body):
    survives_a_round_trip(body)


@pytest.mark.slow
@DETERMINISTIC
@given(frames_as_maps)
def test_every_map_with_string_keys_survives_an_encode_decode_round_trip_in_full(body):
    survives_a_round_trip(body)


@DETERMINISTIC
@given(st.binary(max_size=200))
def test_arbitrary_bytes_either_decode_to_a_string_keyed_map_or_raise_bad_request(frame):
    try:
        body = codec.decode(frame)
    except (BadRequest, TooLarge):
        return
    assert isinstance(body, dict)
    assert all(isinstance(key, str) for key in body)


@DETERMINISTIC
@given(st.binary(min_size=1, max_size=64), st.integers(min_value=0, max_value=63))
def test_arbitrary_bytes_over_the_size_limit_raise_only_too_large(frame, limit):
    if len(frame) <= limit:
        return
    with pytest.raises(TooLarge):
        codec.decode(frame, max_size=limit)


def cut_short_raises_bad_request(body: dict[str, Any], data: st.DataObject) -> None:
    frame = codec.encode(body)
    cut = data.draw(st.integers(min_value=0, max_value=len(frame) - 1))
    with pytest.raises(BadRequest):
        codec.decode(frame[:cut])


@QUICK
@given(frames_as_maps, st.data())
def test_a_valid_frame_cut_short_raises_bad_request(body, data):
    cut_short_raises_bad_request(body, data)


@pytest.mark.slow
@DETERMINISTIC
@given(frames_as_maps, st.data())
def test_a_valid_frame_cut_short_raises_bad_request_in_full(body, data):
    cut_short_raises_bad_request(body, data)


# -- what is not a map with string keys -------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [[], [1, 2], "ping", 7, None, True, 1.5, b"\x00bin"],
    ids=["empty-array", "array", "string", "int", "nil", "bool", "float", "bin"],
)
def test_a_frame_that_is_not_a_map_raises_bad_request(value):
    with pytest.raises(BadRequest):
        codec.decode(pack(value))


@pytest.mark.parametrize(
    "body",
    [{1: "x"}, {b"type": "ping"}, {"type": "ping", 2: 3}, {None: 1}, {1.5: 1}],
    ids=["int-key", "bin-key", "mixed-keys", "nil-key", "float-key"],
)
def test_a_map_with_a_non_string_key_raises_bad_request(body):
    with pytest.raises(BadRequest):
        codec.decode(pack(body))


@pytest.mark.parametrize(
    "frame",
    [b"", b"\xc1", b"\x81\xa4type", b"\x80\x80", b"\xa3\xff\xfe\xfd", b"\x81\xa2\xff\xfe\x01"],
    ids=[
        "empty",
        "never-used-byte",
        "truncated-map",
        "trailing-data",
        "bad-utf8-value",
        "bad-utf8-key",
    ],
)
def test_undecodable_bytes_raise_bad_request(frame):
    with pytest.raises(BadRequest):
        codec.decode(frame)


@pytest.mark.parametrize("code", [0, 5, 127, -5, -128])
def test_a_msgpack_extension_type_anywhere_in_the_frame_raises_bad_request(code):
    ext = b"\xd6" + struct.pack(">b", code) + b"data"  # fixext 4
    frame = b"\x83" + b"".join(pack(v) for v in ("type", "ping", "rid", 1, "meta")) + b"\x91" + ext
    assert msgpack.unpackb(frame, ext_hook=lambda c, d: ("ext", c))["meta"] == [("ext", code)]
    with pytest.raises(BadRequest):
        codec.decode(frame)


def test_a_msgpack_timestamp_extension_raises_bad_request_like_every_other_extension():
    # The timestamp is extension type -1; PROTOCOL.md allows no extension types at all.
    frame = pack({"type": "ping", "rid": 1, "at": msgpack.Timestamp(1_700_000_000, 0)})
    with pytest.raises(BadRequest):
        codec.decode(frame)


def test_a_tiny_frame_claiming_a_huge_array_raises_bad_request_without_allocating_it():
    frame = b"\x81\xa4args\xdd" + struct.pack(">I", 2**32 - 1)  # {"args": array32 of 4 G}
    with pytest.raises(BadRequest):
        codec.decode(frame)


def test_deeply_nested_containers_raise_bad_request():
    frame = b"\x81\xa4args" + b"\x91" * 100_000 + b"\xc0"
    with pytest.raises(BadRequest):
        codec.decode(frame, max_size=1024 * 1024)


def _nesting(value: Any) -> int:
    """How deep lists and maps nest in `value` (a container is one level), by recursion."""
    if isinstance(value, dict):
        return 1 + max((_nesting(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((_nesting(v) for v in value), default=0)
    return 0


@QUICK
@given(value=values, limit=st.integers(min_value=1, max_value=8))
def test_a_frame_is_refused_exactly_when_it_nests_deeper_than_the_limit(value, limit):
    refused_exactly_when_nested_deeper_than(value, limit)


@pytest.mark.slow
@DETERMINISTIC
@given(value=values, limit=st.integers(min_value=1, max_value=8))
def test_a_frame_is_refused_exactly_when_it_nests_deeper_than_the_limit_in_full(value, limit):
    refused_exactly_when_nested_deeper_than(value, limit)


def refused_exactly_when_nested_deeper_than(value: Any, limit: int) -> None:
    frame = pack({"v": value})
    if _nesting({"v": value}) > limit:
        with pytest.raises(BadRequest):
            codec.decode(frame, max_depth=limit)
    else:
        assert codec.decode(frame, max_depth=limit) == {"v": value}


# -- the size limit ---------------------------------------------------------------------------


def test_a_frame_over_max_message_size_raises_too_large():
    frame = pack({"type": "ping", "rid": 1, "pad": "x" * 2000})
    with pytest.raises(TooLarge):
        codec.decode(frame, max_size=len(frame) - 1)


def test_a_frame_of_exactly_max_message_size_is_decoded():
    frame = pack({"type": "ping", "rid": 1, "pad": "x" * 2000})
    assert codec.decode(frame, max_size=len(frame))["pad"] == "x" * 2000


def test_the_default_max_message_size_is_one_mebibyte():
    assert codec.MAX_MESSAGE_SIZE_BYTES == 1024 * 1024
    big = pack({"pad": b"x" * (1024 * 1024)})
    with pytest.raises(TooLarge):
        codec.decode(big)


def test_too_large_is_raised_before_decoding_so_garbage_over_the_limit_is_too_large():
    with pytest.raises(TooLarge):
        codec.decode(b"\xc1" * 100, max_size=10)


# -- rid --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rid", [0, 1, 2**63, "", "a", "r" * 64, "é" * 64])
def test_an_int_of_at_least_zero_or_a_string_of_at_most_64_chars_is_a_valid_rid(rid):
    assert codec.valid_rid(rid)


@pytest.mark.parametrize(
    "rid",
    [-1, True, False, None, 1.0, "r" * 65, b"rid", [1], {"rid": 1}],
    ids=["negative", "true", "false", "nil", "float", "65-chars", "bin", "list", "map"],
)
def test_anything_else_is_an_invalid_rid(rid):
    assert not codec.valid_rid(rid)


# -- reply and error frames -------------------------------------------------------------------


def test_a_reply_frame_is_a_map_of_type_reply_with_the_rid_and_the_fields():
    assert msgpack.unpackb(codec.reply(7, job_id="j", states=["available"])) == {
        "type": "reply",
        "rid": 7,
        "job_id": "j",
        "states": ["available"],
    }


def test_an_error_frame_carries_type_rid_code_and_message():
    assert msgpack.unpackb(codec.error("unknown_job", "no job j", "r-1")) == {
        "type": "error",
        "rid": "r-1",
        "code": "unknown_job",
        "message": "no job j",
    }


def test_an_error_frame_without_a_readable_rid_leaves_the_rid_out():
    body = msgpack.unpackb(codec.error("bad_request", "undecodable"))
    assert "rid" not in body
    assert body["code"] == "bad_request"


def test_an_error_frame_keeps_a_rid_of_zero():
    assert msgpack.unpackb(codec.error("bad_request", "x", 0))["rid"] == 0


def test_strings_are_sent_as_msgpack_str_and_bytes_as_bin():
    frame = codec.encode({"s": "text", "b": b"\x00"})
    assert msgpack.unpackb(frame, raw=True) == {b"s": b"text", b"b": b"\x00"}
    assert b"\xa4text" in frame  # fixstr, not bin
    assert b"\xc4\x01\x00" in frame  # bin 8
