"""Paying providers for chunks: what to pay ahead, what a 402 asks, what stays credit.

Split from :mod:`requester.chunk_client`, which asks providers for chunks and reads their
answers; this decides the payment each request carries (a voucher for the chunk's
full-size price less the credit left there, a signed credit spend when that credit
covers it, a bid on a market edge) and keeps each provider's account: its quote, its
channel and the credit the client believes it holds there. What a request paid ahead and
was not charged for stays credit, whatever became of the request (served for less,
refused, unreachable, given up): the edge records a voucher before it waits, and the
next voucher, which counts every one signed before, brings any it never received.
"""

from __future__ import annotations

import time

from requester.bidding import BID_HEADER, Bidding
from requester.channel_manager import InsufficientFunds, NewChannelRefused
from requester.chunk_checks import check_quote
from requester.chunk_faults import PaymentRefused, ProviderFault, wants_payment
from requester.chunk_payer import Account, Payer, RoomKeeper, leave_credit, take_credit
from requester.chunk_request import FREE_LANE
from requester.protocol import (
    BTT_LOCAL,
    CREDIT_HEADER,
    ContentVerifier,
    Quote,
    TronAddress,
    Voucher,
    WrongBinding,
    format_amount,
)
from requester.provider_answer import refusal_text
from requester.provider_trust import ProviderTrust


