"""The BTT market's slot auction: who gets a paid upload slot, at what price, and the free lane.

An edge's upload capacity is cut into ``slots`` equal slots, ``free_slots`` of
which nobody can buy. Each round the edge runs a multi-unit uniform-price
auction over the others, the mechanism BitTorrent Speed's whitepaper
describes: every requester wants one slot (unit demand), the highest eligible
bids win one paid slot each, and every winner pays the same clearing price,
the higher of the reserve and the highest losing bid. With unit demand that
is the (k+1)-th price auction, in which bidding one's true value is a weakly
dominant strategy, and it is deterministic, so it is tested exactly.

The free lane (the free slots plus any paid slot nobody won) is shared equally
by every active requester address, winners included, so paying buys speed on
top of a free share and never decides whether a requester is served.

Pure functions over frozen values: :func:`clear` decides the round from the
bids, :func:`shares` turns it into exact rates (:class:`fractions.Fraction`
bytes per second, so they sum to the capacity exactly; the scheduler rounds
when it paces bytes). Prices are integers in the asset's base units per MiB.
Capacity 0 (:data:`UNLIMITED`) means no auction: see :func:`shares`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Final

UNLIMITED: Final = 0
"""An upload capacity of 0 means unlimited: no rounds, no auction, everyone served free."""


def _check_count(name: str, value: int, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, not {value!r}")


@dataclass(frozen=True, slots=True)
class Bid:
    """One payer's offer for a paid slot this round.

    ``price_per_mib`` is in the asset's base units (integers only, never floats).
    ``covered`` says the channel's unspent deposit covers the bid for one slot
    for one round (the edge knows deposits and round lengths; the auction does
    not). ``placed_at`` breaks ties, earlier first, then ``payer``: a rule both
    sides can reproduce, so the outcome never depends on the order bids arrive in.
    """

    payer: str
    price_per_mib: int
    placed_at: int
    covered: bool

    def __post_init__(self) -> None:
        if not isinstance(self.payer, str) or not self.payer:
            raise ValueError("a bid names its payer")
        _check_count("a bid's price_per_mib", self.price_per_mib, 0)
        _check_count("a bid's placed_at", self.placed_at, 0)

    def rank_key(self) -> tuple[int, int, str]:
        """Sorts bids best first: higher price, then earlier, then lower payer id."""
        return (-self.price_per_mib, self.placed_at, self.payer)

    def eligible(self, reserve: int) -> bool:
        """At least the reserve and covered by its channel: only such bids take part."""
        return self.covered and self.price_per_mib >= reserve


@dataclass(frozen=True, slots=True)
class Clearing:
    """The outcome of one round: the winners in rank order and the price they all pay."""

    winners: tuple[str, ...]
    price: int
    """Base units per MiB every winner pays: the higher of the reserve and the highest
    losing eligible bid, or the reserve when nobody won (what the quote publishes)."""
    reserve: int
    slots: int
    free_slots: int

    @property
    def paid_slots(self) -> int:
        """Slots on sale this round."""
        return self.slots - self.free_slots

    @property
    def unused_paid_slots(self) -> int:
        """Paid slots nobody won; they join the free lane."""
        return self.paid_slots - len(self.winners)

    @property
    def free_lane_slots(self) -> int:
        """Slots shared by every active requester: the free ones plus the unused paid ones."""
        return self.slots - len(self.winners)

    def price_for(self, payer: str) -> int:
        """What ``payer`` pays per MiB on its paid slot: the clearing price if it won, else 0."""
        return self.price if payer in self.winners else 0


def clear(bids: Iterable[Bid], slots: int, free_slots: int, reserve: int) -> Clearing:
    """Runs one round of the uniform-price auction over ``slots - free_slots`` paid slots.

    Eligible bids are covered and at least ``reserve``. Each payer takes part
    once, with its best eligible bid (a second bid from the same payer must not
    set the price it or anyone else pays). The ``slots - free_slots`` best win,
    by price, then ``placed_at``, then payer id. Winners pay the higher of the
    reserve and the best losing bid, which is never above their own; everyone
    else pays nothing. ``free_slots`` is at least 1: the free lane is what keeps
    the promise that paying is never required to be served. The result does not
    depend on the order of ``bids``.
    """
    _check_count("slots", slots, 1)
    _check_count("free_slots", free_slots, 1)
    _check_count("reserve", reserve, 0)
    if free_slots > slots:
        raise ValueError(f"free_slots ({free_slots}) cannot exceed slots ({slots})")
    best: dict[str, Bid] = {}
    for bid in bids:
        if bid.eligible(reserve):
            held = best.get(bid.payer)
            if held is None or bid.rank_key() < held.rank_key():
                best[bid.payer] = bid
    ranked = sorted(best.values(), key=Bid.rank_key)
    paid_slots = slots - free_slots
    winners = tuple(bid.payer for bid in ranked[:paid_slots])
    losers = ranked[paid_slots:]
    price = reserve
    if winners and losers:
        price = max(reserve, losers[0].price_per_mib)
    return Clearing(winners, price, reserve, slots, free_slots)


@dataclass(frozen=True, slots=True)
class Shares:
    """Upload rates for one round, in bytes per second, exact.

    ``paid_slot`` is what each winner's paid slot carries (capacity / slots);
    ``free_share`` is what each active address gets from the free lane. A
    requester's rate is its free share plus, if its payer won, one paid slot.
    These are guarantees: a scheduler that keeps the link busy may lend a lane
    nobody is using (a winner with no request waiting) to whoever is.
    """

    capacity: int
    paid_slot: Fraction
    free_share: Fraction
    winners: frozenset[str]
    active: frozenset[str]

    @property
    def unlimited(self) -> bool:
        """Capacity 0: nothing is paced, every rate reads 0 (no limit)."""
        return self.capacity == UNLIMITED

    def rate(self, address: str, payer: str | None = None) -> Fraction:
        """The rate of a requester at ``address`` paying as ``payer`` (None: not paying)."""
        free = self.free_share if address in self.active else Fraction(0)
        return free + (self.paid_slot if payer is not None and payer in self.winners else 0)


def shares(clearing: Clearing, active: Iterable[str], capacity: int) -> Shares:
    """Splits ``capacity`` bytes/s: one slot per winner, the free lane equally by address.

    Each slot carries ``capacity / slots``. The free lane (``clearing.free_lane_slots``
    slots) is divided equally among the distinct ``active`` addresses (IPv4 /32,
    IPv6 /64, as the edge keys them), winners included, so with N active
    addresses everyone gets at least ``free_slots / slots * capacity / N`` and,
    when every winner is active, the rates sum to ``capacity`` exactly.

    Capacity 0 (:data:`UNLIMITED`) means no auction: every rate is 0, read as
    "no limit", and an edge that has no capacity to sell runs no rounds, so it
    never calls :func:`clear`: everyone is served free and the reserve is unused.
    """
    _check_count("capacity", capacity, 0)
    addresses = frozenset(active)
    winners = frozenset(clearing.winners)
    if capacity == UNLIMITED:
        return Shares(UNLIMITED, Fraction(0), Fraction(0), winners, addresses)
    slot = Fraction(capacity, clearing.slots)
    free = slot * clearing.free_lane_slots / len(addresses) if addresses else Fraction(0)
    return Shares(capacity, slot, free, winners, addresses)
