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

import time
from functools import lru_cache

from aiohttp import web

from cdn_edge.chunk_payment import settle
from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import EDGE, Edge
from cdn_edge.kept_vouchers import keep_voucher
from cdn_edge.problems import problem_response
from cdn_edge.replica_fill import must_buy
from cdn_edge.routes_chunks import (
    failed,
    parse_path,
    refusal,
    served_entry,
    too_many_transfers,
    transfer,
)
from cdn_edge.run_frames import Ahead, Held, open_held, run_price, send_arriving, send_held
from cdn_edge.run_response import RunWriter
from requester.errors import Refusal
from requester.protocol import MalformedMessage, ManifestHead, Seal
from requester.protocol.chunk_run import RUN_MAX_COUNT, RunEnd, parse_count
from requester.protocol.manifest import MAX_CHUNKS

RUNS_OFFERED = {"version": 1, "max_count": RUN_MAX_COUNT}
"""What ``/v1/info`` says under ``runs`` on an edge that serves them."""


def add_routes(app: web.Application) -> None:
    # No HEAD: a run is paid for and its frames go by sendfile, past aiohttp's writer.
    app.add_routes([web.get("/v1/run/{content_id}/{first}", run, allow_head=False)])


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
    entry = await served_entry(edge, content_id)
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
    seal = _seal(entry.head_bytes, entry.seal_bytes) if entry.seal_bytes else None
    if seal is not None and first >= seal.chunk_count:
        return problem_response(
            416, "beyond_end", f"content has {seal.chunk_count} chunks; {first} is past the end"
        )
    end = min(first + count, seal.chunk_count) if seal is not None else first + count
    largest = [_largest_size(entry, seal, i) for i in range(first, end)]
    price_ahead = sum(run_price(edge, size) for size in largest)
    now = int(time.time())
    if must_buy(entry, first):  # never bought inside a run: /v1/chunk buys, paid first
        await keep_voucher(request, edge)  # a 200 with no frame: its voucher stays credit
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
    files: Held | None = None
    try:
        files = open_held(request, edge, entry, range(first, end), ahead)
        writer = RunWriter(request, paid_by, None if files is None else
                           [size for _, _, size in files])  # fmt: skip
        await writer.start()
        if files is not None:
            await send_held(edge, writer, first, files, ahead)
            reason = RunEnd.COMPLETE if end == first + count else RunEnd.END
            await _finish(edge, writer, ahead, reason, "")
        else:
            reason, detail = await send_arriving(request, edge, entry, writer, first, count,
                                                  client, ahead)  # fmt: skip
            await _finish(edge, writer, ahead, reason, detail)
        return writer.response
    except ConnectionError:  # the requester left: what it did not get stays its credit
        assert writer is not None
        return writer.response
    finally:
        if writer is not None:
            writer.close()
        for _, file, _ in files or ():
            file.close()  # once sent, or if the run never started
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


def _largest_size(entry: ContentEntry, seal: Seal | None, index: int) -> int:
    """As chunk_payment.largest_size, with the seal checked once for the whole run."""
    if seal is not None and index < seal.chunk_count:
        return seal.chunk_length(index, entry.head.chunk_size)
    return entry.head.chunk_size


@lru_cache(maxsize=256)
def _seal(head: bytes, seal: bytes) -> Seal:
    """``entry.seal``, its signature checked once per content instead of once per run (an
    Ed25519 verification cost ~4 µs per chunk of a run of 16)."""
    return ManifestHead.decode(head).verify_seal(seal)