class ProviderPayments:
    """The accounts of one chunk client (shared by a long-lived caller, the proxy) and
    what it signed to each provider."""

    def __init__(
        self, channels: Payer | None, max_price_per_mib: int | None, max_price_per_chunk: int,
        accounts: dict[str, Account] | None,
    ) -> None:  # fmt: skip
        self.channels = channels
        self._max_price_per_mib = max_price_per_mib
        self._max_price_per_chunk = max_price_per_chunk
        """With ``max_price_per_mib``, the most a full chunk may cost: the limit is a price,
        fixed part included, for the same bytes as the quote's."""
        self.accounts: dict[str, Account] = {} if accounts is None else accounts
        """Quotes and credit per provider; a long-lived caller (the proxy) shares one."""
        self.signed: dict[str, int] = {}
        """Vouchers signed per provider, counted when signed (a request may then fail)."""

    def leave_credit(self) -> None:
        """Hand the credit left with each provider back to the wallet for the next process."""
        leave_credit(self.channels, self.accounts.values())

    async def on_402(self, provider: str, verifier: ContentVerifier, answer: dict[str, str],
                     trust: ProviderTrust | None, market: Bidding | None, body: bytes,
                     free: bool) -> tuple[Voucher, int] | None:  # fmt: skip
        """Pay what a 402 asks (the voucher and its price), or None to go to the provider's
        free lane: a market provider above the ceiling, or one the wallet cannot pay. A
        market edge that asks payment of a ``free`` request (no bid, no payment: a replica
        buys a chunk it lacks only once paid) is dropped if it cannot be paid."""
        if market is not None and market.free_only is not None:
            what = "for a chunk" if market.auction(provider) else "past its free allowance"
            raise PaymentRefused(provider, wants_payment(answer, market.free_only, what))
        if self.channels is None:
            raise ProviderFault(provider, f"answered 402{refusal_text(body)}")
        auction = market is not None and market.auction(provider)
        quote, price = check_quote(provider, verifier, answer, self._max_price_per_mib,
                                   self._max_price_per_chunk, auction)  # fmt: skip
        if market is not None and auction:
            market.observe(provider, quote.price_per_mib, time.monotonic())
            if not market.within_ceiling(quote.price_per_mib):
                if free:
                    why = "that is above the ceiling (--max-price)"
                    raise PaymentRefused(provider, wants_payment(answer, why, "for a chunk"))
                return None
        self._keep_room(provider, quote.payee, market)
        try:
            voucher = await self._pay_quote(provider, quote, price, trust)
        except InsufficientFunds as exc:
            if market is None:
                raise
            market.cannot_pay(provider, exc.message)
            if not auction or free:
                why = f"this wallet cannot pay: {exc.message}"
                raise PaymentRefused(provider, wants_payment(answer, why)) from exc
            return None
        self.signed[provider] = self.signed.get(provider, 0) + price
        old = self.accounts.get(provider)
        if old is not None and old.channel_id == voucher.channel_id:
            kept = old.credit
        else:  # a channel new to this account: the credit an earlier process left there
            leave_credit(self.channels, [old] if old is not None else [])
            kept = take_credit(self.channels, voucher.channel_id)
        self.accounts[provider] = Account(quote, voucher.channel_id, kept)
        return voucher, price

    def keep_credit(self, provider: str, amount: int) -> None:
        """What a request paid ahead and was not charged for stays credit with ``provider``:
        the edge recorded it before it waited (or, if the request never reached it, the next
        voucher, which counts every one signed before, brings it)."""
        account = self.accounts.get(provider)
        if amount and account is not None:
            account.credit += amount

    async def ahead(self, provider: str, verifier: ContentVerifier, index: int, probation: bool,
                    market: Bidding | None) -> tuple[dict[str, str], int, int]:  # fmt: skip
        """:meth:`pay_ahead`, with a bid for a market provider; a wallet that cannot fund the
        payment sends the request to the free lane (and the download pays nobody more)."""
        account = self.accounts.get(provider)
        if account is not None and not probation:
            self._keep_room(provider, account.quote.payee, market)
        try:
            headers, expected, spent = await self.pay_ahead(provider, verifier, index, probation)
        except InsufficientFunds as exc:
            if market is None:
                raise
            market.cannot_pay(provider, exc.message)
            return dict(FREE_LANE), 0, 0
        bid = None if market is None or not market.auction(provider) else market.bid(provider)
        if bid is not None:  # amount text in the asset, as every amount on the wire
            account = self.accounts.get(provider)
            asset = BTT_LOCAL if account is None else account.quote.asset
            headers[BID_HEADER] = format_amount(bid, asset).removesuffix(f" {asset.symbol}")
        return headers, expected, spent

    def _keep_room(self, provider: str, payee: TronAddress, market: Bidding | None) -> None:
        """A market edge counts a bid only while the channel's unspent deposit covers it for
        a round: have the payer keep that much there (not for payees on probation)."""
        keeper: object = self.channels
        if market is not None and market.auction(provider) and isinstance(keeper, RoomKeeper):
            keeper.keep_room(payee, market.cover(provider))

    async def _pay_quote(self, provider: str, quote: Quote, price: int,
                         trust: ProviderTrust | None) -> Voucher:  # fmt: skip
        """Pay what a 402 asked: a provider on probation only within the download's limits."""
        assert self.channels is not None
        allowance = None
        if trust is not None:
            refusal = trust.claim_payment(provider, price)
            if refusal is not None:
                raise ProviderFault(provider, refusal)
            if trust.on_probation(provider):
                allowance = trust.allowance
        try:
            return await self.channels.pay(quote, price, int(time.time()), allowance)
        except NewChannelRefused as exc:
            raise ProviderFault(provider, str(exc)) from exc
        except WrongBinding as exc:  # paid on another ledger or asset: not by us
            raise ProviderFault(provider, exc.message) from exc

    async def pay_ahead(self, provider: str, verifier: ContentVerifier, index: int,
                        probation: bool, count: int = 1
                        ) -> tuple[dict[str, str], int, int]:  # fmt: skip
        """Headers paying for ``count`` full-size chunks from ``index`` (a chunk run when more
        than one), the price assumed, and what was signed; from credit alone when it covers
        them all.

        Only for chunks known to exist: a probe past the end is answered 416 unpaid. A
        provider on probation is paid ahead only from credit it already holds.
        """
        headers = {"Accept-Encoding": "zstd"}
        account = self.accounts.get(provider)
        now = int(time.time())
        if self.channels is None or account is None or account.quote.valid_until < now + 30:
            return headers, 0, 0
        if index + count > _known_chunk_count(verifier):
            return headers, 0, 0
        expected = account.quote.chunk_price(verifier.head.chunk_size) * count  # wire <= raw
        taken = min(account.credit, expected)
        account.credit -= taken  # reserved before any await: concurrent requests share it
        needed = expected - taken
        if needed and probation:
            account.credit += taken
            return headers, 0, 0
        if not needed:
            spend = self.channels.credit_spend(
                account.channel_id, verifier.head.content_id, index, now
            )
            headers[CREDIT_HEADER] = spend.to_header()
            return headers, expected, 0
        try:
            voucher = await self.channels.pay(account.quote, needed, now)
        except BaseException:
            account.credit += taken  # not paid: the credit it would have spent is still there
            raise
        self.signed[provider] = self.signed.get(provider, 0) + needed
        headers["Atlas-Voucher"] = voucher.to_header()
        return headers, expected, needed


def _known_chunk_count(verifier: ContentVerifier) -> int:
    """Chunks the content has, from the seal or the origin's stated size (0 if unknown)."""
    if verifier.seal is not None:
        return verifier.seal.chunk_count
    return verifier.head.stated_chunks or 0
