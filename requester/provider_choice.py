"""Scoring a download's providers, so the chunks that are needed first go to the best.

Each provider's record is a set of moving averages over its answers: the
throughput of a chunk request (wire bytes over the time the request took),
the time its first chunk took, the share of requests that delivered, and the
price it charged per MiB. The scheduler gives the chunk needed next to a
provider that is expected to deliver it soonest; a provider expected to take
k times longer than the best starts its picks k - 1 chunks further into the
window, where its slowness delays nobody (near the end, stragglers are raced
anyway). A provider with no record yet is tried at once, and a few picks of
every provider ignore its score (exploration), so a provider that was slow
once, or is new, gets measured again.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ALPHA = 0.3
"""Weight of the newest answer in each moving average."""
EXPLORE = 0.1
"""Share of picks that ignore the score."""
MIB = 1 << 20


@dataclass
class Record:
    """One provider's moving averages (None: nothing measured yet)."""

    throughput: float | None = None
    """Bytes/s of one chunk request, wire bytes over its duration."""
    first_chunk: float | None = None
    """Seconds from its first request to its first delivered chunk."""
    success: float = 1.0
    """Share of requests that delivered (1: all)."""
    price: float = 0.0
    """Base units per MiB it charged (0 for chunks served free)."""
    answers: int = 0


class ProviderChoice:
    """The records of one download's providers, and what they mean for the next pick."""

    def __init__(self, *, alpha: float = ALPHA, explore: float = EXPLORE,
                 rng: random.Random | None = None) -> None:  # fmt: skip
        self.alpha, self.explore = alpha, explore
        self._rng = rng or random.Random()  # noqa: S311 (spreads picks, guards nothing)
        self.records: dict[str, Record] = {}
        self._first_asked: dict[str, float] = {}

    def record(self, provider: str) -> Record:
        return self.records.setdefault(provider, Record())

    def asked(self, provider: str, now: float) -> None:
        """A request to ``provider`` starts (the first one starts its first-chunk clock)."""
        self._first_asked.setdefault(provider, now)
        self.record(provider)

    def delivered(self, provider: str, wire_bytes: int, seconds: float, price: int,
                  now: float) -> None:  # fmt: skip
        """A chunk of ``wire_bytes`` came in ``seconds``, charged ``price`` in all."""
        rec = self.record(provider)
        rate = wire_bytes / max(seconds, 1e-4)
        per_mib = price * MIB / wire_bytes if wire_bytes else 0.0
        if rec.first_chunk is None:
            rec.first_chunk = now - self._first_asked.get(provider, now - seconds)
        rec.throughput = rate if rec.throughput is None else self._avg(rec.throughput, rate)
        rec.success = self._avg(rec.success, 1.0)
        rec.price = per_mib if rec.answers == 0 else self._avg(rec.price, per_mib)
        rec.answers += 1

    def failed(self, provider: str) -> None:
        """A request delivered nothing (unavailable, refused, a fault)."""
        rec = self.record(provider)
        rec.success = self._avg(rec.success, 0.0)
        rec.answers += 1

    def _avg(self, old: float, new: float) -> float:
        return (1 - self.alpha) * old + self.alpha * new

    def expected_seconds(self, provider: str, chunk_size: int) -> float | None:
        """How long a chunk from ``provider`` is expected to take, failures counted; None
        for a provider not measured yet."""
        rec = self.records.get(provider)
        if rec is None or rec.throughput is None:
            return None
        return chunk_size / rec.throughput / max(rec.success, 0.05)

    def lag(self, provider: str, chunk_size: int, window: int) -> int:
        """How far into the delivery window ``provider`` should start its pick: 0 for the
        best (and for one not measured yet, and on exploration), k - 1 for one expected to
        take k times as long, at most half the window."""
        mine = self.expected_seconds(provider, chunk_size)
        if mine is None or self._rng.random() < self.explore:
            return 0
        times = [t for p in self.records if (t := self.expected_seconds(p, chunk_size))]
        best = min(times, default=mine)
        return min(int(mine / max(best, 1e-6)) - 1, window // 2) if mine > best else 0

    def cost_per_mib(self, provider: str, price_per_mib: int) -> float:
        """What a MiB delivered by ``provider`` costs at ``price_per_mib``, failures counted."""
        rec = self.records.get(provider)
        return price_per_mib / max(rec.success if rec is not None else 1.0, 0.05)

    def score(self, provider: str) -> float:
        """Delivered bytes/s expected per request (0 if not measured), for reports."""
        rec = self.records.get(provider)
        if rec is None or rec.throughput is None:
            return 0.0
        return rec.throughput * rec.success
