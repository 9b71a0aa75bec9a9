"""Manifest heads, chunk statements and seals: round trips, limits, fuzz and forgery."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from requester.protocol import (
    DEFAULT_CHUNK_SIZE,
    UNKNOWN_SIZE,
    InvalidSignature,
    MalformedMessage,
    ManifestHead,
    NodeKey,
    ProtocolError,
    TorrentSource,
    UrlSource,
    WrongBinding,
    chunk_list_digest,
)
from requester.protocol.codec import Writer
from requester.protocol.manifest import (
    FORBIDDEN_HEADERS,
    HEAD_MAGIC,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    MAX_HEAD_BYTES,
    MAX_HEADER_BYTES,
    MAX_HEADER_NAME,
    MAX_HEADER_VALUE,
    MAX_HEADERS,
    MIN_CHUNK_SIZE,
    SEAL_MAGIC,
    SEAL_SIZE,
    STATEMENT_MAGIC,
    STATEMENT_SIZE,
    check_chunk_size,
)
from requester.protocol.source import MAX_URL_BYTES, Source, write_source
from tests.conftest import EDGE_SEED, NOW, OTHER_EDGE_SEED, make_head
from tests.protocol.support import (
    CHUNK_SIZES,
    assert_every_flip_refused,
    flips,
    heads,
    sources,
)

EDGE = NodeKey(EDGE_SEED)
OTHER = NodeKey(OTHER_EDGE_SEED)
CS = MIN_CHUNK_SIZE
HEAD = make_head(EDGE, chunk_size=CS)
EXAMPLE_URL = UrlSource("https://example.com/a")


def raw_head(
    key: NodeKey,
    *,
    source: Source = EXAMPLE_URL,
    status: int = 200,
    headers: Sequence[tuple[str, str]] = (),
    chunk_size: int = CS,
    size_hint: int = UNKNOWN_SIZE,
    edge_id: bytes | None = None,
) -> bytes:
    """Head bytes signed by ``key`` with no checks on the fields: for decoder limits."""
    w = Writer(HEAD_MAGIC).fixed(edge_id or key.node_id.raw, 32).u64(NOW).fixed(bytes(16), 16)
    write_source(w, source)
    w.u16(status).u16(len(headers))
    for name, value in headers:
        w.text16(name).text16(value)
    body = w.u32(chunk_size).u64(size_hint).getvalue()
    return body + key.sign(body)


def raw_statement(
    key: NodeKey, content_id: bytes, index: int, size: int, digest: bytes = bytes(32)
) -> bytes:
    body = Writer(STATEMENT_MAGIC).fixed(content_id, 32).u32(index).u32(size)
    data = body.fixed(digest, 32).getvalue()
    return data + key.sign(data)


def raw_seal(
    key: NodeKey, content_id: bytes, total: int, count: int, digest: bytes = bytes(32)
) -> bytes:
    body = Writer(SEAL_MAGIC).fixed(content_id, 32).u64(total).u32(count)
    data = body.fixed(digest, 32).getvalue()
    return data + key.sign(data)


# Head round trips ------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(heads(EDGE))
def test_head_round_trip(head: ManifestHead) -> None:
    data = head.encode()
    assert data == head.body + head.signature
    assert data.startswith(b"ATM\x01")
    assert len(data) <= MAX_HEAD_BYTES
    decoded = ManifestHead.decode(data)
    assert decoded == head
    assert decoded.encode() == data
    assert decoded.content_id == hashlib.sha256(data[:-64]).digest()
    EDGE.node_id.verify(data[:-64], data[-64:], "head")


def test_head_fields_and_layout() -> None:
    head = make_head(
        EDGE,
        source=TorrentSource(b"\x07" * 32, "dir/f.bin"),
        status=206,
        headers=[("Content-Type", "text/html"), ("X-A", "1"), ("x-a", "2")],
        chunk_size=CS,
        size_hint=12345,
    )
    assert head.headers == (("content-type", "text/html"), ("x-a", "1"), ("x-a", "2"))
    assert head.header("CONTENT-TYPE") == "text/html"
    assert head.header("x-a") == "1"
    assert head.header("etag") is None
    expected_body = (
        b"ATM\x01"
        + EDGE.node_id.raw
        + NOW.to_bytes(8, "big")
        + bytes(16)
        + b"\x03"
        + b"\x07" * 32
        + b"\x00\x09dir/f.bin"
        + (206).to_bytes(2, "big")
        + (3).to_bytes(2, "big")
        + b"\x00\x0ccontent-type\x00\x09text/html"
        + b"\x00\x03x-a\x00\x011"
        + b"\x00\x03x-a\x00\x012"
        + CS.to_bytes(4, "big")
        + (12345).to_bytes(8, "big")
    )
    assert head.body == expected_body
    assert head.content_id == hashlib.sha256(expected_body).digest()
    assert ManifestHead.decode(head.encode()) == head


def test_content_id_depends_on_every_field() -> None:
    base = make_head(EDGE)
    variants = [
        make_head(OTHER),
        make_head(EDGE, created_at=NOW + 1),
        make_head(EDGE, nonce=b"\x01" * 16),
        make_head(EDGE, source=UrlSource("https://example.com/b")),
        make_head(EDGE, status=203),
        make_head(EDGE, headers=[("content-type", "text/html")]),
        make_head(EDGE, headers=[]),
        make_head(EDGE, chunk_size=DEFAULT_CHUNK_SIZE * 2),
        make_head(EDGE, size_hint=10),
    ]
    ids = {base.content_id} | {v.content_id for v in variants}
    assert len(ids) == len(variants) + 1


def test_nonce_must_be_16_bytes() -> None:
    with pytest.raises(MalformedMessage, match="nonce is 16 bytes"):
        make_head(EDGE, nonce=b"\x01" * 15)


def test_signing_is_deterministic() -> None:
    assert make_head(EDGE).encode() == make_head(EDGE).encode()


# Head limits (both when creating and when decoding) --------------------------------


def test_limits_constants() -> None:
    assert (MAX_HEADERS, MAX_HEADER_NAME, MAX_HEADER_VALUE) == (64, 128, 8192)
    assert (MAX_HEADER_BYTES, MAX_HEAD_BYTES) == (32 * 1024, 48 * 1024)
    assert (MIN_CHUNK_SIZE, MAX_CHUNK_SIZE, DEFAULT_CHUNK_SIZE) == (2**14, 2**24, 2**18)
    assert MAX_CHUNKS == 2**22
    assert (STATEMENT_SIZE, SEAL_SIZE) == (140, 144)


def test_headers_at_limits_are_accepted() -> None:
    many = [(f"h{i}", "v") for i in range(MAX_HEADERS)]
    assert ManifestHead.decode(make_head(EDGE, headers=many).encode()).headers == tuple(many)
    longest = [("x" * MAX_HEADER_NAME, "v" * MAX_HEADER_VALUE)]
    assert ManifestHead.decode(make_head(EDGE, headers=longest).encode()).headers == tuple(longest)
    full = [(name, "v" * (MAX_HEADER_VALUE - 1)) for name in "abcd"]  # exactly 32 KiB
    assert ManifestHead.decode(make_head(EDGE, headers=full).encode()).headers == tuple(full)
    url = "https://e.com/" + "a" * (MAX_URL_BYTES - len("https://e.com/"))
    assert ManifestHead.decode(make_head(EDGE, source=UrlSource(url)).encode()).source.url == url  # type: ignore[union-attr]


BAD_HEADER_SETS: list[tuple[list[tuple[str, str]], str]] = [
    ([(f"h{i}", "v") for i in range(MAX_HEADERS + 1)], "65 headers, limit 64"),
    ([("a", "v" * (MAX_HEADER_VALUE + 1))], "bad value for header 'a'"),
    ([("a", "\u00e9" * (MAX_HEADER_VALUE // 2 + 1))], "bad value for header 'a'"),
    ([("x" * (MAX_HEADER_NAME + 1), "v")], "lowercase token"),
    (
        [*((name, "v" * (MAX_HEADER_VALUE - 1)) for name in "abcd"), ("e", "")],
        "total 32769 bytes, limit 32768",
    ),
    ([("a", "line\nbreak")], "bad value for header 'a'"),
    ([("a", "nul\x00")], "bad value for header 'a'"),
    ([("a", "del\x7f")], "bad value for header 'a'"),
    ([("a", "\u0100")], "bad value for header 'a'"),
    ([("", "v")], "lowercase token"),
    ([("a b", "v")], "lowercase token"),
    ([("a:b", "v")], "lowercase token"),
    ([("caf\u00e9", "v")], "lowercase token"),
]


@pytest.mark.parametrize(("headers", "message"), BAD_HEADER_SETS)
def test_bad_headers_refused_on_create(headers: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(MalformedMessage, match=message):
        make_head(EDGE, headers=headers)


@pytest.mark.parametrize(("headers", "message"), BAD_HEADER_SETS)
def test_bad_headers_refused_on_decode(headers: list[tuple[str, str]], message: str) -> None:
    data = raw_head(EDGE, headers=headers)
    with pytest.raises(MalformedMessage):
        ManifestHead.decode(data)


@pytest.mark.parametrize("name", sorted(FORBIDDEN_HEADERS))
def test_forbidden_headers(name: str) -> None:
    with pytest.raises(MalformedMessage, match=f"header '{name}' may not appear in a manifest"):
        make_head(EDGE, headers=[(name.upper(), "x")])
    with pytest.raises(MalformedMessage, match=f"header '{name}' may not appear in a manifest"):
        ManifestHead.decode(raw_head(EDGE, headers=[(name, "x")]))


def test_forbidden_set_is_the_documented_one() -> None:
    assert (
        frozenset(
            {
                "connection",
                "keep-alive",
                "proxy-connection",
                "transfer-encoding",
                "te",
                "trailer",
                "upgrade",
                "proxy-authenticate",
                "proxy-authorization",
                "content-length",
                "content-encoding",
                "content-range",
                "set-cookie",
                "set-cookie2",
            }
        )
        == FORBIDDEN_HEADERS
    )


@pytest.mark.parametrize("value", ["bytes 0-65535/20971520", "bytes 100-100/101", "bytes 5-9/*"])
def test_a_partial_content_head_carries_its_content_range(value: str) -> None:
    head = make_head(EDGE, status=206, headers=[("Content-Range", value)])
    assert ManifestHead.decode(head.encode()).headers == (("content-range", value),)


@pytest.mark.parametrize(
    ("status", "headers", "message"),
    [
        (200, [("content-range", "bytes 0-1/2")], "may not appear in a manifest"),
        (206, [("content-range", "bytes 0-1/2, 4-5/6")], "one byte range"),
        (206, [("content-range", "items 0-1/2")], "one byte range"),
        (206, [("content-range", "bytes 9-1/20")], "one byte range"),
        (206, [("content-range", "bytes 0-20/20")], "ends past its total"),
        (206, [("content-range", "bytes */20")], "one byte range"),
        (206, [("content-range", "bytes 0-1/2"), ("content-range", "bytes 0-1/2")], "at most one"),
    ],
)
def test_content_range_only_as_one_range_of_a_206(
    status: int, headers: list[tuple[str, str]], message: str
) -> None:
    with pytest.raises(MalformedMessage, match=message):
        make_head(EDGE, status=status, headers=headers)
    with pytest.raises(MalformedMessage, match=message):
        ManifestHead.decode(raw_head(EDGE, status=status, headers=headers))


def test_uppercase_name_refused_on_decode() -> None:
    with pytest.raises(MalformedMessage, match="lowercase token"):
        ManifestHead.decode(raw_head(EDGE, headers=[("Content-Type", "x")]))


def test_decoder_refuses_too_many_headers_from_the_count_alone() -> None:
    """A count above 64 is refused before any header is read."""
    body = Writer(HEAD_MAGIC).fixed(EDGE.node_id.raw, 32).u64(NOW).fixed(bytes(16), 16)
    write_source(body, UrlSource("https://e.com/"))
    data = body.u16(200).u16(MAX_HEADERS + 1).getvalue()
    with pytest.raises(MalformedMessage, match="65 headers, limit 64"):
        ManifestHead.decode(data)


def test_decoder_header_field_limits() -> None:
    name = raw_head(EDGE, headers=[("x" * (MAX_HEADER_NAME + 1), "v")])
    with pytest.raises(MalformedMessage, match="header name is 129 bytes, limit 128"):
        ManifestHead.decode(name)
    value = raw_head(EDGE, headers=[("a", "v" * (MAX_HEADER_VALUE + 1))])
    with pytest.raises(MalformedMessage, match="header value is 8193 bytes, limit 8192"):
        ManifestHead.decode(value)


def test_url_too_long() -> None:
    url = "https://e.com/" + "a" * (MAX_URL_BYTES - len("https://e.com/") + 1)
    with pytest.raises(MalformedMessage, match="URL longer than 8192 bytes"):
        make_head(EDGE, source=UrlSource(url))
    body = (
        Writer(HEAD_MAGIC)
        .fixed(EDGE.node_id.raw, 32)
        .u64(NOW)
        .fixed(bytes(16), 16)
        .u8(1)
        .text16(url)
    )
    data = body.u16(200).u16(0).u32(CS).u64(UNKNOWN_SIZE).getvalue()
    with pytest.raises(MalformedMessage, match="url is 8193 bytes, limit 8192"):
        ManifestHead.decode(data + EDGE.sign(data))


@pytest.mark.parametrize(
    "chunk_size",
    [
        0,
        1,
        MIN_CHUNK_SIZE // 2,
        MIN_CHUNK_SIZE - 1,
        MIN_CHUNK_SIZE + 1,
        3 * MIN_CHUNK_SIZE,
        MAX_CHUNK_SIZE * 2,
        2**32 - 1,
    ],
)
def test_bad_chunk_sizes(chunk_size: int) -> None:
    with pytest.raises(MalformedMessage, match=f"chunk size {chunk_size} is not a power of two"):
        check_chunk_size(chunk_size)
    with pytest.raises(MalformedMessage, match="is not a power of two"):
        make_head(EDGE, chunk_size=chunk_size)
    with pytest.raises(MalformedMessage, match="is not a power of two"):
        ManifestHead.decode(raw_head(EDGE, chunk_size=chunk_size))


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_good_chunk_sizes(chunk_size: int) -> None:
    check_chunk_size(chunk_size)
    assert ManifestHead.decode(raw_head(EDGE, chunk_size=chunk_size)).chunk_size == chunk_size


@pytest.mark.parametrize("status", [0, 99, 600, 65535])
def test_bad_status(status: int) -> None:
    with pytest.raises(MalformedMessage, match=f"HTTP status {status} out of range"):
        make_head(EDGE, status=status)
    with pytest.raises(MalformedMessage, match=f"HTTP status {status} out of range"):
        ManifestHead.decode(raw_head(EDGE, status=status))


def test_size_hint_limit() -> None:
    assert make_head(EDGE, chunk_size=CS, size_hint=CS * MAX_CHUNKS).size_hint == CS * MAX_CHUNKS
    with pytest.raises(MalformedMessage, match=f"needs more than {MAX_CHUNKS} chunks"):
        make_head(EDGE, chunk_size=CS, size_hint=CS * MAX_CHUNKS + 1)
    with pytest.raises(MalformedMessage, match=f"needs more than {MAX_CHUNKS} chunks"):
        ManifestHead.decode(raw_head(EDGE, chunk_size=CS, size_hint=CS * MAX_CHUNKS + 1))


def test_out_of_range_integers_refused_on_create() -> None:
    with pytest.raises(MalformedMessage, match="does not fit in 64 bits"):
        make_head(EDGE, created_at=-1)
    with pytest.raises(MalformedMessage, match="does not fit in 64 bits"):
        make_head(EDGE, created_at=2**64)


def test_trailing_truncated_and_oversize() -> None:
    data = HEAD.encode()
    with pytest.raises(MalformedMessage, match="manifest head: 1 unexpected trailing bytes"):
        ManifestHead.decode(data + b"\x00")
    for cut in (0, 3, 4, 40, len(data) - 64, len(data) - 1):
        with pytest.raises(MalformedMessage, match=r"truncated|bad magic"):
            ManifestHead.decode(data[:cut])
    with pytest.raises(MalformedMessage, match=f"limit {MAX_HEAD_BYTES}"):
        ManifestHead.decode(data + bytes(MAX_HEAD_BYTES))
    with pytest.raises(MalformedMessage, match="bad magic or version"):
        ManifestHead.decode(b"ATM\x02" + data[4:])
    with pytest.raises(MalformedMessage, match="bad magic or version"):
        ManifestHead.decode(HEAD.statement(EDGE, 0, b"x").encode())


def test_head_signed_by_another_key_is_refused() -> None:
    forged = raw_head(OTHER, edge_id=EDGE.node_id.raw)
    with pytest.raises(InvalidSignature, match="manifest head: signature does not verify"):
        ManifestHead.decode(forged)


def test_every_byte_of_a_head_is_protected() -> None:
    head = make_head(
        EDGE,
        source=TorrentSource(bytes(range(20)), "a/b"),
        headers=[("etag", '"x"')],
        chunk_size=CS,
        size_hint=100,
    )
    assert_every_flip_refused(head.encode(), ManifestHead.decode)
    assert_every_flip_refused(HEAD.encode(), ManifestHead.decode)


@settings(max_examples=40, deadline=None)
@given(heads(EDGE), st.data())
def test_random_flips_in_random_heads(head: ManifestHead, data: st.DataObject) -> None:
    encoded = head.encode()
    index = data.draw(st.integers(0, len(encoded) - 1))
    mask = data.draw(st.integers(1, 255))
    mutated = encoded[:index] + bytes([encoded[index] ^ mask]) + encoded[index + 1 :]
    with pytest.raises(ProtocolError):
        ManifestHead.decode(mutated)


@settings(max_examples=500)
@given(st.one_of(st.binary(max_size=400), st.binary(max_size=400).map(lambda b: b"ATM\x01" + b)))
def test_head_decode_only_raises_protocol_errors(data: bytes) -> None:
    try:
        ManifestHead.decode(data)
    except ProtocolError:
        return
    pytest.fail("random bytes decoded as a signed head")


@settings(max_examples=200)
@given(st.binary(max_size=200), st.integers(0, 300))
def test_head_decode_fuzz_spliced_into_valid_head(junk: bytes, at: int) -> None:
    data = HEAD.encode()
    mutated = data[:at] + junk + data[at + 1 :]
    assume(mutated != data)
    with pytest.raises(ProtocolError):
        ManifestHead.decode(mutated)


# Chunk statements ------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(st.integers(0, MAX_CHUNKS - 1), st.binary(min_size=1, max_size=CS))
def test_statement_round_trip(index: int, chunk: bytes) -> None:
    statement = HEAD.statement(EDGE, index, chunk)
    data = statement.encode()
    assert len(data) == STATEMENT_SIZE
    assert data[:4] == b"ATC\x01"
    assert data[4:36] == HEAD.content_id
    assert data[36:40] == index.to_bytes(4, "big")
    assert data[40:44] == len(chunk).to_bytes(4, "big")
    assert data[44:76] == hashlib.sha256(chunk).digest()
    verified = HEAD.verify_statement(data)
    assert verified == statement
    assert (verified.index, verified.size) == (index, len(chunk))
    verified.check(chunk)


def test_statement_check_binds_size_and_hash() -> None:
    statement = HEAD.statement(EDGE, 3, b"abc")
    statement.check(b"abc")
    with pytest.raises(WrongBinding, match="chunk 3 is 2 bytes, stated 3"):
        statement.check(b"ab")
    with pytest.raises(WrongBinding, match="chunk 3 does not match its stated SHA-256"):
        statement.check(b"abd")


def test_statement_refusals_when_signing() -> None:
    with pytest.raises(WrongBinding, match="only the head's own edge"):
        HEAD.statement(OTHER, 0, b"x")
    with pytest.raises(MalformedMessage, match="chunk 0 of 0 bytes does not fit"):
        HEAD.statement(EDGE, 0, b"")
    with pytest.raises(MalformedMessage, match=f"of {CS + 1} bytes does not fit"):
        HEAD.statement(EDGE, 0, bytes(CS + 1))
    with pytest.raises(MalformedMessage, match="does not fit"):
        HEAD.statement(EDGE, MAX_CHUNKS, b"x")
    assert HEAD.statement(EDGE, MAX_CHUNKS - 1, bytes(CS)).size == CS


def test_statement_refusals_when_verifying() -> None:
    good = HEAD.statement(EDGE, 0, b"x").encode()
    other_head = make_head(EDGE, chunk_size=CS, status=201)
    with pytest.raises(WrongBinding, match="chunk statement is for another content id"):
        other_head.verify_statement(good)
    forged = raw_statement(OTHER, HEAD.content_id, 0, 1)
    with pytest.raises(InvalidSignature, match="chunk statement: signature does not verify"):
        HEAD.verify_statement(forged)
    for index, size in ((0, 0), (0, CS + 1), (MAX_CHUNKS, 1)):
        impossible = raw_statement(EDGE, HEAD.content_id, index, size)
        with pytest.raises(MalformedMessage, match="impossible size"):
            HEAD.verify_statement(impossible)
    with pytest.raises(MalformedMessage, match="chunk statement must be 140 bytes"):
        HEAD.verify_statement(good + b"\x00")
    with pytest.raises(MalformedMessage, match="chunk statement must be 140 bytes"):
        HEAD.verify_statement(good[:-1])
    with pytest.raises(MalformedMessage, match="bad magic"):
        HEAD.verify_statement(b"ATS\x01" + good[4:])


def test_every_byte_of_a_statement_is_protected() -> None:
    data = HEAD.statement(EDGE, 5, b"hello").encode()
    assert_every_flip_refused(data, HEAD.verify_statement)


@settings(max_examples=500)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(min_size=STATEMENT_SIZE, max_size=STATEMENT_SIZE),
        st.binary(min_size=136, max_size=136).map(lambda b: b"ATC\x01" + b),
        st.binary(min_size=104, max_size=104).map(lambda b: b"ATC\x01" + HEAD.content_id + b),
    )
)
def test_verify_statement_only_raises_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        HEAD.verify_statement(data)


# Seals -----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=20), st.integers(1, CS))
def test_seal_round_trip(hashes: list[bytes], last: int) -> None:
    total = 0 if not hashes else (len(hashes) - 1) * CS + last
    seal = HEAD.seal(EDGE, total, hashes)
    data = seal.encode()
    assert len(data) == SEAL_SIZE
    assert data[:4] == b"ATS\x01"
    assert data[4:36] == HEAD.content_id
    assert data[36:44] == total.to_bytes(8, "big")
    assert data[44:48] == len(hashes).to_bytes(4, "big")
    assert data[48:80] == chunk_list_digest(hashes)
    verified = HEAD.verify_seal(data)
    assert verified == seal
    verified.check_chunk_list(hashes)
    for index in range(len(hashes)):
        expected = last if index == len(hashes) - 1 else CS
        assert verified.chunk_length(index, CS) == expected


def test_chunk_list_digest_is_tagged_sha256() -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    assert (
        chunk_list_digest(hashes)
        == hashlib.sha256(b"atlas.chunk-list.v1" + b"".join(hashes)).digest()
    )
    assert chunk_list_digest([]) == hashlib.sha256(b"atlas.chunk-list.v1").digest()
    assert chunk_list_digest(hashes) != chunk_list_digest(hashes[::-1])
    with pytest.raises(MalformedMessage, match="a chunk hash is 32 bytes"):
        chunk_list_digest([bytes(31)])


def test_seal_checks_totals() -> None:
    hashes = [bytes(32)] * 2
    HEAD.seal(EDGE, CS + 1, hashes)
    HEAD.seal(EDGE, 2 * CS, hashes)
    for total in (CS, 2 * CS + 1, 0):
        with pytest.raises(MalformedMessage, match=f"2 chunks cannot hold {total} bytes"):
            HEAD.seal(EDGE, total, hashes)
    with pytest.raises(WrongBinding, match="only the head's own edge seals it"):
        HEAD.seal(OTHER, 1, [bytes(32)])
    for total, count in (
        (CS, 2),
        (CS + 1, 1),
        (0, 1),
        (1, 0),
        (CS * (MAX_CHUNKS + 1), MAX_CHUNKS + 1),
    ):
        with pytest.raises(MalformedMessage, match="cannot hold"):
            HEAD.verify_seal(raw_seal(EDGE, HEAD.content_id, total, count))


def test_seal_refusals_when_verifying() -> None:
    good = HEAD.seal(EDGE, 1, [bytes(32)]).encode()
    with pytest.raises(WrongBinding, match="seal is for another content id"):
        make_head(EDGE, chunk_size=CS, status=201).verify_seal(good)
    with pytest.raises(InvalidSignature, match="seal: signature does not verify"):
        HEAD.verify_seal(raw_seal(OTHER, HEAD.content_id, 1, 1))
    with pytest.raises(MalformedMessage, match="seal must be 144 bytes"):
        HEAD.verify_seal(good + b"\x00")
    with pytest.raises(MalformedMessage, match="seal must be 144 bytes"):
        HEAD.verify_seal(good[:-1])


def test_seal_chunk_list_and_lengths() -> None:
    hashes = [hashlib.sha256(bytes([i])).digest() for i in range(3)]
    seal = HEAD.seal(EDGE, 2 * CS + 5, hashes)
    seal.check_chunk_list(hashes)
    with pytest.raises(WrongBinding, match="chunk list has 2 entries, sealed 3"):
        seal.check_chunk_list(hashes[:2])
    with pytest.raises(WrongBinding, match="does not match the sealed digest"):
        seal.check_chunk_list([hashes[0], hashes[2], hashes[1]])
    assert [seal.chunk_length(i, CS) for i in range(3)] == [CS, CS, 5]
    with pytest.raises(MalformedMessage, match="chunk 3 is beyond the last \\(2\\)"):
        seal.chunk_length(3, CS)
    with pytest.raises(MalformedMessage, match="beyond the last"):
        seal.chunk_length(-1, CS)


def test_every_byte_of_a_seal_is_protected() -> None:
    data = HEAD.seal(EDGE, CS + 7, [bytes(32), b"\x01" * 32]).encode()
    assert_every_flip_refused(data, HEAD.verify_seal)
    empty = HEAD.seal(EDGE, 0, []).encode()
    assert_every_flip_refused(empty, HEAD.verify_seal)


@settings(max_examples=500)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(min_size=SEAL_SIZE, max_size=SEAL_SIZE),
        st.binary(min_size=140, max_size=140).map(lambda b: b"ATS\x01" + b),
        st.binary(min_size=108, max_size=108).map(lambda b: b"ATS\x01" + HEAD.content_id + b),
    )
)
def test_verify_seal_only_raises_protocol_errors(data: bytes) -> None:
    with pytest.raises(ProtocolError):
        HEAD.verify_seal(data)


def test_flips_helper_changes_exactly_one_byte() -> None:
    data = b"abc"
    seen = list(flips(data))
    assert len(seen) == 9
    for index, mutated in seen:
        assert len(mutated) == 3
        assert [i for i in range(3) if mutated[i] != data[i]] == [index]


@settings(max_examples=50, deadline=None)
@given(sources)
def test_head_for_any_source(source: Source) -> None:
    head = make_head(EDGE, source=source)
    assert ManifestHead.decode(head.encode()).source == source


@pytest.mark.parametrize(
    ("size_hint", "chunks"),
    [(UNKNOWN_SIZE, None), (0, 0), (1, 1), (CS, 1), (CS + 1, 2), (3 * CS, 3)],
)
def test_stated_chunks_counts_the_chunks_of_the_stated_size(
    size_hint: int, chunks: int | None
) -> None:
    head = make_head(EDGE, chunk_size=CS, size_hint=size_hint)
    assert head.stated_chunks == chunks
