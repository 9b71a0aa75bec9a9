"""The frames of a chunk run: which chunk goes next, at what price, and how.

A run whose chunks are all held here goes from their files, opened before the first
frame (once open, eviction cannot take them) with sendfile (:func:`send_held`); any
other goes chunk by chunk as each arrives, is read, or compressed (:func:`send_arriving`),
and ends at the first chunk it cannot send, saying why (``RunEnd``). A frame is priced as
``/v1/chunk`` prices a chunk, on its wire size, and counted in the same metrics.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from cdn_edge import wire_encoding
from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import Edge
from cdn_edge.market import FREE, PAID
from cdn_edge.replica_fill import must_buy
from cdn_edge.run_response import RunWriter
from requester.errors import Refusal
from requester.protocol.chunk_run import FrameHeader, RunEnd
from requester.protocol.quote import chunk_price

Held = list[tuple[bytes, BinaryIO, int]]
"""Each chunk of a held run: its statement, open file and size."""


@dataclass(frozen=True, slots=True)
class Ahead:
    """How a run was paid before its first frame."""

    paid_by: str
    channel_id: bytes | None
    """The channel charged ``amount`` ahead, or None when free."""
    amount: int
    allowance: bool
    """Free, from the requester's free allowance: taken frame by frame (the first frame's
    already, at its largest size)."""


def open_held(request: web.Request, edge: Edge, entry: ContentEntry, indexes: range,
              ahead: Ahead) -> Held | None:  # fmt: skip
    """Every chunk of the run, open (statement, file, size), when the run can go with a
    ``Content-Length`` and sendfile: all held, sent as stored, nothing that stops it early
    (the free allowance does). Else None."""
    if ahead.allowance or zstd_wanted(request, entry):
        return None
    statements = [entry.statements.get(i) for i in indexes]
    if any(s is None for s in statements):
        return None
    files: Held = []
    try:
        for index, statement in zip(indexes, statements, strict=True):
            assert statement is not None
            file = edge.content.open_chunk(entry, index)  # once open, eviction cannot take it
            files.append((statement, file, _fsize(file)))
    except Refusal:  # a chunk left the store meanwhile: the slow way finds out
        for _, file, _ in files:
            file.close()
        return None
    return files


async def send_held(edge: Edge, writer: RunWriter, first: int, files: Held,
                    ahead: Ahead) -> None:  # fmt: skip
    """Every frame of a held run, each body with sendfile (the caller closes the files)."""
    for n, (statement, file, size) in enumerate(files):
        price = _charge_of(edge, writer, ahead, size)
        await writer.frame(_header(first + n, price, size, statement, False, ahead), file)
        _count(edge, ahead.paid_by, size)


async def send_arriving(request: web.Request, edge: Edge, entry: ContentEntry,
                         writer: RunWriter, first: int, count: int, client: str,
                         ahead: Ahead) -> tuple[RunEnd, str]:  # fmt: skip
    """Frames as the chunks come (or are read, or compressed): why the run ended."""
    zstd = zstd_wanted(request, entry)
    for index in range(first, first + count):
        stop = await _wait_held(edge, entry, index)
        if stop is not None:
            return stop
        statement = entry.statements.get(index)
        if statement is None:  # the content failed (and let go of its chunks) meanwhile
            return _content_failed(entry) or (RunEnd.NOT_READY, f"chunk {index} is gone")
        try:
            data = await edge.content.chunk(entry, index)
        except Refusal as exc:
            return RunEnd.NOT_READY, f"chunk {index}: {exc.message}"
        wire, encoding = data, None
        if zstd:
            wire, encoding = await wire_encoding.for_wire(
                data, entry.head.header("content-type"), request.headers.get("Accept-Encoding")
            )
        size = len(wire)
        if ahead.allowance and index != first and not edge.free.take(client, size, time.time()):
            return RunEnd.UNPAID, "the free allowance is used up; pay with an Atlas-Voucher"
        price = _charge_of(edge, writer, ahead, size)
        header = _header(index, price, size, statement, encoding is not None, ahead)
        await writer.frame(header, wire)
        _count(edge, ahead.paid_by, size)
    return RunEnd.COMPLETE, ""


async def _wait_held(edge: Edge, entry: ContentEntry, index: int) -> tuple[RunEnd, str] | None:
    """None once chunk ``index`` is held here; else why the run stops before it."""
    stop = _content_failed(entry)
    if stop is not None:
        return stop
    if must_buy(entry, index):
        return RunEnd.NOT_HELD, f"chunk {index} is not held here yet: ask /v1/chunk for it"
    try:
        async with asyncio.timeout(edge.config.chunk_wait):
            available = await entry.wait_for(index)
    except TimeoutError:
        return RunEnd.NOT_READY, f"chunk {index} has not arrived yet"
    if not available:
        return _content_failed(entry) or (RunEnd.END, f"the content ends before chunk {index}")
    return None


def _content_failed(entry: ContentEntry) -> tuple[RunEnd, str] | None:
    error = entry.error
    if error is None:
        return None
    return RunEnd.CONTENT_FAILED, f"{error.status} {error.code}: {error.message}"


def _charge_of(edge: Edge, writer: RunWriter, ahead: Ahead, size: int) -> int:
    """A frame's price: nothing when free, and never more than the payment ahead has left."""
    if ahead.channel_id is None:
        return 0
    return min(run_price(edge, size), ahead.amount - writer.tally.charged)


def _header(index: int, price: int, size: int, statement: bytes, zstd: bool,
            ahead: Ahead) -> FrameHeader:  # fmt: skip
    lane = FREE if ahead.paid_by == "free" else PAID
    return FrameHeader(index, price, size, statement, zstd, ahead.paid_by, lane)


def _count(edge: Edge, paid_by: str, size: int) -> None:
    """A frame in the metrics, as /v1/chunk counts a chunk."""
    edge.metrics.chunks.labels(paid_by).inc()
    edge.metrics.bytes_sent.inc(size)
    edge.metrics.lane_bytes.labels(FREE if paid_by == "free" else PAID).inc(size)


def run_price(edge: Edge, size: int) -> int:
    return chunk_price(edge.config.price_per_chunk, edge.price_per_mib, size)


def _fsize(file: BinaryIO) -> int:
    return os.fstat(file.fileno()).st_size


def zstd_wanted(request: web.Request, entry: ContentEntry) -> bool:
    content_type = entry.head.header("content-type")
    return wire_encoding.compressible(content_type) and wire_encoding.accepts_zstd(
        request.headers.get("Accept-Encoding")
    )
