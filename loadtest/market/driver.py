"""Requesters against one market edge, as raw HTTP (docs/market.md): each from a loopback
address of its own (the free lane is shared by address), keeping chunk requests in flight,
a bidder with its ``Atlas-Bid`` and its payment on every one. The edge's mechanism is what
is measured, not the SDK's choices (the benchmark's market part and
tests/market/test_market_scenarios.py use it).

A bidder sends its bid with a payment on every request (a bid counts only with one) until
its paid slot serves it; while it holds one (its last paying request went through the paid
lane), on one request in flight at a time, the others going to the free lane unpaid: the
slot carries one chunk at a time. A chunk served free leaves what paid for it as credit with
the edge. A bidder pays from that credit (a signed ``Atlas-Credit`` spend) when it covers a
chunk at the clearing price beyond what its other requests in flight may take, and
otherwise signs a voucher topping it up to exactly that. So a winner's vouchers never add
up to more than one chunk's price beyond what the edge charged it (issue 16).
"""

from __future__ import annotations

import asyncio
import math
import os
import time
from collections import Counter
from dataclasses import dataclass, field

import aiohttp

from loadtest.harness.network import edge_fetch, edge_payee, get_chunk, open_payer, wait_sealed
from loadtest.harness.rows import MIB
from requester.ledger_client import LedgerClient
from requester.protocol import (
    BTT_LOCAL,
    CREDIT_HEADER,
    CreditSpend,
    PayerChannel,
    PayerKey,
    Quote,
    SendVoucher,
    b64url_decode,
    parse_amount,
)

CHUNK = 256 << 10  # the edge's chunk size


@dataclass
class Requester:
    """One requester (``bid``: BTT per MiB as text, None: free) and what it got."""

    source: str
    bid: str | None = None
    channel: PayerChannel | None = None
    key: PayerKey = field(default_factory=PayerKey.generate)  # the channel's payer
    window: Counter[str] = field(default_factory=Counter)  # bytes by lane in the window
    statuses: Counter[int] = field(default_factory=Counter)
    paid_at: Counter[int] = field(default_factory=Counter)  # clearing price -> paid bytes
    charged: int = 0  # the Atlas-Price of those chunks
    vouchers: int = 0  # what its vouchers add up to
    clearing: int = 0  # the last Atlas-Clearing-Price
    reserved: int = 0  # credit promised to paying requests in flight
    paying: int = 0  # requests in flight with its bid and payment
    winning: bool = False  # its last paying request went through its paid slot
    short: bool = False  # the edge refused a payment: the next one is a voucher

    def rate(self, seconds: float, lane: str | None = None) -> float:
        """Bytes/s over the window, of one lane or both."""
        return (self.window[lane] if lane else sum(self.window.values())) / seconds

    def payment(self, cid: str, index: int, chunk: int) -> tuple[dict[str, str], int]:
        """The bid and payment headers of one request and the credit they take: none (the
        free lane) for a free requester, or for a winner while another request carries them."""
        if self.channel is None or self.bid is None or (self.winning and self.paying):
            return {}, 0
        price = math.ceil(chunk * (self.clearing or parse_amount(self.bid, BTT_LOCAL)) / MIB)
        headers = {"Atlas-Bid": self.bid}
        credit = self.vouchers - self.charged - self.reserved  # free chunks left it
        if credit < price or self.short:
            more = price if self.short else price - credit  # a later voucher adds up all
            action = self.channel.pay(more, int(time.time()))[1]
            assert isinstance(action, SendVoucher)
            headers["Atlas-Voucher"] = action.voucher.to_header()
            self.vouchers += more
            self.short = False
        else:
            terms, key = self.channel.terms, self.key
            headers[CREDIT_HEADER] = CreditSpend.create(
                key, domain=terms.domain, channel_id=terms.channel_id,
                content_id=bytes.fromhex(cid), index=index, issued_at=int(time.time()),
                nonce=os.urandom(16),
            ).to_header()  # fmt: skip
        self.paying += 1
        self.reserved += price
        return headers, price

    def answered(self, status: int, headers: dict[str, str], price: int) -> None:
        """Learn from the answer to a request that took ``price`` of credit: the clearing
        price (a 402's quote states it too), whether the paid slot serves this bidder, and
        whether a payment was refused (a 402: its voucher may not have been recorded)."""
        self.statuses[status] += 1
        self.clearing = int(headers.get("Atlas-Clearing-Price", self.clearing))
        if status == 402 and "Atlas-Quote" in headers:
            quote = Quote.decode(b64url_decode(headers["Atlas-Quote"], 1024, "Atlas-Quote"))
            self.clearing = quote.price_per_mib
            self.short = self.short or price > 0
        if price and status == 200:
            self.winning = headers.get("Atlas-Lane") == "paid"


def session(source: str) -> aiohttp.ClientSession:
    """Connections from ``source`` (a loopback address of its own)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def content(edge: str, url: str) -> str:
    """``url`` fetched through ``edge`` and stored whole: its content id."""
    async with aiohttp.ClientSession() as http:
        info = await edge_fetch(http, edge, url)
        return str((await wait_sealed(http, edge, info["content_id"]))["content_id"])


async def drive(edge: str, ledger: str, cid: str, chunks: int, requesters: list[Requester], *,
                seconds: float, settle: float, in_flight: int = 4) -> None:  # fmt: skip
    """Every requester keeps ``in_flight`` requests going for ``seconds``; answers that end
    after ``settle`` count in its window. Channels are opened first, outside the clock."""
    sessions = [session(r.source) for r in requesters]
    try:
        for r, http in zip(requesters, sessions, strict=True):
            if r.bid is not None and r.channel is None:
                payee = await edge_payee(http, edge)
                r.channel = await open_payer(LedgerClient(ledger, http), payee, r.key)
        start = time.monotonic()

        async def worker(r: Requester, http: aiohttp.ClientSession, first: int) -> None:
            index = first
            while time.monotonic() - start < seconds:
                index = (index + 1) % chunks
                headers, price = r.payment(cid, index, CHUNK)
                try:
                    status, body, got = await get_chunk(http, edge, cid, index, headers)
                finally:
                    r.reserved -= price
                    r.paying -= bool(headers)
                r.answered(status, got, price)
                if status != 200:
                    continue
                lane = got["Atlas-Lane"]
                if lane == "paid":
                    r.paid_at[r.clearing] += len(body)
                    r.charged += int(got["Atlas-Price"])
                if settle < time.monotonic() - start <= seconds:
                    r.window[lane] += len(body)

        await asyncio.gather(*(worker(r, http, 7 * n + k) for n, (r, http) in
                               enumerate(zip(requesters, sessions, strict=True))
                               for k in range(in_flight)))  # fmt: skip
    finally:
        await asyncio.gather(*(http.close() for http in sessions))
