"""The streaming publisher (requester/protocol/publishing.py): a body fed in parts of any
size, never joined, gives the statements and the seal ContentPublisher gives and the
published vectors hold (tests/vectors), whatever the cut."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import ContentPublisher, MalformedMessage, ManifestHead, NodeKey, UrlSource
from requester.protocol.publishing import ChunkCutter, ChunkSigner, Cut

SIZE = 16384
KEY = NodeKey(bytes(range(32)))
HEAD = ManifestHead.create(KEY, source=UrlSource("https://example.com/x"), status=200,
                           headers=[], created_at=1, chunk_size=SIZE)  # fmt: skip


def _body(total: int) -> bytes:
    return random.Random(total).randbytes(total)


def _split(body: bytes, sizes: list[int]) -> list[bytes]:
    pieces, at = [], 0
    for size in sizes:
        pieces.append(body[at : at + size])
        at += size
    return [*pieces, body[at:]]


def _stream(pieces: list[bytes]) -> tuple[list[bytes], list[bytes], bytes]:
    """(chunks joined here to compare, encoded statements, encoded seal), part by part."""
    cutter, signer = ChunkCutter(SIZE), ChunkSigner(KEY, HEAD)
    chunks, statements, current = list[bytes](), list[bytes](), bytearray()
    cuts = [cut for piece in pieces for cut in cutter.feed(piece)]
    last = cutter.finish()
    for cut in [*cuts, *([last] if last is not None else [])]:
        assert cut.offset == len(current)
        assert cut.chunk == len(chunks)
        current += cut.data
        statement = signer.take(cut)
        assert (statement is not None) == cut.ends
        if statement is not None:
            statements.append(statement.encode())
            chunks.append(bytes(current))
            current.clear()
    assert cutter.total == signer.total == sum(map(len, pieces))
    assert cutter.count == signer.count == len(chunks)
    return chunks, statements, signer.seal().encode()


def _joined(pieces: list[bytes]) -> tuple[list[bytes], list[bytes], bytes]:
    publisher = ContentPublisher(KEY, HEAD)
    chunks = [c for piece in pieces for c in publisher.feed(piece)]
    tail, seal = publisher.finish()
    chunks += tail
    return [c.data for c in chunks], [c.statement.encode() for c in chunks], seal.encode()


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 5 * SIZE + 3), st.lists(st.integers(0, 2 * SIZE + 1), max_size=9))
def test_any_cut_gives_the_joined_publishers_chunks_statements_and_seal(
    total: int, sizes: list[int]
) -> None:
    body = _body(total)
    streamed = _stream(_split(body, sizes))
    assert streamed == _joined([body])
    assert b"".join(streamed[0]) == body


def test_a_piece_inside_one_chunk_is_passed_on_as_is() -> None:
    piece = _body(SIZE - 1)
    assert ChunkCutter(SIZE).feed(piece) == [Cut(piece, 0, 0, False)]
    assert ChunkCutter(SIZE).feed(piece)[0].data is piece


def test_a_part_out_of_order_is_refused() -> None:
    signer = ChunkSigner(KEY, HEAD)
    assert signer.take(Cut(b"a" * 100, 0, 0, False)) is None
    with pytest.raises(ValueError, match="expected 0:100"):
        signer.take(Cut(b"c" * 100, 200, 0, True))  # the part at 100 never came
    with pytest.raises(ValueError, match="expected 0:100"):
        signer.take(Cut(b"c" * 100, 0, 1, True))  # a part of the next chunk


def test_an_empty_chunk_is_refused_and_a_chunk_left_open_is_not_sealed() -> None:
    with pytest.raises(MalformedMessage, match="empty"):
        ChunkSigner(KEY, HEAD).take(Cut(b"", 0, 0, True))
    signer = ChunkSigner(KEY, HEAD)
    signer.take(Cut(b"a", 0, 0, False))
    with pytest.raises(ValueError, match="not ended"):
        signer.seal()


def test_an_empty_body_seals_no_chunk() -> None:
    cutter, signer = ChunkCutter(SIZE), ChunkSigner(KEY, HEAD)
    assert cutter.feed(b"") == []
    assert cutter.finish() is None
    seal = signer.seal()
    assert (seal.total_size, seal.chunk_count) == (0, 0)
