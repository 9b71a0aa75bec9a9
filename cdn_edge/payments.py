"""The edge's side of its payment channels: decide, persist, then serve.

For each chunk the edge asks the channel's :class:`PayeeChannel` whether the
voucher (or prepaid credit) covers the price. Credit is spent only with a
spend signed by the channel's payer, and a channel's :class:`CreditGuard`
honours each spend (and each voucher that spends credit) once. Accepted
vouchers are written to SQLite (WAL, ``synchronous=FULL``) *before* the chunk
is sent, under a per-channel lock so vouchers reach the disk in the order they
were accepted; writes are group-committed (:mod:`cdn_edge.payment_rows`).
Channel terms come from the ledger the first time a channel is seen.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp

from cdn_edge.payment_rows import ChannelRecord, ChannelRows, base58
from requester.errors import ServiceRefusal
from requester.failpoints import reached
from requester.ledger_api import Ledger
from requester.ledger_client import LedgerError
from requester.protocol import (
    ChannelStatus,
    ChannelTerms,
    CreditGuard,
    CreditSpend,
    DepositExceeded,
    PayeeChannel,
    PaymentDomain,
    ProtocolError,
    StaleVoucher,
    TronAddress,
    Voucher,
    WrongBinding,
    asset_by_code,
    check_credit_spend,
    format_amount,
)
from requester.protocol.assets import ASSETS

CHANNEL_LOOKUP_TIMEOUT = aiohttp.ClientTimeout(total=5, sock_connect=3)
"""How long a voucher's channel look-up may wait for the ledger. A requester reads a chunk
answer for up to 30 s (``CHUNK_TIMEOUT``); an edge that waited as long on a stalled ledger
was dropped as unreachable, where a ``503 ledger_unavailable`` in 5 s is retried."""


class LedgerUnavailable(ServiceRefusal):
    status = 503
    code = "ledger_unavailable"


@dataclass(frozen=True)
class CreditClaim:
    """Paying from credit: the payer's signed spend and the chunk it is offered for."""

    spend: CreditSpend
    content_id: bytes
    index: int


