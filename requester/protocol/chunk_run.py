"""Chunk runs: one request for consecutive chunks, answered as a stream of framed chunks.

Per 256 KiB chunk a request cost the requester more (an HTTP round trip, a voucher,
bookkeeping) than the hash and signature check that are the real work, and the edge one
voucher check and one durable commit. A run asks for up to :data:`RUN_MAX_COUNT` chunks
at once, paid ahead by one voucher (what is not delivered stays credit on the channel),
and each chunk still comes with the origin edge's own statement so it is verified on its
own as it arrives. The body of a 200 to ``GET /v1/run/{content}/{first}?count=K`` is a
sequence of :class:`FrameHeader` + chunk bytes, closed by one :class:`RunTrailer` that
says why the run ended (docs/protocol.md 13).
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from requester.protocol.codec import MAGIC_PREFIX, Reader, Writer
from requester.protocol.errors import MalformedMessage
from requester.protocol.manifest import MAX_CHUNKS, STATEMENT_SIZE

RUN_MAGIC = MAGIC_PREFIX + b"R\x01"
FRAME_HEADER_SIZE = 4 + 4 + 4 + 8 + 4 + STATEMENT_SIZE
TRAILER_HEADER_SIZE = 4 + 4 + 4 + 8
PREFIX_SIZE = 8
"""Bytes read before a frame's kind is known: magic, kind and three bytes of either."""
RUN_MAX_COUNT = 64
RUN_MAX_HEADER = "Atlas-Run-Max"
"""On a chunk answer: the edge serves runs of at most this many chunks."""
RUN_CONTENT_TYPE = "application/vnd.atlas.run"
MAX_DETAIL = 512

CHUNK, TRAILER = 0, 1
_PAID_BY = ("free", "voucher", "credit")
_LANES = ("paid", "free")


class RunEnd(enum.IntEnum):
    """Why a run ended; all but ``COMPLETE`` stop before the count asked."""

    COMPLETE = 0
    NOT_HELD = 1
    """A replica's chunk this edge would have to buy first: ask ``/v1/chunk`` for it."""
    NOT_READY = 2
    END = 3
    CONTENT_FAILED = 4
    UNPAID = 5
    """No payment came with the run and the free allowance is used up."""


@dataclass(frozen=True, slots=True)
class FrameHeader:
    """What precedes one chunk's bytes in a run: its index, price, size and statement."""

    index: int
    price: int
    wire_len: int
    statement: bytes
    zstd: bool = False
    paid_by: str = "voucher"
    lane: str = "paid"

    def encode(self) -> bytes:
        if self.paid_by not in _PAID_BY or self.lane not in _LANES:
            raise MalformedMessage("run frame: unknown paid_by or lane")
        return (
            Writer(RUN_MAGIC)
            .u8(CHUNK)
            .u8(1 if self.zstd else 0)
            .u8(_PAID_BY.index(self.paid_by))
            .u8(_LANES.index(self.lane))
            .u32(self.index)
            .u64(self.price)
            .u32(self.wire_len)
            .fixed(self.statement, STATEMENT_SIZE)
            .getvalue()
        )


@dataclass(frozen=True, slots=True)
class RunTrailer:
    """The end of a run: how many frames were sent, what they cost, and why it stopped."""

    reason: RunEnd
    frames: int
    charged: int
    detail: str = ""

    def encode(self) -> bytes:
        detail = self.detail.encode("utf-8")[:MAX_DETAIL]
        return (
            Writer(RUN_MAGIC)
            .u8(TRAILER)
            .u8(self.reason)
            .u16(len(detail))
            .u32(self.frames)
            .u64(self.charged)
            .getvalue()
            + detail
        )


def frame_kind(prefix: bytes) -> int:
    """:data:`CHUNK` or :data:`TRAILER`, from a frame's first :data:`PREFIX_SIZE` bytes."""
    reader = Reader(prefix[:5], RUN_MAGIC, "run frame")
    kind = reader.u8()
    if kind not in (CHUNK, TRAILER):
        raise MalformedMessage(f"run frame: unknown kind {kind}")
    return kind


def decode_frame_header(data: bytes, chunk_size: int) -> FrameHeader:
    """A chunk frame's header; its body may be no larger than the content's chunk size
    (an edge compresses a chunk only when that makes it smaller)."""
    reader = Reader(data, RUN_MAGIC, "run frame")
    if reader.u8() != CHUNK:
        raise MalformedMessage("run frame: not a chunk frame")
    encoding, paid_by, lane = reader.u8(), reader.u8(), reader.u8()
    if encoding > 1 or paid_by >= len(_PAID_BY) or lane >= len(_LANES):
        raise MalformedMessage("run frame: unknown encoding, paid_by or lane")
    index, price, wire_len = reader.u32(), reader.u64(), reader.u32()
    statement = reader.fixed(STATEMENT_SIZE)
    reader.end()
    if index >= MAX_CHUNKS:
        raise MalformedMessage(f"run frame: chunk index must be below {MAX_CHUNKS}")
    if wire_len > chunk_size:
        raise MalformedMessage(f"run frame: {wire_len} bytes, more than a {chunk_size}-byte chunk")
    return FrameHeader(index, price, wire_len, statement, encoding == 1, _PAID_BY[paid_by],
                       _LANES[lane])  # fmt: skip


def decode_trailer(data: bytes) -> tuple[RunTrailer, int]:
    """A trailer's fixed part (without its detail) and how many detail bytes follow."""
    reader = Reader(data, RUN_MAGIC, "run trailer")
    if reader.u8() != TRAILER:
        raise MalformedMessage("run trailer: not a trailer")
    raw_reason, detail_len = reader.u8(), reader.u16()
    frames, charged = reader.u32(), reader.u64()
    reader.end()
    try:
        reason = RunEnd(raw_reason)
    except ValueError as exc:
        raise MalformedMessage(f"run trailer: unknown reason {raw_reason}") from exc
    if detail_len > MAX_DETAIL or frames > RUN_MAX_COUNT:
        raise MalformedMessage("run trailer: detail or frame count over its limit")
    return RunTrailer(reason, frames, charged), detail_len


def with_detail(trailer: RunTrailer, detail: bytes) -> RunTrailer:
    """``trailer`` with the detail text read after it (undecodable bytes replaced)."""
    return RunTrailer(trailer.reason, trailer.frames, trailer.charged,
                      detail.decode("utf-8", "replace"))  # fmt: skip


def run_length(sizes: Iterable[int]) -> int:
    """The body length of a complete run of identity frames of these sizes: what an edge
    that holds every chunk sends as ``Content-Length``."""
    return sum(FRAME_HEADER_SIZE + size for size in sizes) + TRAILER_HEADER_SIZE


def parse_count(raw: str | None) -> int:
    """A run request's ``count``: an integer from 1 to :data:`RUN_MAX_COUNT`."""
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 3:
        raise MalformedMessage(f"count must be an integer from 1 to {RUN_MAX_COUNT}")
    count = int(raw)
    if not 1 <= count <= RUN_MAX_COUNT:
        raise MalformedMessage(f"count must be an integer from 1 to {RUN_MAX_COUNT}")
    return count
