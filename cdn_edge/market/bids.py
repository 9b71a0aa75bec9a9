"""The bids of the current round and the round's end: pure state around ``auction.clear``.

A payer's latest bid of the round counts (one per payer). It keeps the
``placed_at`` it first had while its price stays the same, even across rounds,
so restating a bid every request never loses its place in a tie. A bid is
*covered* when its channel's unspent deposit pays the bid for one slot for one
round (``bid x capacity / slots x round_seconds / MiB``); the auction then
decides (:func:`requester.protocol.auction.clear`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

from requester.protocol.auction import Bid, Clearing, clear

MIB = 1 << 20
MAX_ADDRESSES = 100_000
"""Addresses remembered per round as having named a payer's channel (a bound, not a limit
anyone honest reaches)."""


@dataclass
class BidBook:
    """This round's bids, the last clearing, and the round count."""

    capacity: int
    slots: int
    free_slots: int
    reserve: int
    round_seconds: float
    round: int = 0
    clearing: Clearing = field(init=False)
    _bids: dict[str, Bid] = field(default_factory=dict)
    _placed: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per payer: the price of its standing bid and when it was first placed."""
    _payers: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Address -> the payer and channel a request from it named this round."""
    _seq: int = 0

    def __post_init__(self) -> None:
        self.clearing = clear((), self.slots, self.free_slots, self.reserve)

    def coverage(self, price_per_mib: int) -> int:
        """What a channel must hold unspent for a bid of ``price_per_mib`` to be covered."""
        per_round = Fraction(self.capacity, self.slots) * Fraction(self.round_seconds)
        return math.ceil(price_per_mib * per_round / MIB)

    def named(self, address: str, payer_channel: tuple[str, bytes]) -> None:
        """A request from ``address`` named a channel of a payer this round."""
        if len(self._payers) < MAX_ADDRESSES or address in self._payers:
            self._payers[address] = payer_channel

    def payer_at(self, address: str) -> tuple[str, bytes] | None:
        """The payer and channel a request from ``address`` named this round, if any."""
        return self._payers.get(address)

    def place(self, payer: str, price_per_mib: int, unspent: int) -> Bid:
        """Record ``payer``'s bid for this round (its latest counts)."""
        price, placed_at = self._placed.get(payer, (-1, 0))
        if price != price_per_mib:
            self._seq += 1
            price, placed_at = price_per_mib, self._seq
            self._placed[payer] = (price, placed_at)
        covered = unspent >= self.coverage(price_per_mib)
        bid = self._bids[payer] = Bid(payer, price_per_mib, placed_at, covered)
        return bid

    def close_round(self) -> Clearing:
        """Clear this round's bids; the winners hold a paid slot for the next round."""
        self.clearing = clear(self._bids.values(), self.slots, self.free_slots, self.reserve)
        self._placed = {p: self._placed[p] for p in self._bids}  # a payer that stopped bidding
        self._bids, self._payers = {}, {}
        self.round += 1
        return self.clearing