class PaymentBook:
    """Channels this edge is paid on, in memory and on disk."""

    def __init__(
        self, path: Path, payee: TronAddress, domain: PaymentDomain, ledger: Ledger
    ) -> None:
        self.payee = payee
        self.domain = domain
        self._ledger = ledger
        self._rows = ChannelRows(path)
        self._channels: dict[bytes, PayeeChannel] = {}
        self._guards: dict[bytes, CreditGuard] = {}
        """Per channel in ``_channels``: the spends and vouchers that already spent credit."""
        self._locks: dict[bytes, _ChannelLock] = {}
        """Only for channels a request is using now: a flood of made-up ids leaves none."""
        self._rechecked: dict[bytes, int] = {}
        """The second each known channel's deposit was last read again for a bid."""

    async def open(self) -> None:
        await self._rows.open()

    async def close(self) -> None:
        await self._rows.close()

    async def charge(self, voucher: bytes | None, credit: CreditClaim | None, cost: int,
                     now: int) -> bytes:  # fmt: skip
        """Return the channel's id once ``cost`` is paid for and recorded; raise the refusal
        otherwise.

        Paid by ``voucher`` (raw bytes from the request), or else from the credit of the
        channel ``credit.spend`` names, if that spend is the payer's, fresh and unused.
        """
        # Decoded (and its signature checked) once, here: the channel id it names is only
        # trusted after that, and the channel takes the decoded voucher as is.
        decoded = Voucher.decode(voucher) if voucher is not None else None
        if decoded is not None:
            channel_id = decoded.channel_id
        elif credit is not None:
            channel_id = credit.spend.channel_id
        else:
            raise ProtocolError("no voucher and no credit spend")  # callers check first
        async with self._locked(channel_id):
            channel = await self._channel(channel_id)
            guard = self._guards[channel_id]
            _check_spend(channel, guard, decoded, credit, cost, now)
            try:
                actions = channel.charge(cost, decoded, now)
            except DepositExceeded:
                channel = await self._refresh_terms(channel_id)
                actions = channel.charge(cost, decoded, now)
            reached("edge.voucher_accepted")
            if decoded is not None:
                guard.record_voucher(decoded.amount)
            elif credit is not None:
                guard.record_spend(credit.spend, now)
            await self._save(channel)
            del actions  # PersistVoucher is done by _save above; Serve is the caller's send
        return channel_id

    async def refund(self, channel_id: bytes, amount: int) -> None:
        """Return ``amount`` of what :meth:`charge` took on ``channel_id`` to its credit, once
        recorded: it paid for something this edge did not send (or sent for less)."""
        async with self._locked(channel_id):
            channel = await self._channel(channel_id)
            channel.refund(amount)
            await self._save(channel)

    async def spend_credit(self, channel_id: bytes, cost: int, now: int) -> None:
        """Charge ``cost`` to ``channel_id``'s credit, once recorded: for a request whose own
        voucher :meth:`charge` recorded (at cost 0) before the request waited; presenting
        that voucher again would be refused as already used. Raises the channel's refusal
        (``Underpaid`` if other requests spent that credit meanwhile)."""
        async with self._locked(channel_id):
            channel = await self._channel(channel_id)
            channel.charge(cost, None, now)
            await self._save(channel)

    async def _save(self, channel: PayeeChannel) -> None:
        """Record ``channel``; on failure, forget it: its durable state is reloaded."""
        try:
            await self._rows.save(channel)
        except Exception:
            self._channels.pop(channel.terms.channel_id, None)
            self._guards.pop(channel.terms.channel_id, None)
            raise

    async def standing(self, channel_id: bytes, now: int, cover: int = 0) -> tuple[str, int]:
        """The payer of ``channel_id`` and its unspent deposit (deposit - paid so far, 0 once
        it can no longer pay): who bids with it and what covers the bid. Read from the
        ledger the first time, as a voucher's channel is (with the same refusals); a known
        channel is read without waiting for its lock (a charge may be writing).

        A known channel with less unspent than ``cover`` (what the bid needs) is read from
        the ledger again, at most once a second: its payer may have topped it up, and a
        top-up is otherwise seen only once a voucher passes the deposit known here, which
        an uncovered bid (served free, its vouchers kept as credit) may never send."""
        channel = self._channels.get(channel_id)
        if channel is None:
            async with self._locked(channel_id):
                channel = await self._channel(channel_id)
        elif cover > _unspent(channel, now) and self._rechecked.get(channel_id) != now:
            self._rechecked[channel_id] = now
            await self._recheck_deposit(channel)
        return base58(channel.terms.payer), _unspent(channel, now)

    async def _recheck_deposit(self, channel: PayeeChannel) -> None:
        """Take a larger deposit from the ledger (its expiry too, never shortened); a ledger
        that cannot answer leaves the channel as known."""
        try:
            terms = await self._terms_from_ledger(channel.terms.channel_id)
        except (LedgerUnavailable, ProtocolError):
            return
        t = channel.terms
        if terms.deposit > t.deposit:  # recorded with the channel's next charge
            channel.top_up(terms.deposit, max(terms.expires_at, t.expires_at))

    async def outstanding(self) -> list[PayeeChannel]:
        """Channels holding a voucher worth more than what was redeemed."""
        rows = await self._rows.rows()
        out = []
        for row in rows:
            channel = await self._channel(bytes.fromhex(row["channel_id"]))
            if channel.paid > channel.redeemed:
                out.append(channel)
        return out

    async def align_terms(self, channel: PayeeChannel, view: Mapping[str, Any]) -> None:
        """Take the ledger's deposit and expiry for ``channel``, recorded: a payer's
        ``requestClose`` brings the expiry forward (vouchers stop before the new one), a
        top-up raises both."""
        deposit, expires_at = int(view["deposit"]), int(view["expires_at"])
        async with self._locked(channel.terms.channel_id):
            t = channel.terms
            if (deposit, expires_at) == (t.deposit, t.expires_at):
                return
            channel.terms = replace(t, deposit=max(deposit, t.deposit), expires_at=expires_at)
            await self._rows.save(channel)

    async def mark_redeemed(self, channel: PayeeChannel, amount: int) -> None:
        channel.mark_redeemed(amount)
        await self._rows.save(channel)

    async def records(self) -> list[ChannelRecord]:
        return await self._rows.records()

    # -- internals ---------------------------------------------------------------------

    @asynccontextmanager
    async def _locked(self, channel_id: bytes) -> AsyncIterator[None]:
        """Hold ``channel_id``'s lock; the entry goes when its last holder or waiter leaves."""
        entry = self._locks.get(channel_id)
        if entry is None:
            entry = self._locks[channel_id] = _ChannelLock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[channel_id]

    async def _channel(self, channel_id: bytes) -> PayeeChannel:
        channel = self._channels.get(channel_id)
        if channel is not None:
            return channel
        row = await self._rows.row(channel_id)
        if row is None:
            channel = PayeeChannel(await self._terms_from_ledger(channel_id))
            await self._rows.save(channel)
        else:
            channel = self._from_row(row)
        self._channels[channel_id] = channel
        self._guards[channel_id] = CreditGuard(channel.paid)
        return channel

    async def _refresh_terms(self, channel_id: bytes) -> PayeeChannel:
        channel = self._channels[channel_id]
        terms = await self._terms_from_ledger(channel_id)
        if terms.deposit > channel.terms.deposit or terms.expires_at > channel.terms.expires_at:
            channel.top_up(terms.deposit, terms.expires_at)
        return channel

    async def _terms_from_ledger(self, channel_id: bytes) -> ChannelTerms:
        try:
            view = await self._ledger.channel(channel_id, CHANNEL_LOOKUP_TIMEOUT)
        except LedgerError as exc:
            if exc.status == 404:
                raise WrongBinding(
                    f"channel {channel_id.hex()} does not exist on the ledger"
                ) from exc
            raise LedgerUnavailable(
                f"cannot check the channel on the ledger: {exc.detail}"
            ) from exc
        if view["payee"] != str(self.payee):
            raise WrongBinding("channel pays another payee, not this edge")
        if view["status"] != "open":
            raise WrongBinding("channel is no longer open on the ledger")
        asset = next((a for a in ASSETS.values() if a.uri == view["asset"]), None)
        if asset is None:
            raise WrongBinding(f"channel asset {view['asset']} is not accepted")
        return ChannelTerms(
            self.domain, channel_id, TronAddress.parse(view["payer"]), self.payee, asset,
            int(view["deposit"]), int(view["expires_at"]),
        )  # fmt: skip

    def _from_row(self, row: sqlite3.Row) -> PayeeChannel:
        terms = ChannelTerms(
            self.domain, bytes.fromhex(row["channel_id"]), TronAddress.parse(row["payer"]),
            self.payee, asset_by_code(row["asset"]), int(row["deposit"]), row["expires_at"],
        )  # fmt: skip
        best = Voucher.decode(row["best"]) if row["best"] else None
        channel = PayeeChannel(terms, best, int(row["consumed"]))
        channel.redeemed = int(row["redeemed"])
        return channel


