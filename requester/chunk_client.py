"""Getting one chunk from one provider: pay when asked, verify before use.

This is the unit the downloader schedules and edges use to replicate. A
provider's answer is checked in full before a byte is kept
(:mod:`requester.chunk_checks`); this module decides when to ask and what each
answer means, and :mod:`requester.chunk_paying` what each request pays, ahead or when
asked, and what stays credit. What it raises is in :mod:`requester.chunk_faults`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace

import aiohttp

from requester.bidding import Bidding, Market, read_market
from requester.channel_manager import (
    InsufficientFunds,
    SpendLimitReached,
)
from requester.chunk_checks import Delivered, accept_chunk
from requester.chunk_faults import (
    CONTENT_STATE_HEADER,
    ChunkUnavailable,
    ContentFailed,
    PaymentRefused,
    ProviderFault,
    ProviderUnreachable,
)
from requester.chunk_payer import (
    Account,
    Budget,
    Payer,
)
from requester.chunk_paying import ProviderPayments
from requester.chunk_request import CHUNK_TIMEOUT, FREE_LANE, MAX_BODY, request_chunk
from requester.chunk_runs import Deliver, Room, request_run
from requester.protocol import (
    CREDIT_HEADER,
    ContentVerifier,
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
        self._pay = ProviderPayments(channels, max_price_per_mib, max_price_per_chunk, accounts)
        self.signed = self._pay.signed
        """Vouchers signed per provider, counted when signed (a request may then fail)."""
        self._markets: dict[str, tuple[float, Market | None]] = {}
        self._run_max: dict[str, int] = {}
        """The longest chunk run each provider serves (``Atlas-Run-Max`` on its chunks)."""

    def leave_credit(self) -> None:
        """Hand the credit left with each provider back to the wallet for the next process
        (call when done paying: ``atlas fetch`` at its end, the proxy when it stops)."""
        self._pay.leave_credit()

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
            headers, expected, spent = await self._pay.ahead(provider, verifier, index, probation,
                                                         market)  # fmt: skip
        paid_quote = False
        for _ in range(3):
            started = time.monotonic()
            try:
                status, body, answer = await request_chunk(self._session, provider, url, headers)
            except (ProviderUnreachable, asyncio.CancelledError):  # a race lost, a stop
                self._pay.keep_credit(provider, expected)  # not served: the payment stays credit
                raise
            if market is not None:
                market.observe_answer(provider, answer, time.monotonic())
            if status == 200:
                delivered = accept_chunk(provider, verifier, index, body, answer, spent)
                self._learn_runs(provider, answer.get(RUN_MAX_HEADER))
                self._pay.keep_credit(provider, max(0, expected - delivered.price))
                return replace(delivered, seconds=time.monotonic() - started)
            if status == 402 and not paid_quote:
                self._pay.keep_credit(provider, expected)  # the voucher paying now carries it
                expected = 0
                free = headers == FREE_LANE
                paid = await self._pay.on_402(provider, verifier, answer, trust, market, body, free)
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
            headers, expected, spent = await self._pay.pay_ahead(provider, verifier, first, False,
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
            self._pay.keep_credit(provider, max(0, expected - charged))
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
        return provider in self._pay.accounts or market.priced_within(provider)

    def _refused(self, provider: str, status: int, body: bytes, answer: dict[str, str],
                 expected: int) -> None:  # fmt: skip
        """Raise what an answer other than a chunk or a first 402 means; what the request
        paid ahead stays credit with the provider."""
        if status in (404, 416, 429, 503) or (
                status >= 500 and answer.get(CONTENT_STATE_HEADER) == "failed"):  # fmt: skip
            self._pay.keep_credit(provider, expected)  # not served: the payment stays credit
        if status >= 500 and answer.get(CONTENT_STATE_HEADER) == "failed":
            raise ContentFailed(provider, status, body)
        if status in (404, 416, 429, 503):
            raise ChunkUnavailable(status, body[:300].decode("utf-8", "replace"))
        raise ProviderFault(provider, f"answered {status}{refusal_text(body)}")
