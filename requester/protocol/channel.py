"""Payment channel state machines for both ends, with ``now`` passed in.

Each machine takes events (pay, a voucher arrived, time passed) and returns
actions for its caller to perform, in order: typically
``[PersistVoucher(v), SendVoucher(v)]`` on the payer side and
``[PersistVoucher(v), Serve(cost)]`` on the payee side. Performing them in order
is what makes payment state durable before the bytes it pays for move.
Refusals are :mod:`requester.protocol.errors` exceptions with an HTTP status.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from requester.protocol.assets import Asset, format_amount
from requester.protocol.errors import (
    ChannelClosed,
    ChannelExpired,
    DepositExceeded,
    MalformedMessage,
    StaleVoucher,
    Underpaid,
    WrongBinding,
)
from requester.protocol.identity import PayerKey, TronAddress
from requester.protocol.payment_domain import PaymentDomain
from requester.protocol.voucher import Voucher

SETTLE_MARGIN = 600
"""Seconds before expiry at which vouchers stop: the payee needs them to redeem."""


@dataclass(frozen=True, slots=True)
class ChannelTerms:
    """What the ledger recorded when the channel was opened (or last topped up)."""

    domain: PaymentDomain
    channel_id: bytes
    payer: TronAddress
    payee: TronAddress
    asset: Asset
    deposit: int
    expires_at: int

    def usable(self, now: int) -> bool:
        return now < self.expires_at - SETTLE_MARGIN


class ChannelStatus(StrEnum):
    OPEN = "open"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class PersistVoucher:
    """Write this voucher durably before doing anything that follows it."""

    voucher: Voucher


@dataclass(frozen=True, slots=True)
class SendVoucher:
    voucher: Voucher


@dataclass(frozen=True, slots=True)
class Serve:
    """The payee may now send what costs ``cost``."""

    cost: int


@dataclass(frozen=True, slots=True)
class Redeem:
    """Present this voucher to the ledger."""

    voucher: Voucher


@dataclass(frozen=True, slots=True)
class Reclaim:
    """Ask the ledger to return the unspent deposit to the payer."""

    channel_id: bytes


Action = PersistVoucher | SendVoucher | Serve | Redeem | Reclaim


def _check_top_up(terms: ChannelTerms, deposit: int, expires_at: int) -> ChannelTerms:
    if deposit < terms.deposit or expires_at < terms.expires_at:
        raise MalformedMessage("a top-up can only raise the deposit and extend the expiry")
    return ChannelTerms(
        terms.domain, terms.channel_id, terms.payer, terms.payee, terms.asset, deposit, expires_at
    )


class PayerChannel:
    """The payer's side: signs ever-larger vouchers, never beyond the deposit."""

    def __init__(self, terms: ChannelTerms, key: PayerKey, issued: int = 0) -> None:
        if key.address != terms.payer:
            raise WrongBinding("this key is not the channel's payer")
        if not 0 <= issued <= terms.deposit:
            raise MalformedMessage("issued amount outside the deposit")
        self.terms = terms
        self._key = key
        self.issued = issued
        """Highest amount signed so far; restored from storage after a restart."""
        self.status = ChannelStatus.OPEN
        self.reclaimed = False

    @property
    def remaining(self) -> int:
        return self.terms.deposit - self.issued

    def catch_up(self, terms: ChannelTerms, issued: int) -> None:
        """Take what another process of this wallet did on the channel (a top-up, vouchers
        up to ``issued``), read from the shared store, so the next voucher is above it."""
        if terms.deposit > self.terms.deposit or terms.expires_at > self.terms.expires_at:
            self.top_up(max(terms.deposit, self.terms.deposit),
                        max(terms.expires_at, self.terms.expires_at))  # fmt: skip
        if not 0 <= issued <= self.terms.deposit:
            raise MalformedMessage("issued amount outside the deposit")
        self.issued = max(self.issued, issued)

    def pay(self, cost: int, now: int) -> list[Action]:
        """Sign a voucher raising the total by ``cost``: persist it, then send it."""
        if cost <= 0:
            raise MalformedMessage("a payment must be positive")
        if self.status is ChannelStatus.CLOSED:
            raise ChannelClosed("channel is closed; open a new one")
        if not self.terms.usable(now):
            raise ChannelExpired("channel is too close to expiry to pay on; open a new one")
        if cost > self.remaining:
            raise DepositExceeded(
                f"paying {format_amount(cost, self.terms.asset)} needs "
                f"{format_amount(cost - self.remaining, self.terms.asset)} more deposit"
            )
        self.issued += cost
        voucher = Voucher.create(
            self._key,
            domain=self.terms.domain,
            channel_id=self.terms.channel_id,
            payee=self.terms.payee,
            asset=self.terms.asset,
            amount=self.issued,
        )
        return [PersistVoucher(voucher), SendVoucher(voucher)]

    def top_up(self, deposit: int, expires_at: int) -> None:
        self.terms = _check_top_up(self.terms, deposit, expires_at)

    def close(self) -> None:
        """Stop paying on this channel; the deposit left comes back by reclaim after expiry."""
        self.status = ChannelStatus.CLOSED

    def tick(self, now: int) -> list[Action]:
        """After expiry, once: reclaim what the payee did not redeem."""
        if now >= self.terms.expires_at and not self.reclaimed:
            self.reclaimed = True
            self.status = ChannelStatus.CLOSED
            return [Reclaim(self.terms.channel_id)]
        return []


