"""Taking the edge's samples: one when it starts, then one every ``--history-interval``.

Counters of the running process (bytes by lane, fetches by cache outcome) start at zero
with it, so a sample keeps what moved since the one before; earnings come from the
payment book, which is cumulative and durable. :meth:`Recorder.pending` is the interval
in progress, not stored, so the page's last point is now, not up to a minute ago.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from cdn_edge.dashboard.history import History, Sample
from cdn_edge.market.lanes import FREE, PAID
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.payment_rows import ChannelRecord
from cdn_edge.payments import PaymentBook

log = logging.getLogger(__name__)

HIT_OUTCOMES = frozenset({"HIT", "REVALIDATED", "STALE", "JOINED", "SIBLING"})
"""Fetches answered without the origin sending the body again (SIBLING: from another
edge's copy, docs/edge.md, Sibling caches)."""


@dataclass(frozen=True)
class Reading:
    """The process's counters at one moment."""

    at: float
    paid_bytes: int
    free_bytes: int
    hits: int
    misses: int


class Recorder:
    def __init__(self, history: History, metrics: EdgeMetrics, payments: PaymentBook,
                 stored_bytes: Callable[[], Awaitable[int]], interval: float) -> None:  # fmt: skip
        self.history = history
        self._metrics = metrics
        self._payments = payments
        self._stored_bytes = stored_bytes
        self.interval = interval
        self._last = Reading(time.time(), 0, 0, 0, 0)

    def read(self, now: float) -> Reading:
        lanes = self._metrics.count(self._metrics.lane_bytes)
        fetches = self._metrics.count(self._metrics.fetches)
        hits = sum(n for cache, n in fetches.items() if cache in HIT_OUTCOMES)
        return Reading(now, lanes.get(PAID, 0), lanes.get(FREE, 0), hits,
                       sum(fetches.values()) - hits)  # fmt: skip

    async def pending(self, now: float) -> Sample:
        """The interval in progress, as a sample (not stored)."""
        return await self._sample(self.read(now), await self._payments.records())

    async def take(self, now: float) -> Sample:
        """Store the interval that ends now and start the next one."""
        reading = self.read(now)
        sample = await self._sample(reading, await self._payments.records())
        await self.history.add(sample)
        self._last = reading
        return sample

    async def run(self) -> None:
        """A sample at start (the baseline of this run), then one per interval."""
        while True:
            try:
                await self.take(time.time())
            except Exception:  # a full disk must not stop the edge from serving
                log.exception("could not record the dashboard's history")
            await asyncio.sleep(self.interval)

    async def _sample(self, now: Reading, records: list[ChannelRecord]) -> Sample:
        last = self._last
        stored = await self._stored_bytes()
        return Sample(
            t=int(now.at), seconds=max(now.at - last.at, 0.001),
            earned=sum(r.paid for r in records), redeemed=sum(r.redeemed for r in records),
            paid_bytes=now.paid_bytes - last.paid_bytes,
            free_bytes=now.free_bytes - last.free_bytes, hits=now.hits - last.hits,
            misses=now.misses - last.misses, stored_bytes=int(stored),
            channels=len(open_channels(records, now.at)),
        )  # fmt: skip


def open_channels(records: list[ChannelRecord], now: float) -> list[ChannelRecord]:
    """Channels not expired yet, the best payers first."""
    return sorted((r for r in records if r.expires_at > now), key=lambda r: -r.paid)
