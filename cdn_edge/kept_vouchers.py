"""A voucher that reaches the edge is kept, whatever the answer to its request.

A requester pays ahead: each chunk (or run) request carries the voucher for it, and what
the edge does not charge the requester counts as credit there, to spend later with a
signed ``Atlas-Credit``. That holds only if the edge records the voucher even when it
serves nothing: a content it does not hold (404), too many transfers (429), a chunk
past the end (416), a content that failed, a replica's run that does not hold its first
chunk. A voucher lost there would leave the requester's books ahead of the edge's (its
summary saying it paid what the edge can never redeem) until its next voucher, which
counts every one signed before, came. So such a request's voucher, if valid, is recorded
as credit (charged nothing) before its answer goes out; an invalid one changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from cdn_edge.chunk_payment import voucher_as_credit
from cdn_edge.edge_state import EDGE, Edge
from requester.errors import Refusal

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PAID_PATHS = ("/v1/chunk/", "/v1/run/")


async def keep_voucher(request: web.Request, edge: Edge) -> None:
    """Record the request's voucher as credit on its channel, if it has a valid one."""
    if "Atlas-Voucher" not in request.headers:
        return
    try:
        await voucher_as_credit(request, edge, int(time.time()))
    except Refusal:  # forged, stale, another payee's, a ledger down: the answer stands
        return


@web.middleware
async def kept_vouchers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Outside the problem middleware: it sees every refusal as the answer sent."""
    response = await handler(request)
    if (response.status >= 400 and response.status != 402
            and request.path.startswith(PAID_PATHS)
            and "Atlas-Voucher" in request.headers):  # fmt: skip
        await keep_voucher(request, request.app[EDGE])
    return response
