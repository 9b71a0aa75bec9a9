"""Decoding origin bodies (gzip, deflate, br, zstd) incrementally, every call's output
bounded whatever the input: a compression bomb is refused early, not expanded.

Two limits apply to the output of every layer: the size cap (the edge's largest
response), and a ratio to the encoded bytes read so far (:data:`MAX_RATIO`, above a
:data:`RATIO_FLOOR`), so the CPU a body can cost is bounded by what the origin sends.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from typing import Protocol

import brotli  # type: ignore[import-untyped]
import zstandard

from cdn_edge.content.origin_errors import BadOriginEncoding, OriginTooLarge

__all__ = ["DECODERS", "MAX_RATIO", "RATIO_FLOOR", "READ_SIZE", "Layers"]

READ_SIZE = 64 * 1024
"""Bytes read from the origin at a time, and the size decoded output is cut to."""
MAX_RATIO = 200
"""Decoded bytes allowed per encoded byte read, as Apache's mod_deflate allows by default
(DeflateInflateRatioLimit). Web text compresses 3-20 times, repetitive JSON or CSV rarely
100; a gzip bomb is ~1000 times, br, zstd and stacked codings reach millions."""
RATIO_FLOOR = 8 << 20
"""Decoded bytes allowed whatever the ratio, so a small page of one repeated character
still decodes; refusing a bomb then costs at most about this much inflating (a few ms)."""
BROTLI_SLICE = 8
"""Brotli 1.1 cannot cap one call's output; 8 input bytes expand to at most ~16 MiB."""
ZSTD_SLICE = 64
"""A zstd block is at most 128 KiB out for at least 4 bytes in: ~2 MiB per 64 bytes."""
ZSTD_MAX_WINDOW = 8 << 20
"""RFC 9659: HTTP zstd senders keep the window at 8 MiB; a bigger one would cost memory."""
_GZIP_WBITS = 16 + zlib.MAX_WBITS


class _Decoder(Protocol):
    def feed(self, data: bytes) -> Iterator[bytes]: ...
    def finish(self) -> Iterator[bytes]: ...


class Layers:
    """Decoders applied in turn; every layer's total output is capped, not just the last:
    at ``cap`` bytes, and at ``max_ratio`` times the encoded bytes fed so far (but never
    below ``floor``)."""

    def __init__(
        self, decoders: list[_Decoder], cap: int, *, max_ratio: int = MAX_RATIO,
        floor: int = RATIO_FLOOR,
    ) -> None:  # fmt: skip
        self._decoders = decoders
        self._produced = [0] * len(decoders)
        self._cap = cap
        self._max_ratio = max_ratio
        self._floor = floor
        self._fed = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed += len(data)
        return self._through(0, data)

    def finish(self) -> Iterator[bytes]:
        for index, decoder in enumerate(self._decoders):
            for piece in decoder.finish():
                yield from self._counted(index, piece)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._decoders):
            yield data
            return
        for piece in self._decoders[index].feed(data):
            yield from self._counted(index, piece)

    def _counted(self, index: int, piece: bytes) -> Iterator[bytes]:
        produced = self._produced[index] = self._produced[index] + len(piece)
        if produced > self._cap:
            raise OriginTooLarge(f"decoded body exceeds {self._cap} bytes; refused, not expanded")
        if produced > max(self._floor, self._max_ratio * self._fed):
            raise OriginTooLarge(
                f"decoded body grew past {self._max_ratio} times the {self._fed} encoded bytes "
                f"read ({produced} bytes); refused, not expanded"
            )
        yield from self._through(index + 1, piece)


def _split(data: bytes) -> Iterator[bytes]:
    if len(data) <= READ_SIZE:
        if data:
            yield data
        return
    view = memoryview(data)
    for start in range(0, len(data), READ_SIZE):
        yield bytes(view[start : start + READ_SIZE])


def _slices(data: bytes, size: int) -> Iterator[bytes]:
    view = memoryview(data)
    for start in range(0, len(data), size):
        yield bytes(view[start : start + size])


