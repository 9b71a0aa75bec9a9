"""Hypothesis strategies and checks shared by the protocol tests (factories live in conftest)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from hypothesis import strategies as st

from requester.protocol import ManifestHead, NodeKey, ProtocolError, TorrentSource, UrlSource
from requester.protocol.codec import U64_MAX
from requester.protocol.manifest import (
    FORBIDDEN_HEADERS,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    MIN_CHUNK_SIZE,
)
from requester.protocol.source import Source

TOKEN_CHARS = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz"
VALUE_CHARS = (
    "\t" + "".join(chr(c) for c in range(0x20, 0x7F)) + "".join(chr(c) for c in range(0x80, 0x100))
)
CHUNK_SIZES = [1 << k for k in range(MIN_CHUNK_SIZE.bit_length() - 1, MAX_CHUNK_SIZE.bit_length())]

header_names = st.text(st.sampled_from(TOKEN_CHARS), min_size=1, max_size=24).filter(
    lambda name: name not in FORBIDDEN_HEADERS
)
header_values = st.text(st.sampled_from(VALUE_CHARS), max_size=120)
headers = st.lists(st.tuples(header_names, header_values), max_size=10)

urls = st.builds(
    lambda scheme, rest: f"{scheme}://{rest}",
    st.sampled_from(["http", "https"]),
    st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=300),
)
url_sources = st.builds(UrlSource, urls)

_path_parts = st.text(
    st.characters(blacklist_characters="/\x00", blacklist_categories=["Cs"]),
    min_size=1,
    max_size=20,
).filter(lambda part: part not in (".", ".."))
torrent_sources = st.builds(
    TorrentSource,
    st.one_of(st.binary(min_size=20, max_size=20), st.binary(min_size=32, max_size=32)),
    st.lists(_path_parts, min_size=1, max_size=6).map("/".join),
)
sources: st.SearchStrategy[Source] = st.one_of(url_sources, torrent_sources)
chunk_sizes = st.sampled_from(CHUNK_SIZES)


@st.composite
def size_hints(draw: st.DrawFn, chunk_size: int) -> int:
    """A size hint the head accepts for ``chunk_size``: unknown, or at most 2^22 chunks."""
    return draw(st.one_of(st.just(U64_MAX), st.integers(0, chunk_size * MAX_CHUNKS)))


def flips(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Every copy of ``data`` with exactly one byte changed (three ways per byte)."""
    for index in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            yield index, data[:index] + bytes([data[index] ^ mask]) + data[index + 1 :]


def assert_every_flip_refused(data: bytes, decode: Callable[[bytes], object]) -> None:
    """Changing any one byte of a signed message must make its decoder refuse it.

    Every field of these messages is covered by the signature and the verifiers
    are strict (libsodium Ed25519, low-s secp256k1), so no mutation can
    legitimately decode: one that did would be a message with changed fields
    verifying under the original signature.
    """
    decode(data)  # the original is valid
    for index, mutated in flips(data):
        with pytest.raises(ProtocolError):
            decode(mutated)
            pytest.fail(f"byte {index} changed and the message still decodes")


@st.composite
def heads(draw: st.DrawFn, key: NodeKey) -> ManifestHead:
    """A signed head by ``key`` with random source, status, headers, chunk size and hint."""
    chunk_size = draw(chunk_sizes)
    return ManifestHead.create(
        key,
        source=draw(sources),
        status=draw(st.integers(100, 599)),
        headers=draw(headers),
        created_at=draw(st.integers(0, U64_MAX)),
        chunk_size=chunk_size,
        size_hint=draw(size_hints(chunk_size)),
    )
