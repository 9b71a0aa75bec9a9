"""Paying providers: one channel per payee, opened on demand, vouchers made durable.

A channel is opened the first time a payee must be paid (deposit and length
from the :class:`DepositPolicy`), reused while it has room, topped up when it
runs out with at least half its life left, and replaced when it nears expiry.
A caller paying a payee it does not trust passes a :class:`NewChannelAllowance`:
then a channel is opened (or topped up) only while the allowance lasts, with
its small deposit. Every voucher's amount is recorded in the
:class:`PayerStore` before the voucher leaves this process, and so is every
open and top-up: what a crash left unanswered is settled with the ledger
(``requester/recorded_calls.py``) before the first payment, and before any
new channel is opened or topped up.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from requester.channel_policy import DepositPolicy, NewChannelAllowance
from requester.errors import SdkError
from requester.failpoints import reached
from requester.ledger_api import Ledger
from requester.payer_store import IssuedElsewhere, PayerStore
from requester.protocol import (
    BTT_LOCAL,
    ChannelStatus,
    ChannelTerms,
    CreditSpend,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    PaymentRequired,
    PersistVoucher,
    Quote,
    TronAddress,
    Voucher,
    WrongBinding,
    format_amount,
)
from requester.recorded_calls import RecordedCalls, Settled, view_terms

__all__ = [
    "SHARED_STORE_RETRIES", "ChannelManager", "DepositPolicy", "InsufficientFunds",
    "NewChannelAllowance", "NewChannelRefused", "SpendLimitReached",
]  # fmt: skip

SHARED_STORE_RETRIES = 8
"""Signing rounds lost to other processes of the wallet before a payment gives up."""
DEFAULT_POLICY = DepositPolicy()


class SpendLimitReached(PaymentRequired):
    """Paying on would pass the caller's own spending limit (a payment the requester refuses)."""

    code = "spend_limit"
    title = "Spending limit reached"


class InsufficientFunds(SpendLimitReached):
    """The wallet holds too little to open (or top up) the channel a payment needs: nothing
    was sent to the ledger. A download that meets it goes on through free lanes."""


class NewChannelRefused(SdkError):
    """Paying would open (or top up) a channel the :class:`NewChannelAllowance` has no room for."""

    status = 402
    code = "new_channel_refused"


