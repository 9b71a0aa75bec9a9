"""Getting one chunk from one provider: pay when asked, verify before use.

This is the unit the downloader schedules and edges use to replicate. A
provider's answer is checked in full before a byte is kept: the quote must
be signed and within the caller's price limit, the price asked must match
the quote for the bytes sent, the compressed body must inflate to no more
than the chunk's stated size, and the chunk must match the origin edge's
signed statement. Any failure raises :class:`ProviderFault` with evidence.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, replace

import aiohttp
import zstandard

from requester.bidding import BID_HEADER, LANE_HEADER, Bidding, Market, read_market
from requester.channel_manager import (
    InsufficientFunds,
    NewChannelRefused,
)
from requester.chunk_payer import Account, Budget, Payer, RoomKeeper
from requester.errors import SdkError
from requester.protocol import (
    BTT_LOCAL,
    CREDIT_HEADER,
    UNKNOWN_SIZE,
    ContentVerifier,
    ProtocolError,
    Quote,
    TronAddress,
    Voucher,
    WrongBinding,
    b64url_decode,
    b64url_encode,
    format_amount,
)
from requester.protocol.manifest import STATEMENT_SIZE
from requester.protocol.quote import QUOTE_SIZE, chunk_price
from requester.provider_answer import (
    inflate,
    json_problem,
    printable,
    read_capped,
    refusal_text,
)
from requester.provider_trust import ProviderTrust

__all__ = [
    "CHUNK_TIMEOUT", "CONTENT_STATE_HEADER", "MAX_BODY", "Account", "Budget", "ChunkClient",
    "ChunkUnavailable", "ContentFailed", "Delivered", "Payer", "PaymentRefused", "ProviderFault",
    "ProviderUnreachable",
]  # fmt: skip
"""Account, Budget and Payer live in :mod:`requester.chunk_payer`; callers import them here."""

MAX_BODY = 17 * 1024 * 1024
"""Largest answer read: a chunk is at most 16 MiB (the protocol's limit), plus slack."""
CHUNK_TIMEOUT = aiohttp.ClientTimeout(total=60, sock_connect=5, sock_read=30)


class ProviderFault(SdkError):
    """A provider misbehaved or failed; the download drops it and goes elsewhere."""

    status = 502
    code = "provider_fault"

    def __init__(self, provider: str, reason: str, evidence: dict[str, str] | None = None) -> None:
        super().__init__(f"{provider}: {reason}")
        self.provider, self.reason, self.evidence = provider, reason, evidence or {}


CONTENT_STATE_HEADER = "Atlas-Content-State"
"""``failed`` on an edge's problem answer for content whose fetch ended in an error."""


class PaymentRefused(ProviderFault):
    """The provider serves nothing more unpaid (an edge without a market, past its free
    allowance) and this download cannot or will not pay it: it is dropped, no channel opened."""


class ContentFailed(ProviderFault):
    """The provider says the content itself failed (its origin broke off the body, sent a
    bomb...): no chunk of it will come from there. Drop the provider; the download ends
    only on the word of the edge the content was asked from (see the downloader)."""

    def __init__(self, provider: str, status: int, body: bytes) -> None:
        problem = json_problem(body)
        if problem is not None and "detail" in problem:
            code, detail = problem["type"].rsplit("/", 1)[-1], str(problem["detail"])
        else:
            code, detail = "content_failed", body[:200].decode("utf-8", "replace")
        code, detail = printable(code)[:60], printable(detail)  # shown on terminals, pages
        super().__init__(provider, f"the content failed: {status} {code}: {detail[:300]}")
        self.status, self.code, self.detail = status, code, detail[:300]


class ChunkUnavailable(SdkError):
    """The provider cannot serve this chunk now (not ready, past the end): retry or go elsewhere.
    ``status`` is the provider's (404, 416, 429, 503)."""

    status = 503
    code = "chunk_unavailable"

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(f"{status}: {detail}")
        self.status = status


class ProviderUnreachable(ProviderFault):
    """The provider's connection was refused or reset (it may be restarting). The
    downloader catches it first and backs off and asks again
    (:mod:`requester.provider_backoff`); any other caller sees a provider failure, as
    before it was told apart. It never marks the provider as untrusted."""

    code = "provider_unreachable"

    def __init__(self, provider: str, reason: str) -> None:
        super().__init__(provider, reason)


@dataclass(frozen=True)
class Delivered:
    data: bytes
    sha256: bytes
    statement: bytes
    """The origin edge's signed statement for the chunk (for providers that re-serve it)."""
    price: int
    """What the provider charged for it (``Atlas-Price``)."""
    wire_bytes: int
    paid_by: str
    spent: int = 0
    """What this request signed over in vouchers (credit left with the provider included)."""
    lane: str = ""
    """``paid`` or ``free``: the edge's ``Atlas-Lane``, else read from ``Atlas-Paid-By``."""
    seconds: float = 0.0
    """How long the request that delivered it took."""


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
                status, body, answer = await self._request(provider, url, headers)
            except ProviderUnreachable:
                account = self._accounts.get(provider)
                if expected and account is not None:
                    account.credit += expected  # not served: the payment stays credit
                raise
            if market is not None:
                market.observe_answer(provider, answer, time.monotonic())
            if status == 200:
                delivered = self._accept(provider, verifier, index, body, answer, spent)
                account = self._accounts.get(provider)
                if expected and account is not None:
                    account.credit += max(0, expected - delivered.price)
                return replace(delivered, seconds=time.monotonic() - started)
            if status == 402 and not paid_quote:
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
            raise PaymentRefused(provider, _wants_payment(answer, market.free_only, what))
        if self._channels is None:
            raise ProviderFault(provider, f"answered 402{refusal_text(body)}")
        auction = market is not None and market.auction(provider)
        quote, price = self._check_quote(provider, verifier, answer, auction)
        if market is not None and auction:
            market.observe(provider, quote.price_per_mib, time.monotonic())
            if not market.within_ceiling(quote.price_per_mib):
                if free:
                    why = "that is above the ceiling (--max-price)"
                    raise PaymentRefused(provider, _wants_payment(answer, why, "for a chunk"))
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
                raise PaymentRefused(provider, _wants_payment(answer, why)) from exc
            return None
        self.signed[provider] = self.signed.get(provider, 0) + price
        old = self._accounts.get(provider)
        kept = old.credit if old is not None and old.channel_id == voucher.channel_id else 0
        self._accounts[provider] = Account(quote, voucher.channel_id, kept)
        return voucher, price

    def _refused(self, provider: str, status: int, body: bytes, answer: dict[str, str],
                 expected: int) -> None:  # fmt: skip
        """Raise what an answer other than a chunk or a first 402 means; what the request
        paid ahead stays credit with the provider."""
        account = self._accounts.get(provider)
        if expected and account is not None and (status in (404, 416, 429, 503) or (
                status >= 500 and answer.get(CONTENT_STATE_HEADER) == "failed")):  # fmt: skip
            account.credit += expected  # not served: the payment stays credit
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
                         probation: bool) -> tuple[dict[str, str], int, int]:  # fmt: skip
        """Headers paying for one full-size chunk, the price assumed, and what was signed.

        Only for chunks known to exist: a probe past the end is answered 416 unpaid. A
        provider on probation is paid ahead only from credit it already holds.
        """
        headers = {"Accept-Encoding": "zstd"}
        account = self._accounts.get(provider)
        now = int(time.time())
        if self._channels is None or account is None or account.quote.valid_until < now + 30:
            return headers, 0, 0
        if not index < _known_chunk_count(verifier):
            return headers, 0, 0
        expected = account.quote.chunk_price(verifier.head.chunk_size)  # wire <= raw size
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
        voucher = await self._channels.pay(account.quote, needed, now)
        self.signed[provider] = self.signed.get(provider, 0) + needed
        headers["Atlas-Voucher"] = voucher.to_header()
        return headers, expected, needed

    async def _request(self, provider: str, url: str, headers: dict[str, str]
                       ) -> tuple[int, bytes, dict[str, str]]:  # fmt: skip
        try:
            async with self._session.get(
                url, headers=headers, timeout=CHUNK_TIMEOUT, auto_decompress=False
            ) as resp:
                body = await read_capped(resp, MAX_BODY)
                return resp.status, body, dict(resp.headers)
        except TimeoutError as exc:
            raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:  # refused, reset
            raise ProviderUnreachable(provider, f"unreachable: {type(exc).__name__} {exc}") from exc
        except aiohttp.ClientError as exc:
            raise ProviderFault(provider, f"unreachable: {type(exc).__name__} {exc}") from exc

    def _check_quote(self, provider: str, verifier: ContentVerifier, answer: dict[str, str],
                     auction: bool = False) -> tuple[Quote, int]:  # fmt: skip
        try:
            quote = Quote.decode(b64url_decode(answer.get("Atlas-Quote", ""), QUOTE_SIZE, "quote"))
            quote.check_valid(int(time.time()))
        except ProtocolError as exc:
            raise ProviderFault(provider, f"bad quote: {exc.message}") from exc
        if quote.content_id not in (verifier.head.content_id, bytes(32)):
            raise ProviderFault(provider, "quote is for other content")
        if self._max_price_per_mib is not None and not auction:  # a market's: its free lane
            self._check_limit(provider, quote, verifier.head.chunk_size)
        price_text = answer.get("Atlas-Price", "")
        if not price_text.isascii() or not price_text.isdigit():
            raise ProviderFault(provider, "402 without a price")
        price = int(price_text)
        # The wire form is at most the raw chunk (edges only compress when it is smaller).
        if price > quote.chunk_price(verifier.head.chunk_size):
            raise ProviderFault(provider, f"asked {price}, more than its quote allows")
        return quote, price

    def _check_limit(self, provider: str, quote: Quote, size: int) -> None:
        """Refuse a quote whose price for a full chunk of this content (its fixed part per
        chunk included, or a tiny per-MiB price would hide a huge one per chunk) is above
        the limit's price for the same bytes."""
        assert self._max_price_per_mib is not None
        asked = quote.chunk_price(size)
        limit = chunk_price(self._max_price_per_chunk, self._max_price_per_mib, size)
        if asked > limit:
            a = quote.asset
            raise ProviderFault(
                provider,
                f"price {format_amount(asked, a)} for a full {size}-byte chunk "
                f"({format_amount(quote.price_per_chunk, a)} per chunk + "
                f"{format_amount(quote.price_per_mib, a)}/MiB) is above the limit of "
                f"{format_amount(limit, a)} ({format_amount(self._max_price_per_mib, a)}/MiB)",
            )

    def _accept(self, provider: str, verifier: ContentVerifier, index: int, body: bytes,
                answer: dict[str, str], spent: int) -> Delivered:  # fmt: skip
        wire = len(body)
        try:
            statement = b64url_decode(answer.get("Atlas-Chunk", ""), STATEMENT_SIZE, "Atlas-Chunk")
            if answer.get("Content-Encoding") == "zstd":
                body = inflate(body, verifier.head.chunk_size)
            elif answer.get("Content-Encoding") not in (None, "identity"):
                raise ProviderFault(provider, "unknown Content-Encoding")
            checked = verifier.verify_chunk(statement, body)
        except (ProtocolError, zstandard.ZstdError) as exc:
            detail = exc.message if isinstance(exc, ProtocolError) else str(exc)
            raise ProviderFault(
                provider, f"bad chunk {index}: {detail}",
                {"content_id": verifier.head.content_id.hex(), "index": str(index),
                 "sha256_received": _sha(body), "provider": provider,
                 "head": b64url_encode(verifier.head.encode()),
                 "statement": answer.get("Atlas-Chunk", "")},
            ) from exc  # fmt: skip
        if checked.index != index:
            raise ProviderFault(provider, f"sent chunk {checked.index} for {index}")
        price = answer.get("Atlas-Price", "0")
        paid_by = answer.get("Atlas-Paid-By", "")
        lane = answer.get(LANE_HEADER, "")
        if lane not in ("paid", "free"):
            lane = "free" if paid_by in ("free", "") else "paid"
        return Delivered(
            body,
            checked.sha256,
            statement,
            int(price) if price.isascii() and price.isdigit() else 0,
            wire,
            paid_by,
            spent,
            lane,
        )


FREE_LANE = {"Accept-Encoding": "zstd"}
"""A request with no payment and no bid: a market edge's free lane."""


def _wants_payment(answer: dict[str, str], why: str, what: str = "past its free allowance") -> str:
    """Why a provider that wants payment is dropped, with its price if its quote decodes."""
    asked = ""
    try:
        quote = Quote.decode(b64url_decode(answer.get("Atlas-Quote", ""), QUOTE_SIZE, "quote"))
        asked = f" ({format_amount(quote.price_per_mib, quote.asset)}/MiB)"
    except ProtocolError:
        pass
    return f"wants payment{asked} {what}, and {why}"


def _known_chunk_count(verifier: ContentVerifier) -> int:
    """Chunks the content has, from the seal or the origin's stated size (0 if unknown)."""
    if verifier.seal is not None:
        return verifier.seal.chunk_count
    hint, size = verifier.head.size_hint, verifier.head.chunk_size
    return 0 if hint == UNKNOWN_SIZE else -(-hint // size)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
