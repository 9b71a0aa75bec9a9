"""Requesters against one market edge, as raw HTTP (docs/market.md): each from a loopback
address of its own (the free lane is shared by address), keeping chunk requests in flight,
a bidder with its ``Atlas-Bid`` and its payment on every one. The edge's mechanism is what
is measured, not the SDK's choices (the benchmark's market part and
tests/market/test_market_scenarios.py use it).

A bidder pays from credit when its channel holds enough and with a voucher of one chunk at
the clearing price otherwise: a chunk served free leaves its voucher as credit, spent next.
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
    SendVoucher,
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
    reserved: int = 0  # credit promised to requests in flight

    def rate(self, seconds: float, lane: str | None = None) -> float:
        """Bytes/s over the window, of one lane or both."""
        return (self.window[lane] if lane else sum(self.window.values())) / seconds

    def payment(self, cid: str, index: int, chunk: int) -> tuple[dict[str, str], int]:
        """The payment headers of one request and the credit it takes (none when free)."""
        if self.channel is None or self.bid is None:
            return {}, 0
        price = math.ceil(chunk * (self.clearing or parse_amount(self.bid, BTT_LOCAL)) / MIB)
        headers = {"Atlas-Bid": self.bid}
        if self.vouchers - self.charged - self.reserved < price:
            action = self.channel.pay(price, int(time.time()))[1]
            assert isinstance(action, SendVoucher)
            headers["Atlas-Voucher"] = action.voucher.to_header()
            self.vouchers += price
        else:
            terms, key = self.channel.terms, self.key
            headers[CREDIT_HEADER] = CreditSpend.create(
                key, domain=terms.domain, channel_id=terms.channel_id,
                content_id=bytes.fromhex(cid), index=index, issued_at=int(time.time()),
                nonce=os.urandom(16),
            ).to_header()  # fmt: skip
        self.reserved += price
        return headers, price


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
                status, body, got = await get_chunk(http, edge, cid, index, headers)
                r.reserved -= price
                r.statuses[status] += 1
                r.clearing = int(got.get("Atlas-Clearing-Price", r.clearing))
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
