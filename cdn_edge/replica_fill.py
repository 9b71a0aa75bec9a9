"""Getting a replica's missing chunk for a request: paid first, or for a market's free lane.

A replica edge lacks a chunk until it pulls it from another provider. On an edge
without a market the request pays first (:mod:`cdn_edge.chunk_payment`), so an unpaid
request never makes the edge pay anyone. A market edge (``--upload-capacity``) never
refuses a requester for lack of money, so a request that brings no payment and no bid
is served through the free lane, as a BitTorrent Speed peer fills a piece it lacks: the
edge takes the chunk through its source's own free lane when the source serves free (a
market edge), and buys it with its own wallet only from a ``--tracker`` peer that demands
payment. A provider the edge did not configure is never paid for such a request (anyone
can announce content at a price and then ask for it unpaid: issue 13); if only such
providers sell the chunk, the requester's free allowance may still pay for it, as on any
edge, else the answer is ``503 chunk_not_ready`` with ``Retry-After``, never a ``402``.
A source that cannot be reached is ``503`` with ``Retry-After`` too.
"""

from __future__ import annotations

import time

from aiohttp import web

from cdn_edge.chunk_payment import largest_size
from cdn_edge.chunk_response import content_failed
from cdn_edge.chunk_turns import BID_HEADER
from cdn_edge.content.entry import ContentEntry
from cdn_edge.content.replication import SoldOnly
from cdn_edge.edge_state import Edge
from cdn_edge.problems import problem_response
from requester.chunk_client import ChunkUnavailable, ContentFailed
from requester.protocol import CREDIT_HEADER

PAYMENT_HEADERS = ("Atlas-Voucher", CREDIT_HEADER, "Atlas-Channel")
"""Headers that present a payment: only their refusals count in the voucher metrics."""
SOLD_RETRY = 10
"""Seconds a requester is asked to wait when the chunk is only sold: a paying requester
may have bought it by then, or its free allowance have room again."""


def must_buy(entry: ContentEntry, index: int) -> bool:
    """A replica's chunk this edge would have to pull from a provider to serve."""
    return entry.is_replica and index not in entry.statements and not entry.past_end(index)


def free_lane(request: web.Request, edge: Edge) -> bool:
    """A request a market edge serves through its free lane: no payment, no bid."""
    return edge.selling is not None and not any(
        h in request.headers for h in (*PAYMENT_HEADERS, BID_HEADER)
    )


async def fill_unpaid(edge: Edge, entry: ContentEntry, index: int,
                      client: str) -> web.Response | None:  # fmt: skip
    """Pull chunk ``index`` for a market edge's free lane (:func:`free_lane`), paying only
    configured peers; from a stranger that sells it, only within ``client``'s free
    allowance. The refusal, or None once the chunk is held."""
    try:
        await edge.content.replicate_chunk(entry, index, unpaid=True)
        return None
    except SoldOnly as exc:
        if not edge.free.take(client, largest_size(entry, index), int(time.time())):
            response = problem_response(503, "chunk_not_ready", exc.detail)
            response.headers["Retry-After"] = str(SOLD_RETRY)
            return response
    except (ContentFailed, ChunkUnavailable) as exc:
        return unavailable(exc, index)
    return await replicate(edge, entry, index)  # its free allowance pays, as on any edge


async def replicate(edge: Edge, entry: ContentEntry, index: int) -> web.Response | None:
    """Pull a replica's missing chunk from its providers for a request that paid (or whose
    free allowance did); the refusal if that fails."""
    if entry.past_end(index):
        return None
    try:
        await edge.content.replicate_chunk(entry, index)
    except (ContentFailed, ChunkUnavailable) as exc:
        return unavailable(exc, index)
    return None


def unavailable(exc: ContentFailed | ChunkUnavailable, index: int) -> web.Response:
    """The answer when a missing chunk could not be pulled."""
    if isinstance(exc, ContentFailed):  # every provider of it says so
        return content_failed(exc.status, exc.code, f"from {exc.provider}: {exc.detail}")
    if exc.status == 416:
        return problem_response(416, "beyond_end", f"chunk {index} is past the end")
    response = problem_response(503, "chunk_not_ready", f"chunk {index}: {exc}")
    response.headers["Retry-After"] = "1"
    return response
