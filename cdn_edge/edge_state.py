"""The edge's shared state, on typed aiohttp app keys (kept apart from ``app`` so
route modules can import it without a cycle)."""

from __future__ import annotations

from dataclasses import dataclass, field

from aiohttp import web

from cdn_edge.announcer import Announcer
from cdn_edge.config import EdgeConfig
from cdn_edge.content.service import ContentService
from cdn_edge.edge_identity import EdgeIdentity
from cdn_edge.free_allowance import FreeAllowance
from cdn_edge.market.market import Market
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.payments import PaymentBook
from cdn_edge.torrent.content import TorrentContent
from cdn_edge.tracker import Tracker
from requester.ledger_api import Ledger
from requester.protocol import BTT_LOCAL, Asset, PaymentDomain


@dataclass
class Edge:
    """Everything a request handler may need, in one typed place."""

    config: EdgeConfig
    identity: EdgeIdentity
    domain: PaymentDomain
    content: ContentService
    payments: PaymentBook
    ledger: Ledger
    free: FreeAllowance
    metrics: EdgeMetrics
    tracker: Tracker
    announcer: Announcer
    active: dict[str, int] = field(default_factory=dict)
    """Chunk transfers in progress per client address."""
    torrents: TorrentContent | None = None
    """Files in torrents, fetched with libtorrent (None when the operator turned it off)."""
    asset: Asset = BTT_LOCAL
    """What quotes ask to be paid in: the ledger's asset (BTT on a TRON contract)."""
    market: Market | None = None
    """The upload market (docs/market.md); off (or None) with ``--upload-capacity 0``."""
    dht_address: str | None = None
    """HOST:PORT of the edge's DHT node (``--dht``), else None."""
    served: dict[bytes, float] = field(default_factory=dict)
    """Content id -> when a chunk of it was last served (monotonic): DHT announces."""

    @property
    def selling(self) -> Market | None:
        """The market when it runs (capacity above 0), else None: today's fixed price."""
        return self.market if self.market is not None and self.market.enabled else None

    @property
    def price_per_mib(self) -> int:
        """What a paid MiB costs now: the round's clearing price, or the fixed ``--price``."""
        return self.market.clearing_price if self.market is not None else self.config.price


CONFIG = web.AppKey("config", EdgeConfig)
EDGE = web.AppKey("edge", Edge)
