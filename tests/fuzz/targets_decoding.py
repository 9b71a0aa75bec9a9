"""Fuzz targets for the origin body decoders (cdn_edge/content/decoding.py).

An origin is untrusted: its ``Content-Encoding`` body is decoded by the edge and
signed. Besides the error oracle (only ``bad_content_encoding`` or
``origin_too_large``, both a :class:`ServiceRefusal`), each target compares the
streamed output, fed in pieces the input chooses, with the reference library's
decode of a clean body (whole members or frames, nothing after them): a decoder
that changes the bytes of a valid body would have the edge sign wrong content.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator

import brotli  # type: ignore[import-untyped]
import zstandard

from cdn_edge.content.decoding import DECODERS, ZSTD_MAX_WINDOW, Layers
from cdn_edge.content.origin_errors import BadOriginEncoding
from tests.fuzz import seeds
from tests.fuzz.target import OracleViolation, target

CAP = 1 << 22
"""Decoded bytes allowed per fuzz input (the edge's cap is 4 GiB; the rule is the same)."""


def _pieces(data: bytes) -> Iterator[bytes]:
    """The body after the first byte, cut into pieces of the size that byte picks
    (0 = in one piece), as a network might deliver it."""
    size, body = (data[0], data[1:]) if data else (0, b"")
    if not size:
        yield body
        return
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _decode(coding: str, data: bytes) -> bytes:
    layers = Layers([DECODERS[coding]()], CAP)
    out = bytearray()
    for piece in _pieces(data):
        for part in layers.feed(piece):
            out += part
    for part in layers.finish():
        out += part
    return bytes(out)


def _gzip_reference(body: bytes) -> bytes | None:
    """All members of a body that is nothing but whole gzip members; None otherwise."""
    out = bytearray()
    while body:
        obj = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out += obj.decompress(body, CAP + 1)
        except zlib.error:
            return None
        if not obj.eof or obj.unconsumed_tail or len(out) > CAP:
            return None
        body = obj.unused_data
    return bytes(out)


def _zstd_reference(body: bytes) -> bytes | None:
    out = bytearray()
    dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
    obj = dctx.decompressobj()
    todo, fed = body, False
    while todo:
        part, todo = todo[:64], todo[64:]  # bounded output per call, even for a bomb
        fed = True
        try:
            out += obj.decompress(part)
        except zstandard.ZstdError:
            return None
        if len(out) > CAP:
            return None
        if obj.eof:
            todo, fed = obj.unused_data + todo, False
            obj = dctx.decompressobj()
    return None if fed else bytes(out)


def _br_reference(body: bytes) -> bytes | None:
    if not body:
        return b""
    obj = brotli.Decompressor()
    out = bytearray()
    for start in range(0, len(body), 8):
        if obj.is_finished():
            return None  # bytes after the end of the stream
        try:
            out += obj.process(body[start : start + 8])
        except brotli.error:
            return None
        if len(out) > CAP:
            return None
    return bytes(out) if obj.is_finished() else None


def _check(coding: str, data: bytes, reference: Callable[[bytes], bytes | None] | None) -> None:
    try:
        got = _decode(coding, data)
    except BadOriginEncoding as exc:
        if reference is not None and reference(data[1:]) is not None:
            raise OracleViolation(f"{coding}: a clean body was refused: {exc.message}") from exc
        raise
    expected = reference(data[1:]) if reference is not None else None
    if expected is not None and got != expected:
        raise OracleViolation(
            f"{coding}: decoded {len(got)} bytes, the reference {len(expected)}; they differ"
        )


def _seeds(coding: str) -> Callable[[], Iterator[bytes]]:
    def make() -> Iterator[bytes]:
        for body in seeds.compressed(coding):
            for split in (0, 1, 7, 200):
                yield bytes([split]) + body

    return make


@target("decode_gzip", seeds=_seeds("gzip"))
def decode_gzip(data: bytes) -> None:
    """gzip bodies (several members allowed), against zlib on clean bodies."""
    _check("gzip", data, _gzip_reference)


@target("decode_deflate", seeds=_seeds("deflate"))
def decode_deflate(data: bytes) -> None:
    """deflate bodies, zlib-wrapped or raw (the decoder sniffs which)."""
    _check("deflate", data, None)


@target("decode_br", seeds=_seeds("br"))
def decode_br(data: bytes) -> None:
    """brotli bodies, against brotli.decompress on clean bodies."""
    _check("br", data, _br_reference)


@target("decode_zstd", seeds=_seeds("zstd"))
def decode_zstd(data: bytes) -> None:
    """zstd bodies (several frames allowed), against zstandard on clean bodies."""
    _check("zstd", data, _zstd_reference)
