"""Publishing a body as signed chunks and verifying them, in any order, from anyone."""

from __future__ import annotations

import hashlib
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from requester.protocol import (
    ContentPublisher,
    ContentVerifier,
    InvalidSignature,
    MalformedMessage,
    ManifestHead,
    NodeKey,
    ProtocolError,
    Seal,
    SignedChunk,
    WrongBinding,
)
from requester.protocol.codec import Writer
from requester.protocol.manifest import (
    LARGE_BODY,
    MIN_CHUNK_SIZE,
    STATEMENT_MAGIC,
    UNKNOWN_SIZE,
    chunk_size_for,
)
from tests.conftest import EDGE_SEED, OTHER_EDGE_SEED, make_head

EDGE = NodeKey(EDGE_SEED)
OTHER = NodeKey(OTHER_EDGE_SEED)
CS = MIN_CHUNK_SIZE
HEAD = make_head(EDGE, chunk_size=CS)


def body(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def publish(data: bytes, pieces: list[int] | None = None) -> tuple[list[SignedChunk], Seal]:
    """Feed ``data`` cut at ``pieces`` sizes (the rest in one go), checking the buffer bound."""
    publisher = ContentPublisher(EDGE, HEAD)
    chunks: list[SignedChunk] = []
    offset = 0
    for piece in [*(pieces or []), len(data)]:
        part = data[offset : offset + piece]
        offset += len(part)
        chunks += publisher.feed(part)
        assert len(publisher._buffer) < CS, "publisher buffered a whole chunk"
        assert publisher.total_size == len(data[:offset]) - len(publisher._buffer)
    assert offset == len(data)
    tail, seal = publisher.finish()
    return chunks + tail, seal


def verify_all(chunks: list[SignedChunk], seal: Seal, *, seal_first: bool) -> bytes:
    verifier = ContentVerifier(ManifestHead.decode(HEAD.encode()))
    if seal_first:
        assert verifier.accept_seal(seal.encode()) == seal
    for chunk in chunks:
        assert verifier.verify_chunk(chunk.statement.encode(), chunk.data) == chunk.statement
    if not seal_first:
        verifier.accept_seal(seal.encode())
    assert verifier.check_complete() == seal
    return b"".join(c.data for c in sorted(chunks, key=lambda c: c.statement.index))


def sign_statement(key: NodeKey, index: int, data: bytes, head: ManifestHead = HEAD) -> bytes:
    """A statement signed by ``key`` whatever the head says: for forgeries."""
    digest = hashlib.sha256(data).digest()
    w = Writer(STATEMENT_MAGIC).fixed(head.content_id, 32).u32(index).u32(len(data))
    unsigned = w.fixed(digest, 32).getvalue()
    return unsigned + key.sign(unsigned)


SIZES = [0, 1, CS - 1, CS, CS + 1, 2 * CS, 3 * CS + 7]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("seal_first", [True, False])
def test_sizes_publish_and_verify(size: int, seal_first: bool) -> None:
    data = body(size)
    chunks, seal = publish(data)
    expected_count = -(-size // CS)
    assert len(chunks) == expected_count
    assert [c.statement.index for c in chunks] == list(range(expected_count))
    assert all(len(c.data) == CS for c in chunks[:-1])
    if chunks:
        assert 0 < len(chunks[-1].data) <= CS
    assert (seal.total_size, seal.chunk_count) == (size, expected_count)
    assert (
        seal.chunk_list_digest
        == HEAD.seal(EDGE, size, [c.statement.sha256 for c in chunks]).chunk_list_digest
    )
    assert verify_all(chunks, seal, seal_first=seal_first) == data


def test_empty_body_has_no_chunks_and_completes() -> None:
    chunks, seal = publish(b"", [0, 0])
    assert chunks == []
    assert (seal.total_size, seal.chunk_count) == (0, 0)
    verifier = ContentVerifier(HEAD)
    verifier.accept_seal(seal.encode())
    assert verifier.check_complete() == seal


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 4 * CS + 100),
    st.lists(st.integers(0, 2 * CS + 10), max_size=12),
    st.randoms(use_true_random=False),
    st.booleans(),
)
def test_random_pieces_any_order(
    size: int, pieces: list[int], rnd: random.Random, seal_first: bool
) -> None:
    data = body(size, seed=size)
    chunks, seal = publish(data, pieces)
    assert b"".join(c.data for c in chunks) == data
    assert [c.statement.index for c in chunks] == list(range(len(chunks)))
    shuffled = chunks[:]
    rnd.shuffle(shuffled)
    assert verify_all(shuffled, seal, seal_first=seal_first) == data


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 3 * CS), st.data())
def test_same_body_any_cut_same_chunks(size: int, data: st.DataObject) -> None:
    content = body(size, seed=1)
    pieces = data.draw(st.lists(st.integers(1, CS + 3), max_size=8))
    one_go, seal_a = publish(content)
    cut, seal_b = publish(content, pieces)
    assert one_go == cut
    assert seal_a == seal_b


