"""Chunk runs (``ATR\\x01``): the vectors of tests/vectors/run.json rebuilt and decoded, the
layout of docs/protocol.md 13 by hand, and every malformed header refused."""

from __future__ import annotations

import contextlib
import json
import struct
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from requester.protocol import ContentVerifier, MalformedMessage, ManifestHead
from requester.protocol.chunk_run import (
    CHUNK,
    FRAME_HEADER_SIZE,
    MAX_DETAIL,
    PREFIX_SIZE,
    RUN_MAX_COUNT,
    TRAILER,
    TRAILER_HEADER_SIZE,
    FrameHeader,
    RunEnd,
    RunTrailer,
    decode_frame_header,
    decode_trailer,
    frame_kind,
    parse_count,
    run_length,
    with_detail,
)
from requester.protocol.manifest import STATEMENT_SIZE

HERE = Path(__file__).resolve().parents[1] / "vectors"
RUNS = json.loads((HERE / "run.json").read_text("utf-8"))
MANIFEST = json.loads((HERE / "manifest.json").read_text("utf-8"))
CHUNK_SIZE = MANIFEST["content"]["chunk_size"]
STATEMENT = bytes.fromhex(MANIFEST["content"]["statements"][0]["encoded"])


def _body() -> bytes:
    size = MANIFEST["content"]["body_size"]
    return bytes((i * 31 + 7) % 251 for i in range(size))


def _frame(doc: dict[str, Any]) -> FrameHeader:
    return FrameHeader(doc["index"], int(doc["price"]), doc["wire_len"],
                       bytes.fromhex(doc["statement"]), doc["zstd"], doc["paid_by"],
                       doc["lane"])  # fmt: skip


@pytest.mark.parametrize("run", RUNS["runs"], ids=lambda r: r["name"])
def test_the_vectors_encode_and_decode_byte_for_byte(run: dict[str, Any]) -> None:
    for doc in run["frames"]:
        header = bytes.fromhex(doc["header"])
        assert _frame(doc).encode() == header
        assert decode_frame_header(header, CHUNK_SIZE) == _frame(doc)
        assert frame_kind(header[:PREFIX_SIZE]) == CHUNK
    t = run["trailer"]
    encoded = bytes.fromhex(t["encoded"])
    trailer = RunTrailer(RunEnd(t["reason"]), t["frames"], int(t["charged"]), t["detail"])
    assert trailer.encode() == encoded
    fixed, detail_len = decode_trailer(encoded[:TRAILER_HEADER_SIZE])
    assert frame_kind(encoded[:PREFIX_SIZE]) == TRAILER
    assert with_detail(fixed, encoded[TRAILER_HEADER_SIZE:]) == trailer
    assert detail_len == len(t["detail"].encode())


def test_a_vector_run_verifies_chunk_by_chunk_and_rebuilds_the_body() -> None:
    """What a requester does with a run's body: every frame checked on its own."""
    run = RUNS["runs"][0]
    body = _body()
    wire = b"".join(bytes.fromhex(f["header"]) + body[f["body_offset"]:][: f["wire_len"]]
                    for f in run["frames"]) + bytes.fromhex(run["trailer"]["encoded"])  # fmt: skip
    assert len(wire) == run["content_length"] == run_length(f["wire_len"] for f in run["frames"])
    head = ManifestHead.decode(bytes.fromhex(MANIFEST["heads"][0]["encoded"]))
    verifier = ContentVerifier(head)
    got, pos = [], 0
    while frame_kind(wire[pos : pos + PREFIX_SIZE]) == CHUNK:
        frame = decode_frame_header(wire[pos : pos + FRAME_HEADER_SIZE], CHUNK_SIZE)
        pos += FRAME_HEADER_SIZE
        data = wire[pos : pos + frame.wire_len]
        pos += frame.wire_len
        assert verifier.verify_chunk(frame.statement, data).index == frame.index
        got.append(data)
    trailer, _ = decode_trailer(wire[pos : pos + TRAILER_HEADER_SIZE])
    assert b"".join(got) == body
    assert (trailer.reason, trailer.frames) == (RunEnd.COMPLETE, 3)
    assert trailer.charged == sum(int(f["price"]) for f in run["frames"])


