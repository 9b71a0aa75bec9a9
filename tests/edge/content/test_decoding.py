"""Every streaming decoder against its reference library's one-shot decode.

The references: ``gzip.decompress`` (members in turn, NUL padding skipped),
``zlib.decompress`` (zlib-wrapped or raw deflate; bytes after the stream ignored),
``brotli.decompress`` and zstandard's multi-frame decode. Bodies are fed in random
splits, as the network delivers them. Where Atlas differs from a reference it is on
purpose, and asserted here so it stays a decision:

- gzip: bytes after a member that are neither NUL padding nor another member are
  ignored, as browsers do (``gzip.decompress`` refuses them);
- an empty body is empty under every coding (``zlib`` and ``brotli`` refuse it);
- zstd: a body that ends inside a frame is refused (zstandard's stream decode returns
  what it has).
"""

from __future__ import annotations

import gzip
import itertools
import random
import struct
import zlib
from collections.abc import Callable

import brotli  # type: ignore[import-untyped]
import pytest
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdn_edge.content.decoding import DECODERS, READ_SIZE, Layers
from cdn_edge.content.origin_errors import BadOriginEncoding, OriginTooLarge

CAP = 1 << 30
SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)  # fmt: skip


def decode(coding: str, body: bytes, cuts: list[int]) -> bytes:
    """``body`` decoded by the edge's decoder, fed in pieces cut at ``cuts``."""
    layers = Layers([DECODERS[coding]()], CAP)
    out: list[bytes] = []
    edges = [0, *sorted(cuts), len(body)]
    for start, end in itertools.pairwise(edges):
        for piece in layers.feed(body[start:end]):
            assert len(piece) <= max(READ_SIZE, 16 << 20)
            out.append(piece)
    out.extend(layers.finish())
    return b"".join(out)


