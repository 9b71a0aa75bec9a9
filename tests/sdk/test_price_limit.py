"""``--max-price`` bounds what a full chunk costs, the quote's fixed part per chunk included.

The limit used to compare only a quote's price per MiB: a provider quoting a tiny price per
MiB and a huge price per chunk passed it. Now the quote's price for a full chunk of the
content is compared with the limit's price for the same bytes. The provider is an aiohttp
server on 127.0.0.1 answering every chunk request with a 402 and a signed quote; the payer
records what it is asked to pay and pays nothing.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from requester.channel_manager import NewChannelAllowance
from requester.chunk_client import ChunkClient, ProviderFault
from requester.protocol import (
    BTT_LOCAL,
    ContentVerifier,
    CreditSpend,
    NodeKey,
    PayerKey,
    Quote,
    Voucher,
    b64url_encode,
)
from requester.protocol.quote import MIB, chunk_price
from tests.conftest import EDGE_SEED, make_head, make_quote

LIMIT = BTT_LOCAL.one // 1000
"""0.001 BTT per MiB."""
HEAD = make_head(NodeKey(EDGE_SEED), chunk_size=MIB // 4)
FULL = chunk_price(0, LIMIT, HEAD.chunk_size)
"""The limit's price for a full chunk of HEAD's content."""


class Refused(Exception):
    """Raised by the payer: the quote passed the limit and payment was asked."""


class RecordingPayer:
    def __init__(self) -> None:
        self.asked: list[int] = []

    async def pay(self, quote: Quote, cost: int, now: int,
                  allowance: NewChannelAllowance | None = None) -> Voucher:  # fmt: skip
        self.asked.append(cost)
        raise Refused(cost)

    def credit_spend(self, channel_id: bytes, content_id: bytes, index: int,
                     now: int) -> CreditSpend:  # fmt: skip
        raise AssertionError("no credit was ever left")


@pytest.fixture
async def provider() -> AsyncIterator[tuple[str, dict[str, int]]]:
    """``(url, prices)``: set ``prices["per_chunk"]`` and ``["per_mib"]`` of its quote."""
    prices = {"per_chunk": 0, "per_mib": LIMIT}

    async def chunk(request: web.Request) -> web.Response:
        now = int(time.time())
        quote = make_quote(NodeKey.generate(), PayerKey.generate().address,
                           content_id=HEAD.content_id, price_per_chunk=prices["per_chunk"],
                           price_per_mib=prices["per_mib"], valid_from=now - 60,
                           valid_until=now + 600)  # fmt: skip
        headers = {"Atlas-Quote": b64url_encode(quote.encode()),
                   "Atlas-Price": str(quote.chunk_price(HEAD.chunk_size))}  # fmt: skip
        return web.Response(status=402, headers=headers)

    app = web.Application()
    app.router.add_get("/v1/chunk/{content_id}/{index}", chunk)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", prices
    await runner.cleanup()


async def _ask(url: str, per_chunk_limit: int = 0) -> tuple[list[int], Exception]:
    """What the payer was asked to pay, and how the request ended."""
    payer = RecordingPayer()
    async with aiohttp.ClientSession() as session:
        client = (  # the keyword only when used: the file also runs against the old SDK
            ChunkClient(session, payer, max_price_per_mib=LIMIT,
                        max_price_per_chunk=per_chunk_limit)
            if per_chunk_limit else ChunkClient(session, payer, max_price_per_mib=LIMIT)
        )  # fmt: skip
        with pytest.raises((ProviderFault, Refused)) as caught:
            await client.get(url, ContentVerifier(HEAD), 0)
    return payer.asked, caught.value


async def test_a_huge_price_per_chunk_behind_a_tiny_one_per_mib_is_refused(
    provider: tuple[str, dict[str, int]],
) -> None:
    url, prices = provider
    prices.update(per_chunk=BTT_LOCAL.one, per_mib=1)
    asked, ended = await _ask(url)
    assert asked == []
    assert isinstance(ended, ProviderFault)
    assert "for a full 262144-byte chunk (1 BTT per chunk" in ended.reason, ended.reason
    assert "is above the limit of 0.00025 BTT (0.001 BTT/MiB)" in ended.reason, ended.reason


async def test_a_full_chunk_at_the_limit_is_paid(provider: tuple[str, dict[str, int]]) -> None:
    url, prices = provider
    for per_chunk, per_mib in ((0, LIMIT), (FULL // 2, LIMIT // 2), (FULL, 0)):
        prices.update(per_chunk=per_chunk, per_mib=per_mib)
        assert (await _ask(url))[0] == [FULL], (per_chunk, per_mib)
    prices.update(per_chunk=FULL // 2 + 1, per_mib=LIMIT // 2)
    assert (await _ask(url))[0] == []


async def test_a_limit_with_a_price_per_chunk_counts_it_too(
    provider: tuple[str, dict[str, int]],
) -> None:
    url, prices = provider
    prices.update(per_chunk=7, per_mib=LIMIT)
    assert (await _ask(url, per_chunk_limit=7))[0] == [FULL + 7]
    assert (await _ask(url, per_chunk_limit=6))[0] == []
