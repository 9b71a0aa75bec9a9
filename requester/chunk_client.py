"""Getting one chunk from one provider: pay when asked, verify before use.

This is the unit the downloader schedules and edges use to replicate. A
provider's answer is checked in full before a byte is kept
(:mod:`requester.chunk_checks`); this module decides when to ask, what to pay
ahead, when to bid and what each answer means. What it raises is in
:mod:`requester.chunk_faults`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp

from requester.bidding import BID_HEADER, Bidding, Market, read_market
from requester.channel_manager import (
    InsufficientFunds,
    NewChannelRefused,
    SpendLimitReached,
)
from requester.chunk_checks import Delivered, accept_chunk, check_quote
from requester.chunk_faults import (
    CONTENT_STATE_HEADER,
    ChunkUnavailable,
    ContentFailed,
    PaymentRefused,
    ProviderFault,
    ProviderUnreachable,
    wants_payment,
)
from requester.chunk_payer import (
    Account,
    Budget,
    Payer,
    RoomKeeper,
    leave_credit,
    take_credit,
)
from requester.chunk_request import CHUNK_TIMEOUT, FREE_LANE, MAX_BODY, request_chunk
from requester.chunk_runs import Deliver, Room, request_run
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
from requester.protocol.chunk_run import RUN_MAX_COUNT, RUN_MAX_HEADER, RunEnd
from requester.provider_answer import refusal_text
from requester.provider_trust import ProviderTrust

__all__ = [
    "CHUNK_TIMEOUT", "CONTENT_STATE_HEADER", "MAX_BODY", "Account", "Budget", "ChunkClient",
    "ChunkUnavailable", "ContentFailed", "Delivered", "Payer", "PaymentRefused", "ProviderFault",
    "ProviderUnreachable",
]  # fmt: skip
"""Account, Budget and Payer live in :mod:`requester.chunk_payer`, the failures in
:mod:`requester.chunk_faults`, Delivered in :mod:`requester.chunk_checks` and MAX_BODY and
CHUNK_TIMEOUT in :mod:`requester.chunk_request`; callers import them here."""


class ChunkClient:
    def __init__(
        self,
        session: aiohttp.ClientSession,
        channels: Payer | None,
        *,
        max_price_per_mib: int | None = None,
        max_price_per_chunk: int = 0,
        accounts: dict[str, Account] | None = None,
    ) -> None:
        self._session = session
        self._channels = channels
        self._max_price_per_mib = max_price_per_mib
        self._max_price_per_chunk = max_price_per_chunk
        """With ``max_price_per_mib``, the most a full chunk may cost: the limit is a price,
        fixed part included, for the same bytes as the quote's."""
        self._accounts: dict[str, Account] = {} if accounts is None else accounts
        """Quotes and credit per provider; a long-lived caller (the proxy) shares one."""
        self.signed: dict[str, int] = {}
        """Vouchers signed per provider, counted when signed (a request may then fail)."""
        self._markets: dict[str, tuple[float, Market | None]] = {}
        self._run_max: dict[str, int] = {}
        """The longest chunk run each provider serves (``Atlas-Run-Max`` on its chunks)."""

    def leave_credit(self) -> None:
        """Hand the credit left with each provider back to the wallet for the next process
        (call when done paying: ``atlas fetch`` at its end, the proxy when it stops)."""
        leave_credit(self._channels, self._accounts.values())

    def run_max(self, provider: str) -> int:
        """The longest run ``provider`` serves; 0 until one of its chunk answers said so."""
        return self._run_max.get(provider, 0)

    async def market(self, provider: str) -> Market | None:
        """``provider``'s market (``/v1/info``), read at most once per its round here."""
        now = time.monotonic()
        known = self._markets.get(provider)
        if known is not None and now - known[0] < (known[1].round_seconds if known[1] else 30):
            return None if known[1] is None else replace(known[1])
        found = await read_market(self._session, provider)
        self._markets[provider] = (now, found)
        return None if found is None else replace(found)

    async def get(self, provider: str, verifier: ContentVerifier, index: int,
                  trust: ProviderTrust | None = None,
                  market: Bidding | None = None) -> Delivered:  # fmt: skip
        """Chunk ``index`` from ``provider``, verified and paid.

        The first request to a provider learns its quote from a 402; after that each
        request carries its payment up front (a voucher for the chunk's full-size price
        less the credit left by cheaper, compressed chunks, or a signed credit spend when
        that credit covers it), so a paid chunk costs one round trip, not two. With a
        download's ``trust``, a provider on probation is paid one chunk at a time, within
        the download's allowance, and one that faults is paid nothing more. With a
        download's ``market`` (:mod:`requester.bidding`), a provider that sells slots by
        auction is asked unpaid (its free lane) unless the download wants a paid slot
        there, then with a bid and its payment; a download that cannot pay is never
        made to open a channel.
        """
        if trust is not None and trust.dropped(provider):
            raise ProviderFault(provider, "dropped earlier in this download")
        try:
            delivered = await self._get(provider, verifier, index, trust, market)
        except ProviderUnreachable:
            raise  # not a fault it proved: the provider stays trusted
        except ProviderFault:
            if trust is not None:
                trust.drop(provider)
            raise
        if trust is not None:
            trust.proven(provider)
        return delivered

    async def _get(self, provider: str, verifier: ContentVerifier, index: int,
                   trust: ProviderTrust | None, market: Bidding | None) -> Delivered:  # fmt: skip
        cid = verifier.head.content_id.hex()
        url = f"{provider.rstrip('/')}/v1/chunk/{cid}/{index}"
        probation = trust is not None and trust.on_probation(provider)
        if market is not None and not self._pays(provider, market):
            headers, expected, spent = dict(FREE_LANE), 0, 0
        else:
            headers, expected, spent = await self._ahead(provider, verifier, index, probation,
                                                         market)  # fmt: skip
        paid_quote = False
        for _ in range(3):
            started = time.monotonic()
            try:
                status, body, answer = await request_chunk(self._session, provider, url, headers)
            except (ProviderUnreachable, asyncio.CancelledError):  # a race lost, a stop
                self._keep_credit(provider, expected)  # not served: the payment stays credit
                raise
            if market is not None:
                market.observe_answer(provider, answer, time.monotonic())
            if status == 200:
                delivered = accept_chunk(provider, verifier, index, body, answer, spent)
                self._learn_runs(provider, answer.get(RUN_MAX_HEADER))
                self._keep_credit(provider, max(0, expected - delivered.price))
                return replace(delivered, seconds=time.monotonic() - started)
            if status == 402 and not paid_quote:
                self._keep_credit(provider, expected)  # the voucher paying now carries it
                expected = 0
                free = headers == FREE_LANE
                paid = await self._on_402(provider, verifier, answer, trust, market, body, free)
                if paid is None:  # above the ceiling, or the wallet cannot pay: free lane
                    headers, expected = dict(FREE_LANE), 0
                    continue
                voucher, price = paid
                paid_quote = True
                headers = {**headers, "Atlas-Voucher": voucher.to_header()}
                headers.pop(CREDIT_HEADER, None)
                expected, spent = price, spent + price  # not served: it stays credit there
                continue
            self._refused(provider, status, body, answer, expected)
        raise ProviderFault(provider, f"answered {status}{refusal_text(body)}")

    async def get_run(self, provider: str, verifier: ContentVerifier, first: int, count: int,
                      deliver: Deliver, trust: ProviderTrust | None = None,
                      market: Bidding | None = None,
                      room: Room | None = None) -> RunEnd | None:  # fmt: skip
        """Chunks ``first`` to ``first + count - 1`` from ``provider`` in one request, each
        handed to ``deliver`` once verified; why the run ended, or None when the provider
        answered a problem instead (ask it for ``first`` alone with :meth:`get`, which knows
        quotes, replicas that must buy and lanes). Paid ahead like one chunk, for the whole
        run: what the provider did not charge stays credit there. Only for providers that
        serve runs, are past probation and sell no slots (their lanes pace chunk by chunk).
        With ``room`` (:class:`requester.chunk_runs.Room`), a frame is read only once the
        caller has room for it.
        """
        if trust is not None and trust.dropped(provider):
            raise ProviderFault(provider, "dropped earlier in this download")
        try:
            reason = await self._get_run(provider, verifier, first, count, deliver, market,
                                         room)  # fmt: skip
        except ProviderUnreachable:
            raise
        except ProviderFault:
            if trust is not None:
                trust.drop(provider)
            raise
        if trust is not None and reason is not None:
            trust.proven(provider)
        return reason

    async def _get_run(self, provider: str, verifier: ContentVerifier, first: int, count: int,
                       deliver: Deliver, market: Bidding | None,
                       room: Room | None = None) -> RunEnd | None:  # fmt: skip
        cid = verifier.head.content_id.hex()
        url = f"{provider.rstrip('/')}/v1/run/{cid}/{first}?count={count}"
        try:
            headers, expected, spent = await self._pay_ahead(provider, verifier, first, False,
                                                             count)  # fmt: skip
        except (InsufficientFunds, SpendLimitReached):
            return None  # chunk by chunk, :meth:`get` pays what it can and says what it cannot
        charged = 0

        def on_chunk(index: int, delivered: Delivered) -> None:
            nonlocal charged, spent
            charged += delivered.price
            deliver(index, replace(delivered, spent=spent))
            spent = 0  # what the run signed counts once, with its first chunk

        try:
            answer = await request_run(self._session, provider, url, headers, verifier, first,
                                       count, on_chunk, room)  # fmt: skip
        finally:  # what was not charged stays credit there
            self._keep_credit(provider, max(0, expected - charged))
        if market is not None and answer.headers is not None:
            market.observe_answer(provider, answer.headers, time.monotonic())
        if answer.trailer is not None:
            return answer.trailer.reason
        if answer.status in (404, 409):
            self._run_max[provider] = 0  # no runs there (or not this content): chunk by chunk
        failed = (answer.headers or {}).get(CONTENT_STATE_HEADER) == "failed"
        if answer.status in (402, 404, 409, 416, 429, 503) or failed:
            return None
        raise ProviderFault(provider, f"answered {answer.status}{refusal_text(answer.body)}")

    def _learn_runs(self, provider: str, header: str | None) -> None:
        if header is not None and header.isascii() and header.isdigit() and len(header) <= 3:
            self._run_max[provider] = min(int(header), RUN_MAX_COUNT)

    def _pays(self, provider: str, market: Bidding) -> bool:
        """Whether a request to ``provider`` carries payment: an edge without a market is
        paid as before (when it asks); a market edge only where the download wants a paid
        slot, and, with no channel there yet, only while its price is within the ceiling
        (a bid without payment is answered 402 with a quote, not worth asking for above it)."""
        if market.free_only is not None:
            return False
        if not market.auction(provider):
            return True
        if not market.wants_paid(provider, time.monotonic()):
            return False
        return provider in self._accounts or market.priced_within(provider)

    async def _on_402(self, provider: str, verifier: ContentVerifier, answer: dict[str, str],
                      trust: ProviderTrust | None, market: Bidding | None, body: bytes,
                      free: bool) -> tuple[Voucher, int] | None:  # fmt: skip
        """Pay what a 402 asks (the voucher and its price), or None to go to the provider's
        free lane: a market provider above the ceiling, or one the wallet cannot pay. A
        market edge that asks payment of a ``free`` request (no bid, no payment: a replica
        buys a chunk it lacks only once paid) is dropped if it cannot be paid."""
        if market is not None and market.free_only is not None:
            what = "for a chunk" if market.auction(provider) else "past its free allowance"
            raise PaymentRefused(provider, wants_payment(answer, market.free_only, what))
        if self._channels is None:
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
        old = self._accounts.get(provider)
        if old is not None and old.channel_id == voucher.channel_id:
            kept = old.credit
        else:  # a channel new to this account: the credit an earlier process left there
            leave_credit(self._channels, [old] if old is not None else [])
            kept = take_credit(self._channels, voucher.channel_id)
        self._accounts[provider] = Account(quote, voucher.channel_id, kept)
        return voucher, price

    def _keep_credit(self, provider: str, amount: int) -> None:
        """What a request paid ahead and was not charged for stays credit with ``provider``:
        the edge recorded it before it waited (or, if the request never reached it, the next
        voucher, which counts every one signed before, brings it)."""
        account = self._accounts.get(provider)
        if amount and account is not None:
            account.credit += amount

    def _refused(self, provider: str, status: int, body: bytes, answer: dict[str, str],
                 expected: int) -> None:  # fmt: skip
        """Raise what an answer other than a chunk or a first 402 means; what the request
        paid ahead stays credit with the provider."""
        if status in (404, 416, 429, 503) or (
                status >= 500 and answer.get(CONTENT_STATE_HEADER) == "failed"):  # fmt: skip
            self._keep_credit(provider, expected)  # not served: the payment stays credit
        if status >= 500 and answer.get(CONTENT_STATE_HEADER) == "failed":
            raise ContentFailed(provider, status, body)
        if status in (404, 416, 429, 503):
            raise ChunkUnavailable(status, body[:300].decode("utf-8", "replace"))
        raise ProviderFault(provider, f"answered {status}{refusal_text(body)}")

    async def _ahead(self, provider: str, verifier: ContentVerifier, index: int, probation: bool,
                     market: Bidding | None) -> tuple[dict[str, str], int, int]:  # fmt: skip
        """:meth:`_pay_ahead`, with a bid for a market provider; a wallet that cannot fund the
        payment sends the request to the free lane (and the download pays nobody more)."""
        account = self._accounts.get(provider)
        if account is not None and not probation:
            self._keep_room(provider, account.quote.payee, market)
        try:
            headers, expected, spent = await self._pay_ahead(provider, verifier, index, probation)
        except InsufficientFunds as exc:
            if market is None:
                raise
            market.cannot_pay(provider, exc.message)
            return dict(FREE_LANE), 0, 0
        bid = None if market is None or not market.auction(provider) else market.bid(provider)
        if bid is not None:  # amount text in the asset, as every amount on the wire
            account = self._accounts.get(provider)
            asset = BTT_LOCAL if account is None else account.quote.asset
            headers[BID_HEADER] = format_amount(bid, asset).removesuffix(f" {asset.symbol}")
        return headers, expected, spent

    def _keep_room(self, provider: str, payee: TronAddress, market: Bidding | None) -> None:
        """A market edge counts a bid only while the channel's unspent deposit covers it for
        a round: have the payer keep that much there (not for payees on probation)."""
        keeper: object = self._channels
        if market is not None and market.auction(provider) and isinstance(keeper, RoomKeeper):
            keeper.keep_room(payee, market.cover(provider))

    async def _pay_quote(self, provider: str, quote: Quote, price: int,
                         trust: ProviderTrust | None) -> Voucher:  # fmt: skip
        """Pay what a 402 asked: a provider on probation only within the download's limits."""
        assert self._channels is not None
        allowance = None
        if trust is not None:
            refusal = trust.claim_payment(provider, price)
            if refusal is not None:
                raise ProviderFault(provider, refusal)
            if trust.on_probation(provider):
                allowance = trust.allowance
        try:
            return await self._channels.pay(quote, price, int(time.time()), allowance)
        except NewChannelRefused as exc:
            raise ProviderFault(provider, str(exc)) from exc
        except WrongBinding as exc:  # paid on another ledger or asset: not by us
            raise ProviderFault(provider, exc.message) from exc

    async def _pay_ahead(self, provider: str, verifier: ContentVerifier, index: int,
                         probation: bool, count: int = 1
                         ) -> tuple[dict[str, str], int, int]:  # fmt: skip
        """Headers paying for ``count`` full-size chunks from ``index`` (a chunk run when more
        than one), the price assumed, and what was signed; from credit alone when it covers
        them all.

        Only for chunks known to exist: a probe past the end is answered 416 unpaid. A
        provider on probation is paid ahead only from credit it already holds.
        """
        headers = {"Accept-Encoding": "zstd"}
        account = self._accounts.get(provider)
        now = int(time.time())
        if self._channels is None or account is None or account.quote.valid_until < now + 30:
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
            spend = self._channels.credit_spend(
                account.channel_id, verifier.head.content_id, index, now
            )
            headers[CREDIT_HEADER] = spend.to_header()
            return headers, expected, 0
        try:
            voucher = await self._channels.pay(account.quote, needed, now)
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
