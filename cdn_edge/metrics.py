"""Prometheus metrics of an edge, on a registry of its own (one per app)."""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge


@dataclass
class EdgeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.bytes_sent = Counter(
            "atlas_edge_bytes_sent", "Chunk bytes sent on the wire", registry=r
        )
        self.chunks = Counter(
            "atlas_edge_chunks", "Chunks served, by how they were paid", ["paid_by"], registry=r
        )
        self.vouchers = Counter(
            "atlas_edge_vouchers",
            "Vouchers by outcome (accepted or refusal code)",
            ["outcome"],
            registry=r,
        )
        self.fetches = Counter(
            "atlas_edge_fetches", "Fetch requests by cache status", ["cache"], registry=r
        )
        self.provider_lookups = Counter(
            "atlas_edge_provider_lookups", "Tracker look-ups answered (/v1/providers)", registry=r
        )
        self.earned = Gauge(
            "atlas_edge_earned_base_units", "Sum of accepted voucher amounts", registry=r
        )
        self.redeemed = Gauge(
            "atlas_edge_redeemed_base_units", "Sum redeemed on the ledger", registry=r
        )
        self.stored_bytes = Gauge("atlas_edge_stored_bytes", "Bytes in the chunk store", registry=r)
        self.tunnels_opened = Counter(
            "atlas_edge_tunnels_opened", "CONNECT tunnels opened (answered 200)", registry=r
        )
        self.tunnels_refused = Counter(
            "atlas_edge_tunnels_refused", "CONNECT requests refused, by problem code", ["reason"],
            registry=r,
        )  # fmt: skip
        self.tunnels_closed = Counter(
            "atlas_edge_tunnels_closed", "Tunnels closed, by reason", ["reason"], registry=r
        )
        self.tunnels_open = Gauge("atlas_edge_tunnels_open", "Tunnels open now", registry=r)
        self.tunnel_bytes = Counter(
            "atlas_edge_tunnel_bytes", "Bytes relayed through tunnels (up: client to target)",
            ["direction"], registry=r,
        )  # fmt: skip
        self.tunnel_units = Counter(
            "atlas_edge_tunnel_units", "Tunnel units paid, by how they were paid", ["paid_by"],
            registry=r,
        )  # fmt: skip
        self.lane_bytes = Counter(
            "atlas_edge_lane_bytes", "Bytes sent, by market lane (paid slot or free lane)",
            ["lane"], registry=r,
        )  # fmt: skip
        self.market_clearing_price = Gauge(
            "atlas_edge_market_clearing_price",
            "Base units per MiB a paid slot costs this round (the fixed price without a market)",
            registry=r,
        )
        self.market_reserve = Gauge(
            "atlas_edge_market_reserve", "The market's reserve, base units per MiB", registry=r
        )
        self.market_winners = Gauge(
            "atlas_edge_market_winners", "Payers holding a paid slot this round", registry=r
        )
