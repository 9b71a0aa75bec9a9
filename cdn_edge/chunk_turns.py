"""A chunk request's way through the market: its bid, its payer, and its turn in a lane.

The bidder is the payer of the channel the request names (``Atlas-Voucher`` or
``Atlas-Credit``, signed by that payer), or of the channel an earlier request
from the same address named this round. A request that bids but brings no
payment is answered 402 with a quote at the clearing price: that is how a
requester learns how to pay a market edge (its bid still counts if its address
named a channel this round). A request of a round's winner that brings payment
waits for its paid slot and its free share alike; every other request waits in
the free lane only, and is never refused for lack of money. The payment itself
is settled once the turn comes, by the chunk route (:mod:`cdn_edge.routes_chunks`).
"""

from __future__ import annotations

import time

from aiohttp import web

from cdn_edge.edge_state import Edge
from cdn_edge.market.lanes import Ticket
from cdn_edge.market.market import Market
from requester.listener_limits import address_key
from requester.protocol import (
    CREDIT_HEADER,
    CreditSpend,
    PaymentRequired,
    StaleVoucher,
    Voucher,
    b64url_decode,
    parse_amount,
)
from requester.protocol.voucher import VOUCHER_SIZE

BID_HEADER = "Atlas-Bid"


async def take_turn(request: web.Request, edge: Edge, market: Market, client: str,
                    size: int) -> str:  # fmt: skip
    """Record the request's bid, then wait for its turn to send ``size`` bytes: the lane
    (``paid`` or ``free``) it goes out through."""
    bid_text = request.headers.get(BID_HEADER)
    bid = parse_amount(bid_text, edge.asset) if bid_text is not None else None
    address = address_key(client)
    payer, channel_id = _signer_channel(request)
    pays = channel_id is not None
    if channel_id is None and bid is not None:
        named = market.book.payer_at(address)
        payer, channel_id = named if named is not None else (None, None)
    bidder: str | None = None
    if channel_id is not None:
        cover = 0 if bid is None else market.book.coverage(bid)  # top-ups seen in time
        owner, unspent = await edge.payments.standing(channel_id, int(time.time()), cover)
        if owner == payer:  # signed by someone else: no bid, and the charge refuses it
            bidder = owner
            market.book.named(address, (owner, channel_id))
            if bid is not None:
                market.book.place(owner, bid, unspent)
    if bid is not None and not pays:
        raise PaymentRequired(
            "a bid is paid for: send an Atlas-Voucher (or Atlas-Credit) with Atlas-Bid, at "
            "the clearing price of the quote; without Atlas-Bid the chunk is served free"
        )
    paid_slot = bidder if pays and market.winner(bidder) else None
    return await market.admit(Ticket(address, size, paid_slot))


def _signer_channel(request: web.Request) -> tuple[str | None, bytes | None]:
    """Who signed the request's payment and the channel it names (None, None: no payment).
    A malformed or forged payment raises its refusal, as the charge would."""
    voucher_header = request.headers.get("Atlas-Voucher")
    if voucher_header is not None:
        voucher = Voucher.decode(b64url_decode(voucher_header, VOUCHER_SIZE, "Atlas-Voucher"))
        return str(voucher.payer), voucher.channel_id
    credit_header = request.headers.get(CREDIT_HEADER)
    if credit_header is not None:
        spend = CreditSpend.from_header(credit_header)
        return str(spend.signer), spend.channel_id
    return None, None


async def keep_as_credit(request: web.Request, edge: Edge, now: int) -> None:
    """A voucher that came with a chunk served free pays for nothing now: record it, so what
    it adds stays credit on its channel (a stale or short one is simply not recorded)."""
    header = request.headers.get("Atlas-Voucher")
    if header is None:
        return
    voucher = b64url_decode(header, VOUCHER_SIZE, "Atlas-Voucher")
    try:
        await edge.payments.charge(voucher, None, 0, now)
    except (PaymentRequired, StaleVoucher):
        return
    edge.metrics.vouchers.labels("accepted").inc()
