"""``GET /v1/run/{content_id}/{first}?count=K``: up to 64 consecutive chunks in one answer.

Per 256 KiB chunk, a ``/v1/chunk`` request cost the edge a voucher decode, a durable
commit and an HTTP exchange: more than sending the bytes. A run pays once, ahead: the
voucher (or credit spend) covers every chunk of the run at its largest price and is
recorded durably before the first frame, one commit for the run. Each frame then
carries what it actually cost; after the last, what was paid ahead and not charged (a
run that ended early, zstd frames) goes back to the channel's credit, recorded before
the trailer is written; a requester that leaves mid-run gets the unsent part back too.
Without payment a run takes the free allowance frame by frame and stops ``UNPAID`` when
it is used up. A run never buys: a replica's chunk this edge lacks ends it ``NOT_HELD``
(the requester asks ``/v1/chunk`` for that one). A market edge paces its lanes chunk by
chunk and does not offer runs (``409 runs_not_offered``).
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass
from typing import BinaryIO

from aiohttp import web

from cdn_edge import wire_encoding
from cdn_edge.chunk_payment import settle
from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import EDGE, Edge
from cdn_edge.market import FREE, PAID
from cdn_edge.problems import problem_response
from cdn_edge.replica_fill import must_buy
from cdn_edge.routes_chunks import failed, parse_path, refusal, too_many_transfers, transfer
from cdn_edge.run_response import RunWriter
from requester.errors import Refusal
from requester.protocol import MalformedMessage, Seal
from requester.protocol.chunk_run import RUN_MAX_COUNT, FrameHeader, RunEnd, parse_count
from requester.protocol.manifest import MAX_CHUNKS
from requester.protocol.quote import chunk_price

RUNS_OFFERED = {"version": 1, "max_count": RUN_MAX_COUNT}
"""What ``/v1/info`` says under ``runs`` on an edge that serves them."""


def add_routes(app: web.Application) -> None:
    # No HEAD: a run is paid for and its frames go by sendfile, past aiohttp's writer.
    app.add_routes([web.get("/v1/run/{content_id}/{first}", run, allow_head=False)])


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


async def run(request: web.Request) -> web.StreamResponse:
    edge = request.app[EDGE]
    if edge.selling is not None:
        return problem_response(
            409, "runs_not_offered",
            "this edge sells its upload in a market, chunk by chunk: ask /v1/chunk for each",
        )  # fmt: skip
    content_id, first = parse_path(request, "first")
    count = parse_count(request.query.get("count"))
    if first + count > MAX_CHUNKS:
        raise MalformedMessage(f"a run must end at or below chunk {MAX_CHUNKS}")
    entry = await edge.content.entry(content_id)
    if entry is None:
        raise web.HTTPNotFound(text="this edge does not hold that content")
    edge.served[content_id] = time.monotonic()  # announced in the DHT (cdn_edge/dht)
    client = request.remote or "unknown"
    refused = too_many_transfers(edge, client)
    if refused is not None:
        return refused
    with transfer(edge, client):  # the whole run is one transfer
        return await _serve(request, edge, entry, first, count, client)


async def _serve(request: web.Request, edge: Edge, entry: ContentEntry, first: int, count: int,
                 client: str) -> web.StreamResponse:  # fmt: skip
    refused = failed(entry)
    if refused is not None:
        return refused
    seal = entry.seal  # checked once: its signature costs more than a frame's header
    if seal is not None and first >= seal.chunk_count:
        return problem_response(
            416, "beyond_end", f"content has {seal.chunk_count} chunks; {first} is past the end"
        )
    end = min(first + count, seal.chunk_count) if seal is not None else first + count
    largest = [_largest_size(entry, seal, i) for i in range(first, end)]
    price_ahead = sum(_price(edge, size) for size in largest)
    now = int(time.time())
    if must_buy(entry, first):  # never bought inside a run: /v1/chunk buys, paid first
        return await _not_held(request, first)
    try:
        paid_by, channel_id = await settle(
            request, edge, (entry.content_id, first), price_ahead, largest[0], client, now,
            "this run costs more than your free allowance left; pay with an Atlas-Voucher",
        )  # fmt: skip
    except Refusal as exc:
        return refusal(request, edge, exc, entry.content_id, now, price_ahead)
    amount = price_ahead if channel_id is not None else 0
    ahead = Ahead(paid_by, channel_id, amount, paid_by == "free" and price_ahead > 0)
    writer: RunWriter | None = None
    try:
        files = _open_all(request, edge, entry, range(first, end), ahead)
        writer = RunWriter(request, paid_by, None if files is None else
                           [size for _, _, size in files])  # fmt: skip
        await writer.start()
        if files is not None:
            await _send_held(edge, writer, first, files, ahead)
            reason = RunEnd.COMPLETE if end == first + count else RunEnd.END
            await _finish(edge, writer, ahead, reason, "")
        else:
            reason, detail = await _send_arriving(request, edge, entry, writer, first, count,
                                                  client, ahead)  # fmt: skip
            await _finish(edge, writer, ahead, reason, detail)
        return writer.response
    except ConnectionError:  # the requester left: what it did not get stays its credit
        assert writer is not None
        return writer.response
    finally:
        charged = writer.tally.charged if writer is not None else 0
        if channel_id is not None and ahead.amount > charged and not _refunded(writer):
            await edge.payments.refund(channel_id, ahead.amount - charged)


def _refunded(writer: RunWriter | None) -> bool:
    return writer is not None and writer.refunded


async def _not_held(request: web.Request, first: int) -> web.StreamResponse:
    """A run whose first chunk this replica lacks: no frame, nothing charged."""
    writer = RunWriter(request, "free", None)
    await writer.start()
    await writer.finish(RunEnd.NOT_HELD, f"chunk {first} is not held here yet: ask /v1/chunk")
    return writer.response


async def _finish(edge: Edge, writer: RunWriter, ahead: Ahead, reason: RunEnd,
                  detail: str) -> None:  # fmt: skip
    """Return what was paid ahead and not charged, recorded, then write the trailer."""
    left = ahead.amount - writer.tally.charged
    if ahead.channel_id is not None and left > 0:
        await edge.payments.refund(ahead.channel_id, left)
    writer.refunded = True
    await writer.finish(reason, detail)


def _open_all(request: web.Request, edge: Edge, entry: ContentEntry, indexes: range,
              ahead: Ahead) -> list[tuple[bytes, BinaryIO, int]] | None:  # fmt: skip
    """Every chunk of the run, open (statement, file, size), when the run can go with a
    ``Content-Length`` and sendfile: all held, sent as stored, nothing that stops it early
    (the free allowance does). Else None."""
    if ahead.allowance or _zstd(request, entry):
        return None
    statements = [entry.statements.get(i) for i in indexes]
    if any(s is None for s in statements):
        return None
    files: list[tuple[bytes, BinaryIO, int]] = []
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


async def _send_held(edge: Edge, writer: RunWriter, first: int,
                     files: list[tuple[bytes, BinaryIO, int]], ahead: Ahead) -> None:  # fmt: skip
    try:
        for n, (statement, file, size) in enumerate(files):
            price = _charge_of(edge, writer, ahead, size)
            await writer.frame(_header(first + n, price, size, statement, False, ahead), file)
            _count(edge, ahead.paid_by, size)
    finally:
        for _, file, _ in files:
            file.close()


async def _send_arriving(request: web.Request, edge: Edge, entry: ContentEntry,
                         writer: RunWriter, first: int, count: int, client: str,
                         ahead: Ahead) -> tuple[RunEnd, str]:  # fmt: skip
    """Frames as the chunks come (or are read, or compressed): why the run ended."""
    zstd = _zstd(request, entry)
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
    return min(_price(edge, size), ahead.amount - writer.tally.charged)


def _header(index: int, price: int, size: int, statement: bytes, zstd: bool,
            ahead: Ahead) -> FrameHeader:  # fmt: skip
    lane = FREE if ahead.paid_by == "free" else PAID
    return FrameHeader(index, price, size, statement, zstd, ahead.paid_by, lane)


def _count(edge: Edge, paid_by: str, size: int) -> None:
    """A frame in the metrics, as /v1/chunk counts a chunk."""
    edge.metrics.chunks.labels(paid_by).inc()
    edge.metrics.bytes_sent.inc(size)
    edge.metrics.lane_bytes.labels(FREE if paid_by == "free" else PAID).inc(size)


def _zstd(request: web.Request, entry: ContentEntry) -> bool:
    content_type = entry.head.header("content-type")
    return wire_encoding.compressible(content_type) and wire_encoding.accepts_zstd(
        request.headers.get("Accept-Encoding")
    )


def _largest_size(entry: ContentEntry, seal: Seal | None, index: int) -> int:
    """As chunk_payment.largest_size, with the seal checked once for the whole run."""
    if seal is not None and index < seal.chunk_count:
        return seal.chunk_length(index, entry.head.chunk_size)
    return entry.head.chunk_size


def _price(edge: Edge, size: int) -> int:
    return chunk_price(edge.config.price_per_chunk, edge.price_per_mib, size)


def _fsize(file: BinaryIO) -> int:
    return os.fstat(file.fileno()).st_size