def test_feed_returns_chunks_as_soon_as_complete() -> None:
    publisher = ContentPublisher(EDGE, HEAD)
    assert publisher.feed(bytes(CS - 1)) == []
    done = publisher.feed(bytes(2))
    assert [c.statement.index for c in done] == [0]
    assert publisher.total_size == CS
    assert len(publisher.feed(bytes(2 * CS))) == 2
    tail, seal = publisher.finish()
    assert [len(c.data) for c in tail] == [1]
    assert seal.total_size == 3 * CS + 1


def test_publisher_refuses_use_after_finish() -> None:
    publisher = ContentPublisher(EDGE, HEAD)
    publisher.feed(b"abc")
    publisher.finish()
    with pytest.raises(MalformedMessage, match="already sealed"):
        publisher.feed(b"x")
    with pytest.raises(MalformedMessage, match="already sealed"):
        publisher.finish()


def test_publisher_with_another_edges_key_is_refused() -> None:
    publisher = ContentPublisher(OTHER, HEAD)
    with pytest.raises(WrongBinding, match="only the head's own edge"):
        publisher.feed(bytes(CS))


def test_corrupted_chunk_is_refused() -> None:
    chunks, _ = publish(body(2 * CS + 3))
    for chunk in chunks:
        verifier = ContentVerifier(HEAD)
        corrupt = bytearray(chunk.data)
        corrupt[len(corrupt) // 2] ^= 0x01
        with pytest.raises(WrongBinding, match="does not match its stated SHA-256"):
            verifier.verify_chunk(chunk.statement.encode(), bytes(corrupt))
        with pytest.raises(WrongBinding, match="stated"):
            verifier.verify_chunk(chunk.statement.encode(), chunk.data[:-1])
        with pytest.raises(WrongBinding):
            verifier.verify_chunk(chunk.statement.encode(), chunk.data + b"\x00")


def test_chunk_under_another_statement_is_refused() -> None:
    chunks, _ = publish(body(2 * CS, seed=5))
    verifier = ContentVerifier(HEAD)
    with pytest.raises(WrongBinding):
        verifier.verify_chunk(chunks[0].statement.encode(), chunks[1].data)


def test_statement_from_another_key_is_refused() -> None:
    data = body(100)
    verifier = ContentVerifier(HEAD)
    with pytest.raises(InvalidSignature, match="chunk statement: signature does not verify"):
        verifier.verify_chunk(sign_statement(OTHER, 0, data), data)
    other_head = make_head(OTHER, chunk_size=CS)
    other_statement = other_head.statement(OTHER, 0, data).encode()
    with pytest.raises(WrongBinding, match="another content id"):
        verifier.verify_chunk(other_statement, data)


def test_short_chunk_that_is_not_last_is_refused_before_the_seal() -> None:
    full = body(CS, seed=2)
    short = b"short"
    verifier = ContentVerifier(HEAD)
    verifier.verify_chunk(sign_statement(EDGE, 2, full), full)
    with pytest.raises(WrongBinding, match="chunk 1 contradicts where the content ends"):
        verifier.verify_chunk(sign_statement(EDGE, 1, short), short)
    verifier.verify_chunk(sign_statement(EDGE, 3, short), short)
    with pytest.raises(WrongBinding, match="chunk 4 contradicts where the content ends"):
        verifier.verify_chunk(sign_statement(EDGE, 4, full), full)
    with pytest.raises(WrongBinding, match="chunk 0 contradicts where the content ends"):
        verifier.verify_chunk(sign_statement(EDGE, 0, short), short)
    verifier.verify_chunk(sign_statement(EDGE, 0, full), full)


def test_short_chunk_that_is_not_last_is_refused_after_the_seal() -> None:
    chunks, seal = publish(body(2 * CS + 9))
    verifier = ContentVerifier(HEAD)
    verifier.accept_seal(seal.encode())
    short = b"short"
    with pytest.raises(WrongBinding, match="chunk 0 stated 5 bytes, seal implies 16384"):
        verifier.verify_chunk(sign_statement(EDGE, 0, short), short)
    full = bytes(CS)
    with pytest.raises(WrongBinding, match="chunk 2 stated 16384 bytes, seal implies 9"):
        verifier.verify_chunk(sign_statement(EDGE, 2, full), full)
    with pytest.raises(MalformedMessage, match="chunk 3 is beyond the last"):
        verifier.verify_chunk(sign_statement(EDGE, 3, short), short)
    for chunk in chunks:
        verifier.verify_chunk(chunk.statement.encode(), chunk.data)
    assert verifier.check_complete() == seal


def test_two_hashes_for_one_index_is_equivocation() -> None:
    a, b = body(CS, seed=3), body(CS, seed=4)
    verifier = ContentVerifier(HEAD)
    verifier.verify_chunk(sign_statement(EDGE, 0, a), a)
    verifier.verify_chunk(sign_statement(EDGE, 0, a), a)  # the same chunk twice is fine
    with pytest.raises(WrongBinding, match="two different hashes for chunk 0"):
        verifier.verify_chunk(sign_statement(EDGE, 0, b), b)


def test_seal_refusals() -> None:
    chunks, seal = publish(body(CS + 1))
    verifier = ContentVerifier(HEAD)
    verifier.accept_seal(seal.encode())
    verifier.accept_seal(seal.encode())  # the same seal again is fine
    other = HEAD.seal(EDGE, 2 * CS, [bytes(32), bytes(32)])
    with pytest.raises(WrongBinding, match="two different seals"):
        verifier.accept_seal(other.encode())
    assert verifier.seal == seal

    early = ContentVerifier(HEAD)
    for chunk in chunks:
        early.verify_chunk(chunk.statement.encode(), chunk.data)
    shorter = HEAD.seal(EDGE, CS, [chunks[0].statement.sha256])
    with pytest.raises(WrongBinding, match="chunk 1 was stated but the seal ends before it"):
        early.accept_seal(shorter.encode())
    with pytest.raises(InvalidSignature):
        early.accept_seal(seal.encode()[:-1] + bytes([seal.encode()[-1] ^ 1]))


def test_seal_with_wrong_chunk_list_fails_completion() -> None:
    chunks, _ = publish(body(2 * CS))
    lying = HEAD.seal(EDGE, 2 * CS, [chunks[1].statement.sha256, chunks[0].statement.sha256])
    verifier = ContentVerifier(HEAD)
    verifier.accept_seal(lying.encode())
    for chunk in chunks:
        verifier.verify_chunk(chunk.statement.encode(), chunk.data)
    with pytest.raises(WrongBinding, match="chunk list does not match the sealed digest"):
        verifier.check_complete()


@pytest.mark.parametrize(
    ("first", "second", "total"),
    [
        # chunk 1 was short (so the end) before the seal, which then says 3 full chunks
        (CS, 5, 3 * CS),
        # chunk 1 was full before the seal, which then says it holds only 5 bytes
        (CS, CS, CS + 5),
    ],
)
def test_chunks_verified_before_the_seal_must_match_its_sizes(
    first: int, second: int, total: int
) -> None:
    """Sizes checked before the seal arrived must agree with it once it does.

    Otherwise an equivocating edge gets a requester to complete content whose
    verified bytes do not add up to the sealed total.
    """
    data = [body(first, seed=10), body(second, seed=11)]
    count = -(-total // CS)
    extra = [body(CS, seed=12 + i) for i in range(count - 2)]
    hashes = [hashlib.sha256(d).digest() for d in data + extra]
    seal = HEAD.seal(EDGE, total, hashes)
    verifier = ContentVerifier(HEAD)
    for index, chunk in enumerate(data):
        verifier.verify_chunk(sign_statement(EDGE, index, chunk), chunk)
    with pytest.raises(WrongBinding):
        verifier.accept_seal(seal.encode())
        for index, chunk in enumerate(extra, start=2):
            verifier.verify_chunk(sign_statement(EDGE, index, chunk), chunk)
        verifier.check_complete()


def test_check_complete_catches_missing_chunks() -> None:
    chunks, seal = publish(body(3 * CS))
    verifier = ContentVerifier(HEAD)
    with pytest.raises(MalformedMessage, match="content is not sealed yet"):
        verifier.check_complete()
    verifier.accept_seal(seal.encode())
    with pytest.raises(MalformedMessage, match="3 chunks not verified yet"):
        verifier.check_complete()
    for chunk in chunks[:1] + chunks[2:]:
        verifier.verify_chunk(chunk.statement.encode(), chunk.data)
    with pytest.raises(MalformedMessage, match="1 chunks not verified yet"):
        verifier.check_complete()
    verifier.verify_chunk(chunks[1].statement.encode(), chunks[1].data)
    assert verifier.check_complete() == seal


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.binary(max_size=64))
def test_verifier_only_raises_protocol_errors(statement: bytes, data: bytes) -> None:
    verifier = ContentVerifier(HEAD)
    with pytest.raises(ProtocolError):
        verifier.verify_chunk(statement, data)
    with pytest.raises(ProtocolError):
        verifier.accept_seal(statement)


def test_a_large_body_is_cut_in_1_mib_chunks_and_an_unknown_size_is_not() -> None:
    assert LARGE_BODY == 64 << 20
    assert chunk_size_for(LARGE_BODY) == chunk_size_for(1 << 40) == 1 << 20
    assert chunk_size_for(LARGE_BODY - 1) == chunk_size_for(0) == 256 << 10
    assert chunk_size_for(UNKNOWN_SIZE) == 256 << 10
    assert chunk_size_for(LARGE_BODY, 4 << 20) == 4 << 20  # never smaller than the base
    assert chunk_size_for(LARGE_BODY, 64 << 10) == 1 << 20
