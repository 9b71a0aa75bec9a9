"""The buyer's side of the BTT market: where a download pays for a slot, and what it bids.

An edge with an upload capacity sells paid slots by auction each round and
shares a free lane with everyone (docs/market.md). A download uses every
provider's free lane (a request with no payment and no ``Atlas-Bid``), and
asks for paid slots only where the clearing price is at or under its ceiling
(``--max-price``), cheapest per delivered MiB first, until its measured rate
reaches ``--target-rate`` (none: every provider within the ceiling). Where it
wants a slot it bids its ceiling (truthful: the price paid is set by the best
losing bid, never by one's own), or, with no ceiling, the going price.

A provider whose clearing price stays above the ceiling for two of its rounds
is used only through its free lane. A download that cannot pay at all (no
wallet, ``--max-price 0``, or a wallet too poor to fund a channel) is
*free-only*: it never bids and never opens a channel. Edges without a market
(capacity 0, or older edges: no ``market`` in ``/v1/info``) are paid as
before, when they answer 402.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import aiohttp

from requester.provider_choice import ProviderChoice

BID_HEADER = "Atlas-Bid"
LANE_HEADER = "Atlas-Lane"
CLEARING_HEADER = "Atlas-Clearing-Price"
ROUNDS_ABOVE = 2
"""Rounds a provider's price may stay above the ceiling before it is used only for free."""
RATE_WINDOW = 3.0
"""Seconds of delivered bytes the download's rate is measured over."""
INFO_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=3)
MIB = 1 << 20


@dataclass
class Market:
    """One provider's market as seen from here (``/v1/info`` and its chunk answers)."""

    capacity: int = 0
    """Bytes/s it sells by auction; 0: no auction (today's fixed price, 402 past the free
    allowance), also for an edge whose ``/v1/info`` has no ``market``."""
    round_seconds: float = 10.0
    clearing_price: int | None = None
    """Base units per MiB paid slots cost now (``Atlas-Clearing-Price``, a quote, /v1/info)."""
    above_since: float | None = None
    """When its price was first seen above the ceiling (None: at or under it)."""
    slots: int = 0
    """Its slots (paid and free); 0: not said (then no deposit is sized for a bid there)."""

    @property
    def auction(self) -> bool:
        return self.capacity > 0


def parse_market(info: object) -> Market | None:
    """The ``market`` of an edge's ``/v1/info`` answer, or None if it has none usable."""
    doc = info.get("market") if isinstance(info, Mapping) else None
    if not isinstance(doc, Mapping):
        return None
    capacity, seconds = doc.get("capacity"), doc.get("round_seconds", 10)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 0:
        return None
    if not isinstance(seconds, int | float) or not 0 < seconds <= 3600:
        seconds = 10
    slots = doc.get("slots")
    if not isinstance(slots, int) or isinstance(slots, bool) or not 0 < slots <= 1 << 16:
        slots = 0
    return Market(capacity, float(seconds), _price(doc.get("clearing_price")), slots=slots)


def _price(text: object) -> int | None:
    text = str(text) if isinstance(text, str | int) and not isinstance(text, bool) else ""
    return int(text) if text.isascii() and text.isdigit() and len(text) <= 40 else None


async def read_market(session: aiohttp.ClientSession, provider: str) -> Market | None:
    """``provider``'s market from its ``/v1/info``; None if it has none or cannot say."""
    try:
        async with session.get(f"{provider.rstrip('/')}/v1/info", timeout=INFO_TIMEOUT) as resp:
            info: Any = await resp.json(content_type=None) if resp.status == 200 else None
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return None
    return parse_market(info)


