"""``GET /v1/chunk/{content_id}/{index}``: serve one chunk, paid or free.

Order of work per request: find the chunk (waiting for it if the fetch is
live), decide its wire form and price, settle payment (voucher, prepaid
credit spent by the payer's signed ``Atlas-Credit``, or free allowance; the
payment is stored durably first), then send the bytes with the origin edge's
chunk statement. A voucher sent for a chunk still arriving is recorded as
credit before the request waits, and the chunk's price taken from it once sent:
the requester may leave, or the edge stop, meanwhile. A replica's missing
chunk, which this edge must buy from a provider, is paid for first
(:mod:`cdn_edge.chunk_payment`): an unpaid request gets the 402 and costs the
edge nothing; on a market edge an unpaid request is pulled for the free lane
instead (:mod:`cdn_edge.replica_fill`). An edge with a market
(``--upload-capacity``) first waits for the request's turn in a lane
(:mod:`cdn_edge.chunk_turns`): a paid slot charges the clearing price, the free
lane nothing.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import BinaryIO

from aiohttp import web

from cdn_edge import wire_encoding
from cdn_edge.chunk_payment import (
    Hold,
    credit_first,
    hold,
    largest_price,
    largest_size,
    release,
    settle,
    settle_hold,
)
from cdn_edge.chunk_response import ChunkFileResponse, content_failed
from cdn_edge.chunk_turns import keep_as_credit, take_turn
from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import EDGE, Edge
from cdn_edge.market import FREE, PAID
from cdn_edge.problems import problem_response
from cdn_edge.replica_fill import PAYMENT_HEADERS, fill_unpaid, free_lane, must_buy, replicate
from requester.errors import Refusal
from requester.protocol import (
    MalformedMessage,
    PaymentRequired,
    Quote,
    b64url_encode,
)
from requester.protocol.chunk_run import RUN_MAX_COUNT, RUN_MAX_HEADER
from requester.protocol.manifest import MAX_CHUNKS
from requester.protocol.quote import chunk_price


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/v1/chunk/{content_id}/{index}", chunk)])


def make_quote(edge: Edge, content_id: bytes, now: int) -> Quote:
    return Quote.create(
        edge.identity.node,
        payee=edge.identity.payee.address,
        asset=edge.asset,
        domain=edge.domain,
        content_id=content_id,
        price_per_chunk=edge.config.price_per_chunk,
        price_per_mib=edge.price_per_mib,
        interval=edge.config.payment_interval,
        valid_from=now - 60,
        valid_until=now + edge.config.quote_validity,
    )


async def chunk(request: web.Request) -> web.StreamResponse:
    edge = request.app[EDGE]
    content_id, index = _parse(request)
    entry = await served_entry(edge, content_id)
    client = request.remote or "unknown"
    refused = too_many_transfers(edge, client)
    if refused is not None:
        return refused
    with transfer(edge, client):
        return await _serve(request, edge, entry, index, client)


async def served_entry(edge: Edge, content_id: bytes) -> ContentEntry:
    """The content a chunk or run request asks for (404 if not held), noted as served: the
    edge announces what it serves in the DHT (cdn_edge/dht)."""
    entry = await edge.content.entry(content_id)
    if entry is None:
        raise web.HTTPNotFound(text="this edge does not hold that content")
    edge.served[content_id] = time.monotonic()
    return entry


def too_many_transfers(edge: Edge, client: str) -> web.Response | None:
    """The 429 when ``client`` already has as many transfers as it may (a run is one)."""
    if edge.active.get(client, 0) < edge.config.max_transfers_per_client:
        return None
    response = problem_response(429, "too_many_transfers", "too many chunk transfers at once")
    response.headers["Retry-After"] = "1"
    return response


@contextmanager
def transfer(edge: Edge, client: str) -> Iterator[None]:
    """Count one transfer of ``client``'s while the block runs."""
    edge.active[client] = edge.active.get(client, 0) + 1
    try:
        yield
    finally:
        edge.active[client] -= 1
        if not edge.active[client]:
            del edge.active[client]


