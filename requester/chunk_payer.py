"""What pays a provider for chunks: the :class:`Payer` protocol, a download's spend limit
(:class:`Budget`) and one provider's :class:`Account` (its quote, channel and credit).

Split from :mod:`requester.chunk_client`, which decides when to pay; ``atlas fetch``,
the proxy and an edge that replicates each give it a payer of their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from requester.channel_manager import NewChannelAllowance, SpendLimitReached
from requester.protocol import CreditSpend, Quote, TronAddress, Voucher, format_amount


@dataclass
class Account:
    """Paying one provider: its quote, the channel, and the credit left there."""

    quote: Quote
    channel_id: bytes
    credit: int = 0


class Payer(Protocol):
    """What pays a provider: a :class:`ChannelManager`, or one wrapped in a budget."""

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher: ...  # fmt: skip

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend: ...  # fmt: skip


@runtime_checkable
class RoomKeeper(Protocol):
    """A payer that can keep a channel's room for a market bid (a :class:`ChannelManager`,
    or a budget around one); others pay as before, the bid then possibly uncovered."""

    def keep_room(self, payee: TronAddress, amount: int) -> None: ...


class Budget:
    """Refuses any payment that would take the total over ``limit``; the refusal ends
    with ``hint`` (how to raise the limit)."""

    def __init__(self, payer: Payer, limit: int | None, hint: str = "") -> None:
        self._payer = payer
        self.limit = limit
        self.spent = 0
        self._hint = hint

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        if self.limit is not None and self.spent + cost > self.limit:
            raise SpendLimitReached(
                f"paying {format_amount(cost, quote.asset)} more would pass the spend limit of "
                f"{format_amount(self.limit, quote.asset)} "
                f"({format_amount(self.spent, quote.asset)} spent){self._hint}"
            )
        self.spent += cost
        try:
            return await self._payer.pay(quote, cost, now, allowance)
        except BaseException:
            self.spent -= cost
            raise

    def keep_room(self, payee: TronAddress, amount: int) -> None:
        """Locked in a channel, not spent: the limit does not count it."""
        if isinstance(self._payer, RoomKeeper):
            self._payer.keep_room(payee, amount)

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        """Spending credit signs nothing new over: the budget already counted it."""
        return self._payer.credit_spend(channel_id, content_id, index, now)