@dataclass
class Bidding:
    """One download's decisions: who gets paid for a slot, what it bids, and the lanes."""

    ceiling: int | None = None
    """Most it pays per MiB (``--max-price``); None: no ceiling (bid the going price)."""
    target_rate: int | None = None
    """Bytes/s it buys paid slots up to (``--target-rate``); None: as fast as it can."""
    free_only: str | None = None
    """Why it pays nobody (no wallet, ``--max-price 0``, an empty wallet), or None."""
    choice: ProviderChoice = field(default_factory=ProviderChoice)
    markets: dict[str, Market] = field(default_factory=dict)
    paying: set[str] = field(default_factory=set)
    """Market providers it asks for a paid slot now (bids to, pays ahead)."""
    unfunded: dict[str, str] = field(default_factory=dict)
    """Providers the wallet could not fund a channel to, and why: free lane only there."""
    _delivered: deque[tuple[float, int]] = field(default_factory=deque)
    _replanned: float = 0.0
    _changed: float = 0.0
    """When ``paying`` last grew or shrank under a target rate."""

    def __post_init__(self) -> None:
        if self.ceiling == 0 and self.free_only is None:
            self.free_only = "--max-price 0: this download pays nobody"

    def learn(self, provider: str, market: Market | None, now: float | None = None) -> None:
        """What ``/v1/info`` said; None keeps it a provider without an auction."""
        now = time.monotonic() if now is None else now
        if market is not None:
            old = self.markets.get(provider)
            if old is not None and market.clearing_price is None:
                market.clearing_price = old.clearing_price
            self.markets[provider] = market
            if market.clearing_price is not None:
                self.observe(provider, market.clearing_price, now)
        self.replan(now)

    def auction(self, provider: str) -> bool:
        market = self.markets.get(provider)
        return market is not None and market.auction

    def observe(self, provider: str, price: int, now: float) -> None:
        """A clearing price seen on an answer (a chunk's header, a quote)."""
        market = self.markets.setdefault(provider, Market())
        market.clearing_price = price
        if self.ceiling is not None and price > self.ceiling:
            market.above_since = now if market.above_since is None else market.above_since
        else:
            market.above_since = None

    def observe_answer(self, provider: str, headers: Mapping[str, str], now: float) -> None:
        price = _price(headers.get(CLEARING_HEADER))
        if price is not None:
            self.observe(provider, price, now)

    def over_ceiling(self, provider: str, now: float) -> bool:
        """Its price has stayed above the ceiling for two of its rounds: free lane only."""
        market = self.markets.get(provider)
        if market is None or market.above_since is None:
            return False
        return now - market.above_since >= ROUNDS_ABOVE * market.round_seconds

    def wants_paid(self, provider: str, now: float) -> bool:
        """Send payment and a bid to this market provider (else: its free lane only)."""
        if self.free_only is not None or provider in self.unfunded:
            return False
        return provider in self.paying and not self.over_ceiling(provider, now)

    def bid(self, provider: str) -> int | None:
        """What to bid there: the ceiling (truthful), else the going price."""
        if self.ceiling is not None:
            return self.ceiling
        market = self.markets.get(provider)
        return None if market is None else market.clearing_price

    def cover(self, provider: str) -> int:
        """What a channel to ``provider`` must keep unspent for its bid to count: the bid
        for one slot for one round (bid x capacity / slots x round_seconds / MiB, rounded
        up; docs/market.md); 0 where it bids nothing or the market does not say its slots."""
        market, bid = self.markets.get(provider), self.bid(provider)
        if market is None or not market.auction or not market.slots or not bid:
            return 0
        per_round = Fraction(bid * market.capacity, market.slots * MIB)
        return math.ceil(per_round * Fraction(market.round_seconds))

    def priced_within(self, provider: str) -> bool:
        """Its last known clearing price is at or under the ceiling (or not known yet)."""
        market = self.markets.get(provider)
        price = None if market is None else market.clearing_price
        return price is None or self.within_ceiling(price)

    def within_ceiling(self, price_per_mib: int) -> bool:
        return self.ceiling is None or price_per_mib <= self.ceiling

    def cannot_pay(self, provider: str, reason: str) -> None:
        """The wallet cannot fund a channel to ``provider``'s payee (nothing was sent to the
        ledger): it is used through its free lane only from now on."""
        self.unfunded[provider] = reason
        self.paying.discard(provider)

    def delivered(self, size: int, now: float) -> None:
        """Bytes delivered to the caller, for the measured rate."""
        self._delivered.append((now, size))
        while self._delivered and now - self._delivered[0][0] > RATE_WINDOW:
            self._delivered.popleft()
        if now - self._replanned >= 1.0:
            self.replan(now)

    def rate(self, now: float) -> float:
        """Bytes/s delivered over the last few seconds."""
        recent = [(t, n) for t, n in self._delivered if now - t <= RATE_WINDOW]
        if not recent:
            return 0.0
        span = max(now - recent[0][0], 0.5)
        return sum(n for _, n in recent) / span

    def candidates(self, now: float) -> list[str]:
        """Market providers worth a paid slot, cheapest per delivered MiB first."""
        found = []
        for provider, market in self.markets.items():
            if not market.auction or provider in self.unfunded or self.over_ceiling(provider, now):
                continue
            price = market.clearing_price
            if price is not None and not self.within_ceiling(price) and provider not in self.paying:
                continue  # a new slot is bought only at a price under the ceiling
            found.append(provider)
        return sorted(found, key=lambda p: (self.choice.cost_per_mib(p, self._price_of(p)), p))

    def _price_of(self, provider: str) -> int:
        market = self.markets.get(provider)
        return 0 if market is None or market.clearing_price is None else market.clearing_price

    def replan(self, now: float) -> None:
        """Choose the providers to pay: all within the ceiling, or, with a target rate, the
        cheapest first, then one more (the cheapest left) while the rate is under it, one
        fewer (the dearest) while it is well over it, a round apart (a bid takes a slot at
        the end of a round: its effect shows only then)."""
        self._replanned = now
        if self.free_only is not None:
            self.paying.clear()
            return
        ranked = self.candidates(now)
        self.paying &= set(ranked)
        if self.target_rate is None:
            self.paying = set(ranked)
            return
        unpaid = [p for p in ranked if p not in self.paying]
        if not self.paying:
            if unpaid:
                self.paying.add(unpaid[0])
                self._changed = now
            return
        rounds = [self.markets[p].round_seconds for p in self.paying]
        if now - self._changed < max(rounds, default=1.0):
            return
        rate = self.rate(now)
        dearest = max(self.paying, key=ranked.index)
        if unpaid and rate < self.target_rate:
            self.paying.add(unpaid[0])
        elif len(self.paying) > 1 and rate > self.target_rate * 1.25:
            self.paying.discard(dearest)
        elif unpaid and ranked.index(unpaid[0]) < ranked.index(dearest):
            self.paying ^= {dearest, unpaid[0]}  # a cheaper one found since: swap
        else:
            return
        self._changed = now

    def describe(self, provider: str) -> dict[str, Any]:
        """What the summary says of this provider's market (None where not an auction)."""
        market = self.markets.get(provider)
        if market is None or not market.auction:
            return {"market": None}
        price, bid = market.clearing_price, self.bid(provider)
        paying = self.wants_paid(provider, time.monotonic())
        return {
            "market": {
                "capacity": market.capacity,
                "clearing_price": None if price is None else str(price),
                "bid": None if bid is None or not paying else str(bid),
                "paying": paying,
            }
        }