async def _serve(
    request: web.Request, edge: Edge, entry: ContentEntry, index: int, client: str
) -> web.StreamResponse:
    refused = failed(entry)  # content that failed answers so at once, whatever the chunk
    held: Hold | None = None
    try:
        if refused is None and must_buy(entry, index):
            if free_lane(request, edge):  # a market edge: never a 402 for lack of money
                refused = await fill_unpaid(edge, entry, index, client)
            else:
                taken = await _hold(request, edge, entry, index, client)
                if isinstance(taken, web.Response):
                    return taken  # 402: nothing fetched, nothing paid by this edge
                held = taken
                refused = await replicate(edge, entry, index)
        elif refused is None and _paid_wait(request, edge, entry, index):
            now = int(time.time())
            try:
                held = await credit_first(request, edge, now)
            except Refusal as exc:  # at once rather than after the wait
                return refusal(request, edge, exc, entry.content_id, now,
                               largest_price(edge, entry, index))  # fmt: skip
        if refused is not None:
            return refused
        return await _serve_held(request, edge, entry, index, client, held)
    finally:
        await release(edge, held)  # not sent: the payer's money stays credit


def _paid_wait(request: web.Request, edge: Edge, entry: ContentEntry, index: int) -> bool:
    """A request with a voucher for a chunk still arriving from the origin: the voucher is
    recorded as credit before the wait (:func:`cdn_edge.chunk_payment.credit_first`). Not
    on a market edge, whose lanes take payment in their turn."""
    return (edge.selling is None and "Atlas-Voucher" in request.headers
            and index not in entry.statements and not entry.done
            and not entry.past_end(index))  # fmt: skip


async def _hold(request: web.Request, edge: Edge, entry: ContentEntry, index: int,
                client: str) -> Hold | web.Response:  # fmt: skip
    """The request's payment for the chunk, taken before the edge pays for it; or the 402."""
    now = int(time.time())
    try:
        return await hold(request, edge, entry, index, client, now)
    except Refusal as exc:
        return refusal(request, edge, exc, entry.content_id, now,
                        largest_price(edge, entry, index))  # fmt: skip


async def _serve_held(request: web.Request, edge: Edge, entry: ContentEntry, index: int,
                      client: str, held: Hold | None) -> web.StreamResponse:  # fmt: skip
    """Wait for the chunk if it is still arriving, then send it (``held``: paid before)."""
    try:
        async with asyncio.timeout(edge.config.chunk_wait):
            available = await entry.wait_for(index)
    except TimeoutError:
        return not_ready(index, "has not arrived yet")
    transport = request.transport
    if transport is None or transport.is_closing():  # the requester left during the wait
        return not_ready(index, "came after the requester left")  # nothing charged
    if not available:
        refused = failed(entry)  # it failed while this request waited
        if refused is not None:
            return refused
        seal = entry.seal
        count = seal.chunk_count if seal is not None else len(entry.statements)
        return problem_response(
            416, "beyond_end", f"content has {count} chunks; {index} is past the end"
        )
    return await _respond(request, edge, entry, index, client, held)


def not_ready(index: int, why: str) -> web.Response:
    response = problem_response(503, "chunk_not_ready", f"chunk {index} {why}")
    response.headers["Retry-After"] = "1"
    return response


def failed(entry: ContentEntry) -> web.Response | None:
    error = entry.error
    return None if error is None else content_failed(error.status, error.code, error.message)


async def _respond(request: web.Request, edge: Edge, entry: ContentEntry, index: int,
                   client: str, held: Hold | None) -> web.StreamResponse:  # fmt: skip
    """The held chunk ``index``: its wire form and price, payment, then the bytes."""
    statement = entry.statements.get(index)
    if statement is None:  # the content failed (and let go of its chunks) meanwhile
        return failed(entry) or not_ready(index, "is no longer held")
    lane = None
    market = edge.selling
    if market is not None and held is None:  # a replica's bought chunk was paid first
        try:
            lane = await take_turn(request, edge, market, client, largest_size(entry, index))
        except PaymentRequired as exc:  # a bid without payment: the quote tells how to pay
            price = largest_price(edge, entry, index)
            return refusal(request, edge, exc, entry.content_id, int(time.time()), price)
    content_type = entry.head.header("content-type")
    accept_encoding = request.headers.get("Accept-Encoding")
    file: BinaryIO | None = None
    if wire_encoding.compressible(content_type) and wire_encoding.accepts_zstd(accept_encoding):
        data = await edge.content.chunk(entry, index)
        wire, encoding = await wire_encoding.for_wire(data, content_type, accept_encoding)
        size = len(wire)
    else:  # sent as stored: straight from the file, with sendfile(2)
        file = edge.content.open_chunk(entry, index)
        wire, encoding, size = b"", None, os.fstat(file.fileno()).st_size
    try:
        headers = await _charge(
            request, edge, entry, index, statement, client, size, encoding, held, lane
        )
        if isinstance(headers, web.Response):
            return headers  # 402
        if file is None:
            return web.Response(body=wire, headers=headers)
        response = ChunkFileResponse(file, size, headers)
        file = None  # the response closes it once sent
        return response
    finally:
        if file is not None:
            file.close()


