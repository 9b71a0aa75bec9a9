"""Everything the dashboard shows, gathered once per page (and per ``/metrics`` scrape).

The parts that move (counters, the payment book, the store, the probes) are read here,
in one place, so the page and Prometheus never disagree about what the edge earned.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from cdn_edge.dashboard.health import Health
from cdn_edge.dashboard.history import Sample
from cdn_edge.dashboard.recorder import Recorder, open_channels
from cdn_edge.edge_state import Edge
from cdn_edge.payment_rows import ChannelRecord
from cdn_edge.settlement import SettleClock
from cdn_edge.torrent.session import TorrentView
from requester.protocol import Asset

PLOT_SECONDS = 6 * 3600
"""The plots' window: the last six hours."""
DAY = 86400


@dataclass(frozen=True)
class Totals:
    """Sums over some samples."""

    paid_bytes: int = 0
    free_bytes: int = 0
    hits: int = 0
    misses: int = 0

    @classmethod
    def of(cls, samples: Iterable[Sample]) -> Totals:
        out = cls()
        for s in samples:
            out = Totals(out.paid_bytes + s.paid_bytes, out.free_bytes + s.free_bytes,
                         out.hits + s.hits, out.misses + s.misses)  # fmt: skip
        return out

    @property
    def hit_ratio(self) -> float | None:
        fetches = self.hits + self.misses
        return self.hits / fetches if fetches else None


@dataclass
class Facts:
    now: float
    asset: Asset
    earned: int
    redeemed: int
    today: int
    week: int
    settling: SettleClock
    settle_interval: float
    day: Totals
    """The last 24 hours (from the history, with the interval in progress)."""
    lanes: dict[str, int]
    """Bytes by lane since the edge started."""
    cache: dict[str, int]
    """Fetches by cache outcome since the edge started."""
    stored_bytes: int
    store_cap: int
    channels: list[ChannelRecord]
    """Open channels, the best payers first."""
    tunnels_open: int
    tunnels_opened: int
    tunnel_bytes: dict[str, int]
    torrents_on: bool
    seeded_bytes: int
    torrents: list[TorrentView]
    """The torrents in the edge's session now."""
    price_per_mib: int
    """What a paid MiB costs now: the market's clearing price, or the fixed ``--price``."""
    market_winners: int | None
    """Payers holding a paid slot this round; None without a market."""
    health: Health
    series: list[Sample] = field(default_factory=list)
    """The plots' samples, oldest first, ending with the interval in progress."""
    series_base: int = 0
    """What the edge had earned when the plots' window starts."""

    @property
    def span(self) -> tuple[float, float]:
        """The plots' time axis: the last six hours, or from the first sample kept if the
        history is younger (at least a minute), so a new edge's plots are not one dot."""
        first = self.series[0].t if self.series else self.now
        return min(max(self.now - PLOT_SECONDS, first), self.now - 60), self.now

    @property
    def payers(self) -> set[str]:
        return {r.payer for r in self.channels}


async def gather(edge: Edge, recorder: Recorder, health: Health, settling: SettleClock,
                 now: float | None = None) -> Facts:  # fmt: skip
    now = time.time() if now is None else now
    history = recorder.history
    pending = await recorder.pending(now)
    midnight = time.mktime((*time.localtime(now)[:3], 0, 0, 0, 0, 0, -1))
    day_start, week_start = await history.at(midnight), await history.at(now - 7 * DAY)
    window = [*await history.since(now - PLOT_SECONDS), pending]
    base = await history.at(now - PLOT_SECONDS)
    m = edge.metrics
    records = await edge.payments.records()
    facts = Facts(
        now=now, asset=edge.asset, earned=pending.earned, redeemed=pending.redeemed,
        today=pending.earned - (day_start.earned if day_start else 0),
        week=pending.earned - (week_start.earned if week_start else 0),
        settling=settling, settle_interval=edge.config.settle_interval,
        day=Totals.of([*await history.since(now - DAY), pending]),
        lanes=m.count(m.lane_bytes), cache=m.count(m.fetches),
        stored_bytes=pending.stored_bytes, store_cap=edge.config.store_cap_gib,
        channels=open_channels(records, now), tunnels_open=m.total(m.tunnels_open),
        tunnels_opened=m.total(m.tunnels_opened), tunnel_bytes=m.count(m.tunnel_bytes),
        torrents_on=edge.torrents is not None,
        seeded_bytes=edge.torrents.uploaded() if edge.torrents is not None else 0,
        torrents=edge.torrents.overview() if edge.torrents is not None else [],
        price_per_mib=edge.price_per_mib,
        market_winners=m.total(m.market_winners) if edge.selling is not None else None,
        health=health, series=window,
        series_base=base.earned if base is not None else 0,
    )  # fmt: skip
    _scrape(edge, facts)
    return facts


def _scrape(edge: Edge, facts: Facts) -> None:
    """Hand the same figures to ``/metrics``."""
    one = facts.asset.one
    s = edge.metrics.facts
    s.earned_btt, s.redeemed_btt = facts.earned / one, facts.redeemed / one
    s.asset_one = one
    s.stored_bytes, s.store_cap_bytes = facts.stored_bytes, facts.store_cap
    s.open_channels, s.payers = len(facts.channels), len(facts.payers)
    s.seeded_bytes = facts.seeded_bytes
    s.next_settlement = facts.settling.next_at
    s.ledger_up = facts.health.ledger.up
    s.trackers_up = {url: p.up for url, p in facts.health.trackers.items()}