class PayeeChannel:
    """The payee's side: decides, voucher by voucher, whether to serve."""

    def __init__(self, terms: ChannelTerms, best: Voucher | None = None, consumed: int = 0) -> None:
        self.terms = terms
        self.best = best
        """Highest voucher accepted; the one to redeem."""
        self.consumed = consumed
        """Total cost of what was served on this channel."""
        self.redeemed = 0
        self.status = ChannelStatus.OPEN
        if not 0 <= consumed <= self.paid:
            raise MalformedMessage(f"consumed {consumed} is outside 0..{self.paid} (what was paid)")

    @property
    def paid(self) -> int:
        return self.best.amount if self.best else 0

    @property
    def credit(self) -> int:
        """Paid in advance and not yet served."""
        return self.paid - self.consumed

    def charge(self, cost: int, voucher: bytes | Voucher | None, now: int) -> list[Action]:
        """Decide whether what costs ``cost`` may be served, given an optional new voucher.

        ``voucher`` is the raw encoded voucher from the request, if any, or one
        the caller already decoded (:meth:`Voucher.decode` checked its
        signature; decoding twice would recover the signer twice). On success
        the actions are ``[PersistVoucher(v), Serve(cost)]`` (or just
        ``[Serve(cost)]`` when prepaid credit covers it).
        """
        if cost < 0:
            raise MalformedMessage("a cost cannot be negative")
        if self.status is ChannelStatus.CLOSED:
            raise ChannelClosed("channel is closed")
        if not self.terms.usable(now):
            raise ChannelExpired("channel is expired or about to; open a new one")
        if voucher is None:
            if cost > self.credit:
                raise Underpaid(f"{self._owed(cost)} owed; send a voucher (Atlas-Voucher)")
            self.consumed += cost
            return [Serve(cost)]
        decoded = voucher if isinstance(voucher, Voucher) else Voucher.decode(voucher)
        if decoded.amount <= self.paid and self._binds(decoded) and cost <= self.credit:
            # Overtaken, not stale: concurrent requests carry vouchers that can arrive out
            # of order, and the later, larger one already paid for this.
            self.consumed += cost
            return [Serve(cost)]
        accepted = self._check(decoded, cost)
        self.best = accepted
        self.consumed += cost
        return [PersistVoucher(accepted), Serve(cost)]

    def top_up(self, deposit: int, expires_at: int) -> None:
        self.terms = _check_top_up(self.terms, deposit, expires_at)

    def refund(self, amount: int) -> None:
        """Give back as credit ``amount`` charged for something not served (or served for
        less): a payee may charge a price up front and keep only what it sends."""
        if not 0 <= amount <= self.consumed:
            raise MalformedMessage(f"refund {amount} is outside 0..{self.consumed} (consumed)")
        self.consumed -= amount

    def redeem_due(self, now: int) -> list[Action]:
        """Near expiry, redeem the best voucher if it holds more than was redeemed."""
        if now >= self.terms.expires_at - 2 * SETTLE_MARGIN and self.paid > self.redeemed:
            assert self.best is not None
            return [Redeem(self.best)]
        return []

    def mark_redeemed(self, amount: int) -> None:
        if not self.redeemed <= amount <= self.paid:
            raise MalformedMessage("redeemed amount must grow and stay within what was paid")
        self.redeemed = amount

    def close(self) -> list[Action]:
        """Stop serving and redeem what is owed."""
        self.status = ChannelStatus.CLOSED
        return [Redeem(self.best)] if self.best and self.paid > self.redeemed else []

    def _binds(self, v: Voucher) -> bool:
        t = self.terms
        return (v.domain, v.channel_id, v.payer, v.payee, v.asset) == (
            t.domain, t.channel_id, t.payer, t.payee, t.asset,
        )  # fmt: skip

    def _check(self, v: Voucher, cost: int) -> Voucher:
        t = self.terms
        for what, got, want in (
            ("chain", v.domain, t.domain),
            ("channel", v.channel_id, t.channel_id),
            ("payer", v.payer, t.payer),
            ("payee", v.payee, t.payee),
            ("asset", v.asset, t.asset),
        ):
            if got != want:
                raise WrongBinding(f"voucher is for another {what}")
        if v.amount <= self.paid:
            raise StaleVoucher(
                f"voucher amount {format_amount(v.amount, t.asset)} is not above the last "
                f"accepted {format_amount(self.paid, t.asset)}"
            )
        if v.amount > t.deposit:
            raise DepositExceeded(
                f"voucher for {format_amount(v.amount, t.asset)} exceeds the deposit of "
                f"{format_amount(t.deposit, t.asset)}; top up the channel"
            )
        if v.amount - self.consumed < cost:
            raise Underpaid(f"voucher leaves {self._owed(cost, v.amount)} unpaid")
        return v

    def _owed(self, cost: int, paid: int | None = None) -> str:
        total = self.paid if paid is None else paid
        return format_amount(cost - (total - self.consumed), self.terms.asset)