async def _charge(request: web.Request, edge: Edge, entry: ContentEntry, index: int,
                  statement: bytes, client: str, size: int, encoding: str | None, held: Hold | None,
                  lane: str | None) -> dict[str, str] | web.Response:  # fmt: skip
    """Settle payment for ``size`` bytes on the wire (from ``held`` if the request paid
    before the chunk was fetched; at the clearing price on a paid slot, nothing on the
    free lane): the 200's headers, or a 402."""
    now = int(time.time())
    # The price a quote would state; the quote itself is signed only for a 402, the one
    # answer that shows it (an Ed25519 signature per served chunk was wasted work).
    clearing = edge.price_per_mib
    cost = chunk_price(edge.config.price_per_chunk, clearing, size)
    if lane == FREE:  # the market's free lane: never charged, never a 402
        cost = 0
        await keep_as_credit(request, edge, now)
        paid_by = "free"
    elif held is not None:
        if held.channel_id is not None and not held.credited:
            cost = min(cost, held.amount)
        try:
            paid_by = await settle_hold(edge, held, cost, now)
        except Refusal as exc:  # its credit was spent by other requests meanwhile
            return refusal(request, edge, exc, entry.content_id, now, cost)
    else:
        try:
            paid_by, _ = await settle(request, edge, (entry.content_id, index), cost, size,
                                      client, now)  # fmt: skip
        except Refusal as exc:
            return refusal(request, edge, exc, entry.content_id, now, cost)
    if lane is None:  # no market: a paid chunk is what a paid slot would be
        lane = FREE if paid_by == "free" else PAID
    headers = {
        "Atlas-Chunk": b64url_encode(statement),
        "Atlas-Price": str(cost),
        "Atlas-Paid-By": paid_by,
        "Atlas-Lane": lane,
        "Atlas-Clearing-Price": str(clearing),
        "Content-Type": "application/octet-stream",
        "Cache-Control": "private, immutable",
    }
    if edge.selling is None:  # runs are offered (cdn_edge/routes_runs.py); not by a market
        headers[RUN_MAX_HEADER] = str(RUN_MAX_COUNT)
    if encoding:
        headers["Content-Encoding"] = encoding
    edge.metrics.chunks.labels(paid_by).inc()
    edge.metrics.bytes_sent.inc(size)
    edge.metrics.lane_bytes.labels(lane).inc(size)
    return headers


def refusal(request: web.Request, edge: Edge, exc: Refusal, content_id: bytes, now: int,
             cost: int) -> web.Response:  # fmt: skip
    """A payment refusal counted in the metrics: a 402 shows the quote and the price;
    any other refusal is raised as its problem."""
    if any(h in request.headers for h in PAYMENT_HEADERS):  # a bare 402 refuses nothing
        edge.metrics.vouchers.labels(exc.code).inc()
    if isinstance(exc, PaymentRequired):
        return _payment_problem(exc, make_quote(edge, content_id, now), cost)
    raise exc


def _payment_problem(exc: PaymentRequired, quote: Quote, cost: int) -> web.Response:
    response = problem_response(402, exc.code, exc.message)
    encoded = b64url_encode(quote.encode())
    response.headers["Atlas-Quote"] = encoded
    response.headers["Atlas-Price"] = str(cost)
    return response


def _parse(request: web.Request) -> tuple[bytes, int]:
    return parse_path(request, "index")


def parse_path(request: web.Request, index_key: str) -> tuple[bytes, int]:
    """The content id and chunk index of a chunk (or run) path; 400 when malformed."""
    content_id = _hex32(request.match_info["content_id"], "content id")
    raw = request.match_info[index_key]
    # isdigit() alone admits digits int() refuses ("²"): ASCII only.
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 8 or int(raw) >= MAX_CHUNKS:
        raise MalformedMessage(f"chunk index must be an integer below {MAX_CHUNKS}")
    return content_id, int(raw)


def _hex32(raw: str, what: str) -> bytes:
    try:
        value = bytes.fromhex(raw)
    except ValueError:
        value = b""
    if len(value) != 32:
        raise MalformedMessage(f"{what} must be 64 hex digits")
    return value