def test_the_layout_of_docs_protocol_13_by_hand() -> None:
    frame = FrameHeader(7, 5, 1000, STATEMENT, zstd=True, paid_by="credit", lane="free")
    raw = frame.encode()
    assert len(raw) == FRAME_HEADER_SIZE == 164
    assert raw[:4] == b"ATR\x01" and raw[4:8] == bytes([0, 1, 2, 1])
    assert struct.unpack(">IQI", raw[8:24]) == (7, 5, 1000) and raw[24:] == STATEMENT
    trailer = RunTrailer(RunEnd.UNPAID, 2, 9, "é").encode()
    assert trailer == b"ATR\x01" + bytes([1, 5]) + struct.pack(">HIQ", 2, 2, 9) + "é".encode()


def _flip(raw: bytes, offset: int, value: int) -> bytes:
    return raw[:offset] + bytes([value]) + raw[offset + 1 :]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"ATX\x01" + bytes(160), "bad magic"),
        (b"ATR\x02" + bytes(160), "bad magic"),
        (_flip(FrameHeader(0, 0, 1, STATEMENT).encode(), 4, 1), "not a chunk frame"),
        (_flip(FrameHeader(0, 0, 1, STATEMENT).encode(), 5, 2), "unknown encoding"),
        (_flip(FrameHeader(0, 0, 1, STATEMENT).encode(), 6, 3), "unknown encoding, paid_by"),
        (_flip(FrameHeader(0, 0, 1, STATEMENT).encode(), 7, 2), "or lane"),
        (FrameHeader(0, 0, CHUNK_SIZE + 1, STATEMENT).encode(), "more than a"),
        (FrameHeader(0, 0, 1, STATEMENT).encode()[:-1], "truncated"),
        (FrameHeader(0, 0, 1, STATEMENT).encode() + b"x", "trailing"),
        (FrameHeader(1 << 31, 0, 1, STATEMENT).encode(), "index must be below"),
    ],
)
def test_a_malformed_frame_header_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        decode_frame_header(raw, CHUNK_SIZE)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (RunTrailer(RunEnd.END, 1, 0).encode()[:-1], "truncated"),
        (_flip(RunTrailer(RunEnd.END, 1, 0).encode(), 5, 9), "unknown reason 9"),
        (_flip(RunTrailer(RunEnd.END, 1, 0).encode(), 4, 0), "not a trailer"),
        (b"ATR\x01\x01\x00" + struct.pack(">HIQ", MAX_DETAIL + 1, 0, 0), "over its limit"),
        (b"ATR\x01\x01\x00" + struct.pack(">HIQ", 0, RUN_MAX_COUNT + 1, 0), "over its limit"),
    ],
)
def test_a_malformed_trailer_is_refused(raw: bytes, message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        decode_trailer(raw)


def test_an_unknown_frame_kind_and_a_long_detail() -> None:
    with pytest.raises(MalformedMessage, match="unknown kind 7"):
        frame_kind(b"ATR\x01\x07\x00\x00\x00")
    long = RunTrailer(RunEnd.CONTENT_FAILED, 0, 0, "x" * 2000).encode()
    assert len(long) == TRAILER_HEADER_SIZE + MAX_DETAIL
    with pytest.raises(MalformedMessage, match="unknown paid_by"):
        FrameHeader(0, 0, 1, STATEMENT, paid_by="gift").encode()
    with pytest.raises(MalformedMessage, match="expected 140 bytes"):
        FrameHeader(0, 0, 1, STATEMENT[:-1]).encode()
    assert STATEMENT_SIZE == 140


@pytest.mark.parametrize("raw", [None, "", "0", "65", "1e3", "²", "-1", "0064", " 5"])
def test_a_run_count_outside_1_to_64_is_refused(raw: str | None) -> None:
    with pytest.raises(MalformedMessage, match="count must be an integer from 1 to 64"):
        parse_count(raw)


def test_run_counts_1_and_64_are_accepted() -> None:
    assert (parse_count("1"), parse_count("64"), parse_count("016")) == (1, 64, 16)


@given(st.binary(max_size=FRAME_HEADER_SIZE + 8))
def test_hostile_bytes_raise_only_malformed_message(data: bytes) -> None:
    for decode in (lambda: decode_frame_header(data, CHUNK_SIZE), lambda: decode_trailer(data),
                   lambda: frame_kind(data[:PREFIX_SIZE])):  # fmt: skip
        with contextlib.suppress(MalformedMessage):
            decode()
