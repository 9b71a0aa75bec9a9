"""Prometheus metrics of an edge, on a registry of its own (one per app).

Names follow Prometheus's conventions: the unit is the last word before ``_total``
(``_bytes``, ``_seconds``, ``_btt``), counters end in ``_total``, and each metric
declares its unit (``# UNIT`` in OpenMetrics, which Prometheus asks for; the HELP text
says it too). Money is in BTT as a float (``_btt``): Prometheus holds every value as a
float64 anyway, so base units would be no more exact, only harder to read; the exact
figures are in ``atlas edge earnings``. The market's prices (``atlas_edge_market_*``)
stay in base units per MiB, as ``/v1/info`` and ``--price`` state them. Labels whose
values are known up front are created at zero, so every query has a series to answer
before the first event. docs/operators.md lists every metric.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector


@dataclass
class ScrapeFacts:
    """What a scrape reads from the payment book, the store and the probes (set by the
    ``/metrics`` handler just before it renders; the dashboard's gatherer fills it)."""

    earned_btt: float = 0.0
    redeemed_btt: float = 0.0
    stored_bytes: int = 0
    store_cap_bytes: int = 0
    open_channels: int = 0
    payers: int = 0
    seeded_bytes: int = 0
    next_settlement: float | None = None
    ledger_up: bool | None = None
    trackers_up: dict[str, bool | None] = field(default_factory=dict)
    asset_one: int = 0
    """Base units in one BTT of the ledger's asset (0 until the first scrape knows it)."""
    market_reserve: int = 0
    """The reserve in base units per MiB (the market sets it; the fixed price without one)."""
    market_clearing_price: int = 0
    """What a paid slot costs this round, base units per MiB (the market sets it)."""


class _FactsCollector(Collector):
    def __init__(self, facts: ScrapeFacts) -> None:
        self._facts = facts

    def collect(self) -> Iterator[Metric]:
        f = self._facts
        counter, gauge = CounterMetricFamily, GaugeMetricFamily
        yield counter("atlas_edge_earned_btt", "Voucher amounts accepted, in BTT (all time, "
                      "durable)", value=f.earned_btt, unit="btt")  # fmt: skip
        yield counter("atlas_edge_redeemed_btt", "Amounts redeemed on the ledger, in BTT (all "
                      "time)", value=f.redeemed_btt, unit="btt")  # fmt: skip
        yield gauge("atlas_edge_unredeemed_btt", "Earned and not redeemed yet, in BTT",
                    value=f.earned_btt - f.redeemed_btt, unit="btt")  # fmt: skip
        yield gauge("atlas_edge_stored_bytes", "Bytes in the chunk store, in bytes",
                    value=f.stored_bytes, unit="bytes")  # fmt: skip
        yield gauge("atlas_edge_store_cap_bytes", "The chunk store's cap (--store-cap-gib), in "
                    "bytes", value=f.store_cap_bytes, unit="bytes")  # fmt: skip
        yield gauge("atlas_edge_open_channels", "Payment channels to this edge not expired yet",
                    value=f.open_channels)  # fmt: skip
        yield gauge("atlas_edge_payers", "Distinct payers of the open channels", value=f.payers)
        yield counter("atlas_edge_seeded_bytes", "Torrent payload bytes seeded to peers since "
                      "the edge started, in bytes", value=f.seeded_bytes, unit="bytes")  # fmt: skip
        if f.next_settlement is not None:
            yield gauge("atlas_edge_next_settlement_timestamp_seconds", "When the next "
                        "settlement round runs, in unix seconds", value=f.next_settlement,
                        unit="seconds")  # fmt: skip
        if f.ledger_up is not None:
            yield gauge("atlas_edge_ledger_up", "1 if the ledger answered the last probe "
                        "(every 15 s at most), else 0", value=int(f.ledger_up))  # fmt: skip
        if f.asset_one:  # BTT per MiB, like the other amounts: base units differ by asset
            yield gauge("atlas_edge_market_reserve_btt_per_mib", "The market's reserve (the "
                        "fixed price without a market), in BTT per MiB",
                        value=f.market_reserve / f.asset_one)  # fmt: skip
            yield gauge("atlas_edge_market_clearing_price_btt_per_mib", "What a paid slot costs "
                        "this round (the fixed price without a market), in BTT per MiB",
                        value=f.market_clearing_price / f.asset_one)  # fmt: skip
        trackers = gauge("atlas_edge_tracker_up", "1 if the tracker answered the last probe's "
                         "/healthz, else 0", labels=["tracker"])  # fmt: skip
        for url, up in f.trackers_up.items():
            if up is not None:
                trackers.add_metric([url], int(up))
        yield trackers


@dataclass
class EdgeMetrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    facts: ScrapeFacts = field(default_factory=ScrapeFacts)

    def __post_init__(self) -> None:
        r = self.registry
        self.bytes_sent = Counter(
            "atlas_edge_sent_bytes", "Chunk bytes sent on the wire, in bytes", unit="bytes",
            registry=r,
        )  # fmt: skip
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
            "atlas_edge_tunnel_bytes", "Bytes relayed through tunnels, in bytes (up: client to "
            "target)", ["direction"], unit="bytes", registry=r,
        )  # fmt: skip
        self.tunnel_units = Counter(
            "atlas_edge_tunnel_units", "Tunnel units paid, by how they were paid", ["paid_by"],
            registry=r,
        )  # fmt: skip
        self.lane_bytes = Counter(
            "atlas_edge_lane_bytes", "Bytes sent, by market lane (paid slot or free lane), in "
            "bytes", ["lane"], unit="bytes", registry=r,
        )  # fmt: skip
        self.market_winners = Gauge(
            "atlas_edge_market_winners", "Payers holding a paid slot this round", registry=r
        )
        for metric, values in (
            (self.chunks, ("voucher", "credit", "free")),
            (self.vouchers, ("accepted",)),
            (self.fetches, ("HIT", "MISS")),
            (self.tunnel_bytes, ("up", "down")),
            (self.tunnel_units, ("voucher", "free")),
            (self.lane_bytes, ("paid", "free")),
        ):
            for value in values:
                metric.labels(value)
        r.register(_FactsCollector(self.facts))

    def count(self, metric: Counter) -> dict[str, int]:
        """A labelled counter's values since the edge started, by its one label's value."""
        out: dict[str, int] = {}
        for family in metric.collect():
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels:
                    out[next(iter(sample.labels.values()))] = int(sample.value)
        return out

    def total(self, metric: Counter | Gauge) -> int:
        """An unlabelled counter's (or gauge's) value."""
        for family in metric.collect():
            for sample in family.samples:
                if not sample.name.endswith("_created"):
                    return int(sample.value)
        return 0
