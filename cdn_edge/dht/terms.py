"""What an edge's advert says: its terms as they are now, without times or a signature.

Two reads of the same terms compare equal, so the publisher republishes when a
price (the market's clearing price each round, or a restart with another
``--price``) or a URL changes, and not otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from cdn_edge.edge_state import Edge
from requester.protocol import Asset, NodeKey, PaymentDomain, TronAddress
from requester.protocol.node_advert import Market, NodeAdvert


@dataclass(frozen=True)
class Terms:
    payee: TronAddress
    asset: Asset
    domain: PaymentDomain
    market: Market
    http_urls: tuple[str, ...]
    tunnel_url: str | None

    def advert(self, key: NodeKey, now: int, lifetime: int) -> NodeAdvert:
        return NodeAdvert.create(
            key, issued_at=now, expires_at=now + lifetime, payee=self.payee, asset=self.asset,
            domain=self.domain, market=self.market, http_urls=self.http_urls,
            tunnel_url=self.tunnel_url,
        )  # fmt: skip


def edge_terms(edge: Edge, tunnel_url: str | None) -> Terms | None:
    """The edge's terms now; None until it knows the URL it is reached at."""
    url = edge.announcer.public_url
    if not url:
        return None
    return Terms(
        edge.identity.payee.address, edge.asset, edge.domain, market_terms(edge),
        (url.rstrip("/"),), tunnel_url,
    )  # fmt: skip


def market_terms(edge: Edge) -> Market:
    """The market's numbers now, as adverts and provider records sign them."""
    config = edge.config
    if edge.selling is None:
        return Market(config.price, edge.price_per_mib, config.price_per_chunk, 0, 0, 0, 0)
    return Market(
        config.price, max(config.price, edge.price_per_mib), config.price_per_chunk,
        config.upload_capacity, config.slots, config.free_slots,
        max(1, math.ceil(config.round_seconds)),
    )  # fmt: skip
