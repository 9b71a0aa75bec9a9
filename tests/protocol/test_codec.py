"""The canonical encoding: fixed-width big-endian ints, length-prefixed blobs, base64url."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import MalformedMessage, ProtocolError, b64url_decode, b64url_encode
from requester.protocol.codec import MAGIC_PREFIX, U64_MAX, U128_MAX, Reader, Writer

MAGIC = MAGIC_PREFIX + b"T\x01"
WIDTHS = {"u8": 1, "u16": 2, "u32": 4, "u64": 8, "u128": 16}


@st.composite
def int_fields(draw: st.DrawFn) -> tuple[str, int]:
    kind = draw(st.sampled_from(sorted(WIDTHS)))
    return kind, draw(st.integers(0, (1 << (8 * WIDTHS[kind])) - 1))


def _write(w: Writer, kind: str, value: int) -> None:
    getattr(w, kind)(value)


def _read(r: Reader, kind: str) -> int:
    value = getattr(r, kind)()
    assert isinstance(value, int)
    return value


def test_limits_constants() -> None:
    assert U64_MAX == 2**64 - 1
    assert U128_MAX == 2**128 - 1


@settings(max_examples=200)
@given(st.lists(int_fields(), max_size=12))
def test_ints_round_trip_big_endian_fixed_width(fields: list[tuple[str, int]]) -> None:
    w = Writer(MAGIC)
    for kind, value in fields:
        _write(w, kind, value)
    data = w.getvalue()
    expected = MAGIC + b"".join(value.to_bytes(WIDTHS[kind], "big") for kind, value in fields)
    assert data == expected
    r = Reader(data, MAGIC, "test")
    assert [(kind, _read(r, kind)) for kind, _ in fields] == fields
    r.end()
    assert r.offset == len(data)


@settings(max_examples=200)
@given(st.lists(st.binary(max_size=300), max_size=8), st.text(max_size=50))
def test_blobs_and_text_round_trip(blobs: list[bytes], text: str) -> None:
    w = Writer(MAGIC)
    for blob in blobs:
        w.blob16(blob)
    w.text16(text)
    data = w.getvalue()
    encoded_text = text.encode("utf-8")
    assert len(data) == len(MAGIC) + sum(2 + len(b) for b in blobs) + 2 + len(encoded_text)
    r = Reader(data, MAGIC, "test")
    assert [r.blob16(300, "blob") for _ in blobs] == blobs
    assert r.text16(len(encoded_text), "text") == text
    r.end()


@pytest.mark.parametrize("kind", sorted(WIDTHS))
def test_writer_refuses_ints_that_do_not_fit(kind: str) -> None:
    bits = 8 * WIDTHS[kind]
    _write(Writer(MAGIC), kind, (1 << bits) - 1)
    with pytest.raises(MalformedMessage, match=f"does not fit in {bits} bits"):
        _write(Writer(MAGIC), kind, 1 << bits)
    with pytest.raises(MalformedMessage, match=f"does not fit in {bits} bits"):
        _write(Writer(MAGIC), kind, -1)


def test_writer_fixed_size_and_blob_limit() -> None:
    assert Writer(MAGIC).fixed(b"abc", 3).getvalue() == MAGIC + b"abc"
    with pytest.raises(MalformedMessage, match="expected 4 bytes, got 3"):
        Writer(MAGIC).fixed(b"abc", 4)
    assert len(Writer(MAGIC).blob16(bytes(65535)).getvalue()) == 4 + 2 + 65535
    with pytest.raises(MalformedMessage):
        Writer(MAGIC).blob16(bytes(65536))


def test_reader_refuses_bad_magic_and_non_bytes() -> None:
    with pytest.raises(MalformedMessage, match="thing: not an Atlas thing"):
        Reader(MAGIC_PREFIX + b"T\x02", MAGIC, "thing")
    with pytest.raises(MalformedMessage, match="bad magic"):
        Reader(b"AT", MAGIC, "thing")
    with pytest.raises(MalformedMessage, match="expected bytes"):
        Reader("ATT\x01", MAGIC, "thing")  # type: ignore[arg-type]
    # Buffers other than bytes are accepted at run time (and copied).
    assert Reader(bytearray(MAGIC + b"\x07"), MAGIC, "thing").u8() == 7  # type: ignore[arg-type]
    assert Reader(memoryview(MAGIC + b"\x07"), MAGIC, "thing").u8() == 7  # type: ignore[arg-type]


def test_reader_truncation_and_trailing_bytes() -> None:
    r = Reader(MAGIC + b"\x00\x01\x02", MAGIC, "thing")
    with pytest.raises(MalformedMessage, match="thing: truncated at byte 4"):
        r.u32()
    r = Reader(MAGIC + b"\x00\x01\x02", MAGIC, "thing")
    assert r.u16() == 1
    with pytest.raises(MalformedMessage, match="thing: 1 unexpected trailing bytes"):
        r.end()


def test_reader_blob_limit_is_checked_before_reading() -> None:
    data = Writer(MAGIC).blob16(b"x" * 10).getvalue()
    with pytest.raises(MalformedMessage, match="thing: name is 10 bytes, limit 9"):
        Reader(data, MAGIC, "thing").blob16(9, "name")
    # A hostile length larger than the data left is a truncation, not an allocation.
    with pytest.raises(MalformedMessage, match="truncated"):
        Reader(MAGIC + b"\xff\xff", MAGIC, "thing").blob16(65535, "name")


def test_reader_text_must_be_utf8() -> None:
    data = Writer(MAGIC).blob16(b"\xff\xfe").getvalue()
    with pytest.raises(MalformedMessage, match="thing: name is not valid UTF-8"):
        Reader(data, MAGIC, "thing").text16(10, "name")


@settings(max_examples=300)
@given(st.binary(max_size=64), st.lists(int_fields(), max_size=6))
def test_reader_only_raises_malformed(data: bytes, fields: list[tuple[str, int]]) -> None:
    try:
        r = Reader(MAGIC + data, MAGIC, "fuzz")
        for kind, _ in fields:
            _read(r, kind)
        r.blob16(16, "blob")
        r.text16(16, "text")
        r.end()
    except MalformedMessage:
        pass


# base64url --------------------------------------------------------------------------


@settings(max_examples=300)
@given(st.binary(max_size=300))
def test_b64url_round_trip_without_padding(data: bytes) -> None:
    text = b64url_encode(data)
    assert "=" not in text
    assert set(text) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert text == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert b64url_decode(text, len(data), "x") == data
    assert b64url_decode(text.encode(), len(data), "x") == data
    padded = base64.urlsafe_b64encode(data).decode()
    assert b64url_decode(padded, len(data), "x") == data
    assert b64url_decode(f"  {text}\t", len(data), "x") == data


@pytest.mark.parametrize(
    "text",
    ["ab+c", "ab/c", "a b", "ab=c", "ab\u00e9", "é", "AB==AB", "A", "AAAAA"],
)
def test_b64url_refuses_other_alphabets_and_bad_lengths(text: str) -> None:
    with pytest.raises(MalformedMessage, match="what: not base64url"):
        b64url_decode(text, 100, "what")


def test_b64url_limit() -> None:
    ok = b64url_encode(bytes(188))
    assert b64url_decode(ok, 188, "v") == bytes(188)
    with pytest.raises(MalformedMessage, match="v: header value longer than 10 bytes allow"):
        b64url_decode("A" * 100, 10, "v")
    # The limit is checked on the text length, before decoding anything.
    with pytest.raises(MalformedMessage, match="longer than"):
        b64url_decode("!" * 10_000, 188, "v")


@settings(max_examples=200)
@given(st.integers(0, 300), st.integers(1, 3), st.booleans())
def test_b64url_never_returns_more_than_limit(limit: int, extra: int, padded: bool) -> None:
    """The docstring's promise: input longer than ``limit`` bytes is refused."""
    exact = base64.urlsafe_b64encode(bytes(limit)).decode()
    assert b64url_decode(exact if padded else exact.rstrip("="), limit, "x") == bytes(limit)
    over = base64.urlsafe_b64encode(bytes(limit + extra)).decode()
    with pytest.raises(MalformedMessage, match="x: "):
        b64url_decode(over if padded else over.rstrip("="), limit, "x")


@settings(max_examples=400)
@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)), st.integers(0, 256))
def test_b64url_decode_only_raises_malformed(text: str | bytes, limit: int) -> None:
    try:
        out = b64url_decode(text, limit, "fuzz")
    except MalformedMessage:
        return
    assert isinstance(out, bytes)


@settings(max_examples=100)
@given(st.binary(max_size=64))
def test_b64url_fuzz_never_leaks_other_exceptions(data: bytes) -> None:
    try:
        b64url_decode(data.decode("latin-1"), 64, "fuzz")
    except ProtocolError as exc:
        assert isinstance(exc, MalformedMessage)