class ChannelManager:
    def __init__(
        self,
        key: PayerKey,
        store: PayerStore,
        ledger: Ledger,
        policy: DepositPolicy = DEFAULT_POLICY,
    ) -> None:
        self._key = key
        self._store = store
        self._ledger = ledger
        self._policy = policy
        self._open: dict[bytes, PayerChannel] = {}
        self._locks: dict[TronAddress, tuple[asyncio.Lock, int]] = {}
        """Per payee being paid now (lock, holders and waiters): gone when nobody uses it."""
        self._calls = RecordedCalls(store, ledger)
        self._settling = asyncio.Lock()
        self._settle_due = True
        """Nothing has been settled yet: the first payment settles first."""
        self._domain: PaymentDomain | None = None
        """The ledger's, once read: channels of another ledger in the store are not paid on."""
        self._room: dict[TronAddress, int] = {}
        """What a channel to a payee keeps unspent after each payment (a market bid's cover)."""
        self._seen: dict[TronAddress, int] = {}
        """Per payee, the store's ``data_version`` when its channels were last read here:
        while it is unchanged no other process wrote, and memory is what the store holds."""

        for stored in store.channels(status="open"):
            if stored.terms.payer == key.address:
                self._open[stored.terms.channel_id] = PayerChannel(stored.terms, key, stored.issued)

    def keep_room(self, payee: TronAddress, amount: int) -> None:
        """Keep ``amount`` unspent on the channel to ``payee`` after each payment there (a
        market edge counts a bid only while the channel covers it for a round): a channel
        with less is topped up by the deposit plus ``amount``. A wallet too poor for it
        pays as before, uncovered. Not for payees on probation (their ``allowance``)."""
        self._room[payee] = amount

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        """A voucher raising what ``quote.payee`` is owed by ``cost``; recorded before return.

        With ``allowance``, a channel with no room is topped up or opened only if the
        allowance has one left (:class:`NewChannelRefused` otherwise), with its deposit.
        """
        domain = self._domain = await self._ledger.domain()
        if quote.domain != domain or quote.asset != await self._ledger.asset():
            raise WrongBinding("provider wants to be paid on another ledger or asset")
        if self._settle_due:
            await self.settle_pending(now, first=True)
        async with self._payee_lock(quote.payee):
            for attempt in range(SHARED_STORE_RETRIES):
                self._catch_up(quote.payee)
                channel = await self._room_for(quote.payee, cost, now, allowance)
                actions = channel.pay(cost, now)
                persist = actions[0]
                assert isinstance(persist, PersistVoucher)
                try:
                    self._store.record_issued(channel.terms.channel_id, persist.voucher.amount)
                except IssuedElsewhere:
                    self._seen.pop(quote.payee, None)  # read the store again, whatever it says
                    if attempt + 1 == SHARED_STORE_RETRIES:
                        raise
                    continue  # this voucher never leaves; sign again above the other's
                return persist.voucher
        raise AssertionError("unreachable")

    async def _room_for(self, payee: TronAddress, cost: int, now: int,
                        allowance: NewChannelAllowance | None) -> PayerChannel:  # fmt: skip
        """A channel with room for ``cost``, and for the room kept there if the wallet can."""
        room = 0 if allowance is not None else self._room.get(payee, 0)
        if room:
            try:
                found = self._usable(payee, cost + room, now)
                return found or await self._make_room(payee, cost, now, allowance, room)
            except InsufficientFunds:
                pass  # uncovered, as before: the bid is served by the free lane
        return self._usable(payee, cost, now) or await self._make_room(payee, cost, now, allowance)

    def _catch_up(self, payee: TronAddress) -> None:
        """Another process of this wallet (the proxy beside ``atlas fetch``) may have paid
        on, topped up or opened channels to ``payee``: continue from the shared store.

        Read only if another connection committed since this payee's last read (SQLite's
        ``data_version``): this manager's own writes are in memory already, and reading
        and decoding every channel on every voucher cost ~80 µs a chunk. One store object
        serves one manager (a second manager on the same object would go unseen here)."""
        version = self._store.data_version()
        if self._seen.get(payee) == version:
            return
        for stored in self._store.channels(payee=payee, status="open"):
            channel = self._open.get(stored.terms.channel_id)
            if channel is not None:
                channel.catch_up(stored.terms, stored.issued)
            elif stored.terms.payer == self._key.address:  # opened there since we started
                self._open[stored.terms.channel_id] = PayerChannel(stored.terms, self._key,
                                                                   stored.issued)  # fmt: skip
        self._seen[payee] = version

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        """Our signed order to pay for one chunk from the credit left on ``channel_id``."""
        channel = self._open.get(channel_id)
        if channel is None:
            raise WrongBinding(f"no open channel {channel_id.hex()} in this wallet's state")
        return CreditSpend.create(
            self._key, domain=channel.terms.domain, channel_id=channel_id, content_id=content_id,
            index=index, issued_at=now, nonce=secrets.token_bytes(16),
        )  # fmt: skip

    def take_credit(self, channel_id: bytes) -> int:
        """The credit an earlier process (or this one) left on ``channel_id``'s payee, to be
        spent here: a payment that starts using a channel takes it once."""
        return self._store.take_credit(channel_id)

    def leave_credit(self, channel_id: bytes, amount: int) -> None:
        """Hand credit this process holds on ``channel_id``'s payee back to the wallet, for
        the next process that pays there (``atlas fetch`` ends; the proxy stops)."""
        self._store.leave_credit(channel_id, amount, int(time.time()))

    def channels(self) -> list[PayerChannel]:
        return list(self._open.values())

    async def settle_pending(self, now: int, *, first: bool = False) -> list[Settled]:
        """Settle the opens and top-ups a crash left unanswered; the channels they leave are
        spent from here on. With ``first``, only if nothing was settled yet."""
        async with self._settling:
            if first and not self._settle_due:
                return []
            self._settle_due = False
            done = await self._calls.settle(now)
            self._seen.clear()  # settling wrote channels through this store's own connection
        settled = {s.terms.channel_id for s in done if s.terms is not None}
        for stored in self._store.channels(status="open") if settled else []:
            cid = stored.terms.channel_id
            if cid not in settled or stored.terms.payer != self._key.address:
                continue
            if cid in self._open:
                _raise(self._open[cid], stored.terms)
            else:
                self._open[cid] = PayerChannel(stored.terms, self._key, stored.issued)
        return done

    def _usable(self, payee: TronAddress, cost: int, now: int) -> PayerChannel | None:
        for channel in self._open.values():
            t = channel.terms
            if t.payee == payee and t.usable(now) and channel.remaining >= cost and self._ours(t):
                return channel
        return None

    def _ours(self, terms: ChannelTerms) -> bool:
        """Whether a channel is on this manager's ledger (a data dir that ran on the embedded
        ledger and now runs on TRON keeps the embedded ledger's channels in its store)."""
        return self._domain is None or terms.domain == self._domain

    async def _make_room(self, payee: TronAddress, cost: int, now: int,
                         allowance: NewChannelAllowance | None,
                         room: int = 0) -> PayerChannel:  # fmt: skip
        """A channel to ``payee`` with room for ``cost`` (and ``room`` more): one a crash left
        unrecorded, an open one topped up if it has half its life left (fewer channels to
        reclaim later), else a new one."""
        await self.settle_pending(now)
        found = self._usable(payee, cost + room, now)
        if found is not None:
            return found
        if allowance is not None:
            if allowance.channels <= 0:
                raise NewChannelRefused(
                    f"paying {payee} would lock more funds with a provider that has not "
                    "delivered yet, and this download's allowance for such channels is used up"
                )
            allowance.channels -= 1
        amount = max(self._policy.deposit if allowance is None else allowance.deposit, cost) + room
        try:
            for channel in self._open.values():
                t = channel.terms
                lasts = t.expires_at - now >= self._policy.duration // 2
                open_here = channel.status is ChannelStatus.OPEN and self._ours(t)
                if t.payee == payee and lasts and open_here:
                    await self._check_balance(amount, "topping up a channel")
                    return await self.top_up(t.channel_id, amount, 0, now)
            return await self._open_channel(payee, amount, now)
        except BaseException:
            if allowance is not None:
                allowance.channels += 1
            raise

    @asynccontextmanager
    async def _payee_lock(self, payee: TronAddress) -> AsyncIterator[None]:
        lock, users = self._locks.get(payee, (asyncio.Lock(), 0))
        self._locks[payee] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[payee]
            if users > 1:
                self._locks[payee] = (lock, users - 1)
            else:
                del self._locks[payee]

    async def top_up(self, channel_id: bytes, amount: int, extend: int, now: int) -> PayerChannel:
        """Add ``amount`` to a channel's deposit and push its expiry ``extend`` s past now."""
        channel = self._open.get(channel_id)
        if channel is None:
            raise WrongBinding(f"no open channel {channel_id.hex()} in this wallet's state")
        expires_at = max(channel.terms.expires_at, now + extend)
        pending, view = await self._calls.send(
            channel.terms.payee, now,
            lambda record: self._ledger.top_up(self._key, channel_id, amount, expires_at,
                                               record=record),
        )  # fmt: skip
        reached("payer.topup_answered")
        _raise(channel, view_terms(view, pending.domain, channel_id))
        self._store.update_terms(channel.terms, settles=pending.op_hash)
        return channel

    async def open_channel(self, payee: TronAddress, deposit: int, now: int,
                           duration: int | None = None) -> PayerChannel:  # fmt: skip
        """Open a channel to ``payee`` now, rather than on the first payment."""
        await self.settle_pending(now)
        async with self._payee_lock(payee):
            return await self._open_channel(payee, deposit, now, duration)

    async def _open_channel(self, payee: TronAddress, deposit: int, now: int,
                            duration: int | None = None) -> PayerChannel:  # fmt: skip
        expires_at = now + (self._policy.duration if duration is None else duration)
        await self._check_balance(deposit, "opening a channel")
        pending, view = await self._calls.send(
            payee, now,
            lambda record: self._ledger.open_channel(self._key, payee, deposit, expires_at,
                                                     record=record),
        )  # fmt: skip
        reached("payer.open_answered")
        terms = view_terms(view, pending.domain, pending.channel_id)
        self._store.add(self._ledger.url, terms, now, settles=pending.op_hash)
        channel = PayerChannel(terms, self._key)
        self._open[terms.channel_id] = channel
        return channel

    async def _check_balance(self, amount: int, doing: str) -> None:
        balance = await self._ledger.balance(self._key.address)
        if balance < amount:
            raise InsufficientFunds(
                f"wallet balance is {format_amount(balance, BTT_LOCAL)}; {doing} needs "
                f"{format_amount(amount, BTT_LOCAL)} "
                f"({format_amount(amount - balance, BTT_LOCAL)} missing)"
            )


def _raise(channel: PayerChannel, terms: ChannelTerms) -> None:
    """Raise ``channel`` to the deposit and expiry the ledger reported, never lower."""
    t = channel.terms
    channel.top_up(max(t.deposit, terms.deposit), max(t.expires_at, terms.expires_at))
