"""Settling a chunk request's payment, and paying first for a replica's missing chunk.

A chunk is paid by a voucher, by prepaid credit spent with the payer's signed
``Atlas-Credit``, or from the client's free allowance (:func:`settle`).

A replica edge pays its own providers for a chunk it lacks. Fetching it before
the requester paid would let anyone spend the edge's wallet: sign your own
content, serve it at a high price, announce it, then ask a victim edge for its
chunks and never pay. So a missing chunk of a replica is fetched only for a
request that is free for this client or whose payment for the chunk's largest
price was validated and recorded first (:func:`hold`); once the chunk is held
its actual price is kept and the rest returned to the channel as credit, and if
it cannot be had all of it is returned (:func:`settle_hold`, :func:`release`).
"""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import Edge
from cdn_edge.payments import CreditClaim
from requester.protocol import (
    CREDIT_HEADER,
    CreditProofRequired,
    CreditSpend,
    PaymentRequired,
    b64url_decode,
)
from requester.protocol.quote import chunk_price
from requester.protocol.voucher import VOUCHER_SIZE


@dataclass
class Hold:
    """What a request paid before its replica chunk was fetched, until it is settled."""

    paid_by: str
    channel_id: bytes | None
    """The channel charged, or None when free."""
    amount: int
    settled: bool = False
    credited: bool = False
    """The request's voucher was recorded as credit (:func:`credit_first`), nothing taken:
    the chunk's price is taken from that credit once it is sent."""


def largest_size(entry: ContentEntry, index: int) -> int:
    """The most bytes chunk ``index`` can take on the wire: its sealed length if known (the
    wire form is never larger than the chunk), else the content's chunk size."""
    seal = entry.seal
    if seal is not None and index < seal.chunk_count:
        return seal.chunk_length(index, entry.head.chunk_size)
    return entry.head.chunk_size


def largest_price(edge: Edge, entry: ContentEntry, index: int) -> int:
    """What chunk ``index`` can cost at most here: the price a 402 asks before it is held."""
    size = largest_size(entry, index)
    return chunk_price(edge.config.price_per_chunk, edge.price_per_mib, size)


async def hold(request: web.Request, edge: Edge, entry: ContentEntry, index: int, client: str,
               now: int) -> Hold:  # fmt: skip
    """Take the payment for replica chunk ``index`` before it is fetched: the chunk's largest
    price from a validated voucher or credit spend (recorded durably), or its largest size
    from the free allowance. Raises :class:`PaymentRequired` (a 402) and touches nothing
    for a request that brings neither: an unpaid request never makes this edge pay."""
    price = largest_price(edge, entry, index)
    size = largest_size(entry, index)
    paid_by, channel_id = await settle(
        request, edge, (entry.content_id, index), price, size, client, now,
        f"chunk {index} is not held here yet: this edge fetches it from another provider, at "
        "its own expense, only once this request has paid for it; pay with an Atlas-Voucher",
    )  # fmt: skip
    return Hold(paid_by, channel_id, price if channel_id is not None else 0)


async def voucher_as_credit(request: web.Request, edge: Edge, now: int) -> bytes:
    """Record the request's ``Atlas-Voucher`` as credit on its channel, charging nothing;
    the channel's id. Raises the voucher's refusal."""
    voucher = b64url_decode(request.headers["Atlas-Voucher"], VOUCHER_SIZE, "Atlas-Voucher")
    return await edge.payments.charge(voucher, None, 0, now)


async def credit_first(request: web.Request, edge: Edge, now: int) -> Hold:
    """Record the request's voucher as credit on its channel (charging nothing) before the
    request waits for its chunk: if the requester leaves meanwhile, or the edge stops or is
    killed, the voucher is kept as credit, as the requester counts it. Raises the
    voucher's refusal."""
    channel_id = await voucher_as_credit(request, edge, now)
    edge.metrics.vouchers.labels("accepted").inc()
    return Hold("voucher", channel_id, 0, credited=True)


async def settle_hold(edge: Edge, held: Hold, cost: int, now: int) -> str:
    """Keep ``cost`` of what ``held`` took (it never exceeds it) and return the rest as
    credit, or take ``cost`` from the credit a :func:`credit_first` voucher left; how it
    was paid."""
    held.settled = True
    if held.credited:
        assert held.channel_id is not None
        await edge.payments.spend_credit(held.channel_id, cost, now)
    elif held.channel_id is not None and held.amount > cost:
        await edge.payments.refund(held.channel_id, held.amount - cost)
    return held.paid_by


async def release(edge: Edge, held: Hold | None) -> None:
    """The chunk was not sent: all that ``held`` took goes back to the channel's credit."""
    if held is None or held.settled:
        return
    held.settled = True
    if held.channel_id is not None and held.amount:
        await edge.payments.refund(held.channel_id, held.amount)


async def settle(request: web.Request, edge: Edge, chunk: tuple[bytes, int], cost: int,
                 size: int, client: str, now: int,
                 unpaid: str = "this chunk costs more than your free allowance left; "
                 "pay with an Atlas-Voucher") -> tuple[str, bytes | None]:  # fmt: skip
    """Pay ``cost`` for ``size`` bytes of ``chunk`` (recorded before this returns): how it was
    paid and the channel charged (None when free)."""
    voucher_header = request.headers.get("Atlas-Voucher")
    credit_header = request.headers.get(CREDIT_HEADER)
    if voucher_header is not None:
        voucher = b64url_decode(voucher_header, VOUCHER_SIZE, "Atlas-Voucher")
        channel_id = await edge.payments.charge(voucher, None, cost, now)
        edge.metrics.vouchers.labels("accepted").inc()
        return "voucher", channel_id
    if credit_header is not None:
        claim = CreditClaim(CreditSpend.from_header(credit_header), *chunk)
        return "credit", await edge.payments.charge(None, claim, cost, now)
    if "Atlas-Channel" in request.headers and cost:  # channel ids are public
        raise CreditProofRequired(
            "Atlas-Channel alone no longer spends credit: send Atlas-Credit, a credit spend "
            "signed by the channel's payer for this chunk (docs/protocol.md 6.2)"
        )
    if cost == 0 or edge.free.take(client, size, now):
        return "free", None
    raise PaymentRequired(unpaid)