class _ChannelLock:
    """A channel's lock and how many requests hold it or wait for it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


def _check_spend(channel: PayeeChannel, guard: CreditGuard, voucher: Voucher | None,
                 credit: CreditClaim | None, cost: int, now: int) -> None:  # fmt: skip
    """Refuse a credit spend that is not the payer's, fresh and unused, and a voucher that
    would spend credit a second time (one no larger than what was already paid)."""
    t = channel.terms
    if voucher is None:
        assert credit is not None
        check_credit_spend(credit.spend, t, credit.content_id, credit.index, now)
        guard.check_spend(credit.spend, now)
        return
    same = (voucher.domain, voucher.payer, voucher.payee, voucher.asset)
    spends_credit = voucher.amount <= channel.paid and cost <= channel.credit
    if (
        spends_credit
        and same == (t.domain, t.payer, t.payee, t.asset)
        and guard.voucher_used(voucher.amount)
    ):
        raise StaleVoucher(
            f"voucher amount {format_amount(voucher.amount, t.asset)} is not above the last "
            f"accepted {format_amount(channel.paid, t.asset)}, and it was already used"
        )


def _unspent(channel: PayeeChannel, now: int) -> int:
    """Deposit - paid so far; 0 once the channel can no longer pay (closed, near expiry)."""
    paying = channel.terms.usable(now) and channel.status is ChannelStatus.OPEN
    return channel.terms.deposit - channel.paid if paying else 0
