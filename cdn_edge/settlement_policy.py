"""Which channels a settlement round redeems, and why: pure, given the facts and ``now``.

A redeem costs a fee on TRON (energy burned from the edge's TRX) and nothing on
the embedded ledger. The rules, per channel, in order:

1. the ledger already holds the best voucher (a redeem a crash left unanswered):
   redeem, which follows the journaled transaction or is refused
   ``already_redeemed`` without spending anything, and record it (``applied``);
2. a channel the ledger no longer holds, or one past its expiry, cannot be
   redeemed (``closed``, ``expired``);
3. a redeem that costs nothing (the embedded ledger, or ``--btt-per-trx 0``)
   keeps the schedule of one redeem per channel: near expiry (``expiring``), or
   when the edge stops (``stopping``); before that, ``not_yet``;
4. with a fee: a round redeems what brings at least ``ratio`` times the fee
   (``worth_it``); near expiry or on stop, what brings more than the fee
   (``expiring``, ``stopping``); a redeem that would cost more than it brings is
   never sent (``below_fee``), and one under the ratio waits (``below_ratio``).

"Near expiry" is ``now >= expires_at - margin``, with ``expires_at`` as the
ledger says it this round: a payer's ``requestClose`` brings it forward.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from fractions import Fraction

from requester.protocol import BTT_LOCAL, SETTLE_MARGIN

SUN_PER_TRX = 10**6
NEAR_EXPIRY = 2 * SETTLE_MARGIN
"""Seconds before expiry from which a channel is redeemed whatever the ratio says (vouchers
stop at ``SETTLE_MARGIN``: the rounds in between have the last voucher to redeem)."""


class Why(StrEnum):
    APPLIED = "applied"
    WORTH_IT = "worth_it"
    EXPIRING = "expiring"
    STOPPING = "stopping"
    NOT_YET = "not_yet"
    BELOW_RATIO = "below_ratio"
    BELOW_FEE = "below_fee"
    EXPIRED = "expired"
    CLOSED = "closed"
    NOTHING = "nothing"


REDEEMING = frozenset({Why.APPLIED, Why.WORTH_IT, Why.EXPIRING, Why.STOPPING})


@dataclass(frozen=True)
class ChannelFacts:
    """One channel as the round sees it: the edge's books, and the ledger's view read now
    (``ledger_redeemed`` None: the ledger could not be read, the books' terms stand)."""

    channel_id: bytes
    paid: int
    """The best voucher's amount."""
    redeemed: int
    """What the edge's books say was redeemed."""
    expires_at: int
    ledger_redeemed: int | None = None
    open: bool = True
    asset_one: int = BTT_LOCAL.one
    """Base units of one whole unit of the channel's asset (10**18 for BTT)."""


@dataclass(frozen=True)
class Economics:
    """What a redeem costs and how much it must bring: ``fee_sun`` per redeem (0: free),
    ``units_per_trx`` the operator's BTT-per-TRX rate in BTT base units (0: fees count as
    free), ``ratio`` the multiple of the fee a round waits for."""

    fee_sun: int
    units_per_trx: int
    ratio: Fraction
    margin: int = NEAR_EXPIRY

    def fee(self, asset_one: int = BTT_LOCAL.one) -> int:
        """The fee in base units of an asset with ``asset_one`` units per whole, rounded up."""
        num = self.fee_sun * self.units_per_trx * asset_one
        return -(-num // (SUN_PER_TRX * BTT_LOCAL.one))


@dataclass(frozen=True)
class Decision:
    channel_id: bytes
    why: Why
    value: int
    """What the redeem would add to what the ledger credited."""
    fee: int

    @property
    def redeem(self) -> bool:
        return self.why in REDEEMING


def decide(ch: ChannelFacts, now: int, econ: Economics, *, stopping: bool) -> Decision:
    """Whether ``ch`` is redeemed now, and why (the module's rules)."""
    fee = econ.fee(ch.asset_one)
    value = ch.paid - max(ch.redeemed, ch.ledger_redeemed or 0)
    return Decision(ch.channel_id, _why(ch, now, econ, fee, value, stopping), value, fee)


def _why(ch: ChannelFacts, now: int, econ: Economics, fee: int, value: int,
         stopping: bool) -> Why:  # fmt: skip
    if ch.ledger_redeemed is not None and ch.paid > ch.redeemed and ch.ledger_redeemed >= ch.paid:
        return Why.APPLIED
    if not ch.open:
        return Why.CLOSED
    if now >= ch.expires_at:
        return Why.EXPIRED
    if value <= 0:
        return Why.NOTHING
    return _by_value(value, fee, econ.ratio, stopping, now >= ch.expires_at - econ.margin)


def _by_value(value: int, fee: int, ratio: Fraction, stopping: bool, near: bool) -> Why:
    """Rules 3 and 4: a channel the ledger can still redeem, worth ``value`` more."""
    if fee == 0:
        return Why.STOPPING if stopping else Why.EXPIRING if near else Why.NOT_YET
    if value >= ratio * fee:
        return Why.WORTH_IT
    if not (stopping or near):
        return Why.BELOW_RATIO
    if value <= fee:
        return Why.BELOW_FEE
    return Why.STOPPING if stopping else Why.EXPIRING


def decide_all(
    channels: Iterable[ChannelFacts], now: int, econ: Economics, *, stopping: bool
) -> list[Decision]:
    return [decide(ch, now, econ, stopping=stopping) for ch in channels]
