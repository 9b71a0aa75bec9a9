"""Asking a tracker who provides a content, and on what terms they signed.

A tracker lists signed provider records (docs/protocol.md 12.4); each is checked here,
so a tracker can withhold providers but not invent them or their prices. A version 2
record carries the provider's market terms as of its last announce: the download takes
them as a first guess (:meth:`requester.bidding.Bidding.learn`), so a provider whose
clearing price is over the ceiling is known as such before its first chunk, and the
provider's own ``/v1/info``, read once it has served, stays the live source.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from requester.bidding import Market
from requester.protocol import ProtocolError, ProviderRecord, b64url_decode
from requester.protocol import node_advert as terms
from requester.protocol.provider_record import MAX_RECORD_BYTES

LOOKUP_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
"""A tracker look-up runs beside the download; a slow tracker only adds no providers."""
MAX_LISTED = 32
"""Records checked per answer (a signature check each)."""
DEFAULT_ROUND = 10.0
"""The round length ``/v1/info`` readers assume for an edge that does not say one."""


@dataclass(frozen=True)
class Listed:
    url: str
    market: Market | None
    """The terms the provider signed, as ``/v1/info``'s market reads; None: not said."""


async def tracked(session: aiohttp.ClientSession, tracker: str, content_id: bytes) -> list[Listed]:
    """The providers ``tracker`` lists for ``content_id`` whose records verify."""
    async with session.get(f"{tracker}/v1/providers/{content_id.hex()}",
                           timeout=LOOKUP_TIMEOUT) as resp:  # fmt: skip
        if resp.status != 200:
            return []
        listed = (await resp.json()).get("providers", [])
    found = []
    for item in listed[:MAX_LISTED]:
        try:
            record = ProviderRecord.decode(
                b64url_decode(item["record"], MAX_RECORD_BYTES, "record")
            )
        except (ProtocolError, KeyError, TypeError):
            continue
        if record.content_id == content_id:
            found.append(Listed(record.url.rstrip("/"), market_of(record.market)))
    return found


def market_of(signed: terms.Market | None) -> Market | None:
    """A record's terms as the bidder keeps a market (capacity 0: no auction)."""
    if signed is None:
        return None
    return Market(
        signed.capacity, float(signed.round_seconds or DEFAULT_ROUND), signed.clearing_price,
        slots=signed.slots,
    )  # fmt: skip
