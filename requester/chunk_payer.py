"""What pays a provider for chunks: the :class:`Payer` protocol, a download's spend limit
(:class:`Budget`) and one provider's :class:`Account` (its quote, channel and credit).

Split from :mod:`requester.chunk_client`, which decides when to pay; ``atlas fetch``,
the proxy and an edge that replicates each give it a payer of their own.
"""

from __future__ import annotations

from collections.abc import Iterable
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


@runtime_checkable
class CreditKeeper(Protocol):
    """A payer whose wallet keeps the credit a process leaves with each payee for the next
    process (a :class:`ChannelManager`, or a wrapper around one); with any other payer
    credit lives as long as the process."""

    def take_credit(self, channel_id: bytes) -> int: ...

    def leave_credit(self, channel_id: bytes, amount: int) -> None: ...


def take_credit(payer: object, channel_id: bytes) -> int:
    """What the wallet holds as credit on ``channel_id``'s payee, now this process's."""
    return payer.take_credit(channel_id) if isinstance(payer, CreditKeeper) else 0


def give_credit(payer: object, channel_id: bytes, amount: int) -> None:
    """Hand ``amount`` of credit on ``channel_id``'s payee back to the wallet, if it keeps it."""
    if isinstance(payer, CreditKeeper) and amount > 0:
        payer.leave_credit(channel_id, amount)


def leave_credit(payer: object, accounts: Iterable[Account]) -> None:
    """Give the credit ``accounts`` hold back to the wallet (and zero it here), so that a
    later process pays with it rather than paying again."""
    for account in accounts:
        credit, account.credit = account.credit, 0
        give_credit(payer, account.channel_id, credit)


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

    def take_credit(self, channel_id: bytes) -> int:
        """Credit an earlier process paid for: the budget does not count it again."""
        return take_credit(self._payer, channel_id)

    def leave_credit(self, channel_id: bytes, amount: int) -> None:
        give_credit(self._payer, channel_id, amount)