class _ZlibDecoder:
    """gzip (members one after another) or deflate (zlib-wrapped, or raw as some servers send).

    Each input byte goes to zlib exactly once. When a member ends, the bytes after it are
    in ``unused_data`` only: CPython can leave a second copy of them in ``unconsumed_tail``
    (when an earlier call stopped at the output cap), and feeding that copy as well
    delivered the next member twice, or forever. What follows a member or stream is
    decoded by :meth:`_after_end`.
    """

    def __init__(self, gzip: bool) -> None:
        self._gzip = gzip
        self._obj = zlib.decompressobj(_GZIP_WBITS) if gzip else None
        self._pending = b""
        """deflate: the first byte, until the header can be sniffed; gzip: bytes after a
        member, until they show whether another member follows."""
        self._fed = False
        self._ignoring = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        if data:
            self._fed = True
        if self._ignoring:
            return
        if self._obj is None:  # deflate: sniff the zlib header from the first two bytes
            data = self._pending + data
            if len(data) < 2:
                self._pending = data
                return
            self._pending = b""
            zlib_wrapped = data[0] & 0x0F == 8 and ((data[0] << 8) | data[1]) % 31 == 0
            self._obj = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        while True:
            if self._obj.eof:
                rest = self._after_end(data)
                if rest is None:
                    return
                data = rest
            try:
                out = self._obj.decompress(data, READ_SIZE)
            except zlib.error as exc:
                raise BadOriginEncoding(f"corrupt {self._name} body: {exc}") from None
            data = self._obj.unused_data if self._obj.eof else self._obj.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < READ_SIZE:
                return  # all input taken and zlib holds no more output for now

    def _after_end(self, data: bytes) -> bytes | None:
        """Bytes after a finished member or stream: the start of the next gzip member (with
        a fresh decompressor ready for it), or None when there is nothing to decode yet.

        As ``gzip.decompress`` (and GNU gzip) do, NUL padding between members is skipped.
        Other trailing bytes, and anything after a deflate stream, are ignored, as
        browsers do (``gzip.decompress`` refuses them; ``zlib.decompress`` ignores them).
        """
        if not data:
            return None
        if not self._gzip:
            self._ignoring = True
            return None
        data = (self._pending + data).lstrip(b"\0")
        if len(data) < 2:
            self._pending = data
            return None
        self._pending = b""
        if data[:2] != b"\x1f\x8b":
            self._ignoring = True
            return None
        self._obj = zlib.decompressobj(_GZIP_WBITS)
        return data

    def finish(self) -> Iterator[bytes]:
        if self._fed and (self._obj is None or not self._obj.eof):
            raise BadOriginEncoding(f"{self._name} body ends before its end marker")
        return iter(())

    @property
    def _name(self) -> str:
        return "gzip" if self._gzip else "deflate"


class _BrotliDecoder:
    def __init__(self) -> None:
        self._obj = brotli.Decompressor()
        self._fed = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        self._fed = self._fed or bool(data)
        pending: list[bytes] = []
        size = 0
        for part in _slices(data, BROTLI_SLICE):
            if self._obj.is_finished():
                raise BadOriginEncoding("data after the end of the br stream")
            try:
                out: bytes = self._obj.process(part)
            except brotli.error as exc:
                raise BadOriginEncoding(f"corrupt br body: {exc}") from None
            if len(out) >= READ_SIZE:  # a big piece goes out as is, never copied into a join
                yield from _split(b"".join(pending))
                yield from _split(out)
                pending, size = [], 0
                continue
            pending.append(out)
            size += len(out)
            if size >= READ_SIZE:
                yield from _split(b"".join(pending))
                pending, size = [], 0
        yield from _split(b"".join(pending))

    def finish(self) -> Iterator[bytes]:
        if self._fed and not self._obj.is_finished():
            raise BadOriginEncoding("br body ends before its last meta-block")
        return iter(())


class _ZstdDecoder:
    """zstd, one frame after another (RFC 8878 allows several)."""

    def __init__(self) -> None:
        self._dctx = zstandard.ZstdDecompressor(max_window_size=ZSTD_MAX_WINDOW)
        self._obj = self._dctx.decompressobj()
        self._in_frame = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        for part in _slices(data, ZSTD_SLICE):
            todo = part
            while todo:
                self._in_frame = True
                try:
                    out = self._obj.decompress(todo)
                except zstandard.ZstdError as exc:
                    raise BadOriginEncoding(f"corrupt zstd body: {exc}") from None
                todo = b""
                if self._obj.eof:
                    todo = self._obj.unused_data
                    self._obj = self._dctx.decompressobj()
                    self._in_frame = False
                yield from _split(out)

    def finish(self) -> Iterator[bytes]:
        if self._in_frame:
            raise BadOriginEncoding("zstd body ends inside a frame")
        return iter(())


DECODERS: dict[str, Callable[[], _Decoder]] = {
    "gzip": lambda: _ZlibDecoder(gzip=True),
    "x-gzip": lambda: _ZlibDecoder(gzip=True),
    "deflate": lambda: _ZlibDecoder(gzip=False),
    "br": _BrotliDecoder,
    "zstd": _ZstdDecoder,
}