def make_payload(seed: int, size: int, kind: int) -> bytes:
    """Random, repetitive or mixed bytes: bombs-in-small, and data zlib cannot shrink."""
    rng = random.Random(seed)
    if kind == 0:
        return rng.randbytes(size)
    if kind == 1:
        return (rng.randbytes(rng.randint(1, 40)) * (size // 8 + 1))[:size]
    parts = [rng.randbytes(rng.randint(0, 300)) + bytes(rng.randint(0, 5000)) for _ in range(8)]
    return b"".join(parts)[:size]


payloads = st.builds(
    make_payload,
    st.integers(0, 2**32),
    st.one_of(st.integers(0, 64), st.integers(0, 300_000)),
    st.integers(0, 2),
)
"""Up to 300 KB: past READ_SIZE (64 KiB), where a decoder's output is cut into pieces."""


def with_cuts(body: st.SearchStrategy[bytes]) -> st.SearchStrategy[tuple[bytes, list[int]]]:
    return body.flatmap(
        lambda b: st.tuples(st.just(b), st.lists(st.integers(0, len(b)), max_size=12 if b else 0))
    )


def gzip_members(levels: list[int], parts: list[bytes], pads: list[int]) -> bytes:
    return b"".join(
        gzip.compress(part, compresslevel=level, mtime=0) + bytes(pad)
        for part, level, pad in zip(parts, levels, pads, strict=False)
    )


gzip_bodies = st.builds(
    gzip_members,
    st.lists(st.integers(0, 9), min_size=4, max_size=4),
    st.lists(payloads, min_size=1, max_size=4),
    st.lists(st.sampled_from([0, 0, 0, 1, 7]), min_size=4, max_size=4),
)
"""One to four members, some empty, some followed by NUL padding."""


@SETTINGS
@given(st.sampled_from(["gzip", "x-gzip"]), with_cuts(gzip_bodies))
def test_gzip_matches_gzip_decompress(coding: str, case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    assert decode(coding, body, cuts) == gzip.decompress(body)


def test_cat_a_gz_b_gz_is_a_then_b() -> None:
    """The reported case: ``cat a.gz b.gz`` where a's output fills READ_SIZE many times."""
    a, b = bytes(range(256)) * 1000, b"B" * 300_000
    body = gzip.compress(a) + gzip.compress(b)
    assert decode("gzip", body, []) == a + b == gzip.decompress(body)
    bomb_shaped = gzip.compress(bytes(204800)) * 2  # 466 bytes: 400 KiB, not 4 GiB
    assert decode("gzip", bomb_shaped, []) == bytes(409600)


@SETTINGS
@given(with_cuts(gzip_bodies), st.binary(max_size=40), st.integers(1, 255))
def test_gzip_ignores_trailing_garbage_that_gzip_decompress_refuses(
    case: tuple[bytes, list[int]], junk: bytes, first: int
) -> None:
    body, cuts = case
    if first == 0x1F:
        first = 0x20  # 1f 8b starts another member, decoded like any
    garbage = bytes([first]) + junk
    assert decode("gzip", body + garbage, cuts) == gzip.decompress(body)
    with pytest.raises(gzip.BadGzipFile):
        gzip.decompress(body + garbage)


def deflate(data: bytes, level: int, wbits: int) -> bytes:
    obj = zlib.compressobj(level, zlib.DEFLATED, wbits)
    return obj.compress(data) + obj.flush()


@SETTINGS
@given(
    payloads, st.integers(0, 9), st.sampled_from([zlib.MAX_WBITS, -zlib.MAX_WBITS]),
    st.binary(max_size=30), st.data(),
)  # fmt: skip
def test_deflate_matches_zlib_decompress(
    data: bytes, level: int, wbits: int, trailing: bytes, draw: st.DataObject
) -> None:
    """zlib-wrapped or raw, sniffed from the first two bytes; what follows the stream (even
    another stream) is ignored, as ``zlib.decompress`` does."""
    body = deflate(data, level, wbits) + trailing
    cuts = draw.draw(st.lists(st.integers(0, len(body)), max_size=12))
    assert decode("deflate", body, cuts) == zlib.decompress(body, wbits) == data


@SETTINGS
@given(payloads, st.integers(0, 9), st.binary(max_size=30), st.data())
def test_br_matches_brotli_decompress(
    data: bytes, quality: int, trailing: bytes, draw: st.DataObject
) -> None:
    body = brotli.compress(data, quality=quality) + trailing
    cuts = draw.draw(st.lists(st.integers(0, len(body)), max_size=12))
    try:
        expected = brotli.decompress(body)
    except brotli.error:
        with pytest.raises(BadOriginEncoding):
            decode("br", body, cuts)
        return
    assert decode("br", body, cuts) == expected == data


def zstd_frame(data: bytes, level: int, how: int) -> bytes:
    """A frame with its size (one-shot), without it (streamed), or a skippable frame."""
    if how == 2:
        return struct.pack("<II", 0x184D2A50 + level % 16, len(data) % 64) + data[: len(data) % 64]
    compressor = zstandard.ZstdCompressor(level=level)
    if how == 0:
        return compressor.compress(data)
    obj = compressor.compressobj()
    return obj.compress(data) + obj.flush()


def zstd_reference(body: bytes) -> bytes:
    return zstandard.ZstdDecompressor().decompressobj(read_across_frames=True).decompress(body)


zstd_bodies = st.lists(
    st.builds(zstd_frame, payloads, st.integers(1, 9), st.sampled_from([0, 0, 1, 2])),
    min_size=1, max_size=4,
).map(b"".join)  # fmt: skip


@SETTINGS
@given(with_cuts(zstd_bodies))
def test_zstd_frames_match_zstandard(case: tuple[bytes, list[int]]) -> None:
    body, cuts = case
    assert decode("zstd", body, cuts) == zstd_reference(body)


@SETTINGS
@given(zstd_bodies, st.binary(min_size=1, max_size=7))
def test_zstd_refuses_trailing_garbage(body: bytes, garbage: bytes) -> None:
    """Under 8 bytes, garbage cannot be a whole (skippable) frame."""
    with pytest.raises(BadOriginEncoding):
        decode("zstd", body + garbage, [])
    try:
        lenient = zstd_reference(body + garbage)
    except zstandard.ZstdError:
        return  # refused by the reference too
    assert lenient == zstd_reference(body)  # it took the garbage for a frame yet to come


Reference = Callable[[bytes], bytes]
REFERENCES: dict[str, Reference] = {
    "gzip": gzip.decompress,
    "deflate": zlib.decompress,
    "br": brotli.decompress,
    "zstd": zstd_reference,
}


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(REFERENCES)), st.binary(max_size=200), st.data())
def test_corrupt_bodies_raise_only_bad_encoding_and_never_disagree(
    coding: str, junk: bytes, draw: st.DataObject
) -> None:
    """Arbitrary bytes, or a valid body with bytes flipped or cut: our decoder either
    agrees with the reference or refuses with its own error; nothing else escapes."""
    valid = {
        "gzip": gzip.compress(b"hello " * 50, mtime=0),
        "deflate": zlib.compress(b"hello " * 50),
        "br": brotli.compress(b"hello " * 50),
        "zstd": zstandard.ZstdCompressor().compress(b"hello " * 50),
    }[coding]
    body = draw.draw(st.sampled_from([junk, valid[: len(junk) % len(valid)], _flip(valid, junk)]))
    cuts = draw.draw(st.lists(st.integers(0, len(body)), max_size=6))
    try:
        ours = decode(coding, body, cuts)
    except BadOriginEncoding:
        return
    if not body:
        assert ours == b""
        return
    assert ours == REFERENCES[coding](body)


def _flip(valid: bytes, junk: bytes) -> bytes:
    out = bytearray(valid)
    for i, byte in enumerate(junk[:8]):
        out[(byte * 7 + i) % len(out)] ^= 1 << (i % 8)
    return bytes(out)


@pytest.mark.parametrize("coding", sorted(DECODERS))
def test_an_empty_body_is_empty_under_every_coding(coding: str) -> None:
    assert decode(coding, b"", []) == b""


def test_references_really_differ_where_the_docstring_says() -> None:
    with pytest.raises(zlib.error):
        zlib.decompress(b"")
    with pytest.raises(brotli.error):
        brotli.decompress(b"")
    cut = zstandard.ZstdCompressor().compress(bytes(range(256)) * 64)[:-3]
    zstd_reference(cut)  # no error: the stream decode cannot tell a cut body from a slow one
    with pytest.raises(BadOriginEncoding, match="ends inside a frame"):
        decode("zstd", cut, [])


def test_ratio_cap_refuses_bombs_not_compressible_pages() -> None:
    """Past 8 MiB decoded, a layer may not grow beyond 200 times the bytes read."""
    rows = b"".join(b"<tr><td>%d</td><td>row</td></tr>\n" % i for i in range(300_000))
    assert decode("gzip", gzip.compress(rows, compresslevel=1), []) == rows  # 10 MiB, ~14:1
    small = bytes(8 << 20)
    assert decode("gzip", gzip.compress(small), []) == small  # ~1000:1, but under the floor
    for coding, bomb in [
        ("gzip", gzip.compress(bytes(9 << 20))),
        ("br", brotli.compress(bytes(16 << 20), quality=5)),
        ("zstd", zstandard.ZstdCompressor().compress(bytes(16 << 20))),
    ]:
        with pytest.raises(OriginTooLarge, match=r"200 times the \d+ encoded bytes read"):
            decode(coding, bomb, [])
    inner = gzip.compress(bytes(6 << 20))  # each layer under the floor, the stack over it
    stacked = Layers([DECODERS["gzip"](), DECODERS["gzip"]()], CAP)
    with pytest.raises(OriginTooLarge, match="times the"):
        list(stacked.feed(gzip.compress(inner * 2)))
