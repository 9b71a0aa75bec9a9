"""A replica edge asked for many chunks at once keeps one replica and every chunk.

Edge B, whose tracker is edge A, does not hold A's content yet. Eight paid
requests (a voucher each, on a channel each) arrive at once for its eight
chunks: all of them go looking for the content, and B buys each chunk from A.
Before the fix every concurrent look-up built its own replica entry and the
last one found was kept: a request holding another entry could join a pull
stored into a third, wait 30 s for a chunk its entry never learned of and get
``503 chunk_not_ready``, and B ended with chunks it had bought but did not list
as held (here 1 of 8).
"""

from __future__ import annotations

import asyncio
import json

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import ContentVerifier, TronAddress, b64url_decode
from tests.edge.conftest import Pair
from tests.edge.edge_client import fetch, get_chunk, wait_for_seal
from tests.edge.paying import FUNDS, edge_info, open_channel, voucher_header
from tests.edge.test_edge_replication import CHUNK, FULL_CHUNK_PRICE, listed
from tests.origin_server import pattern
from tests.processes import Running

CHUNKS = 8
SIZE = CHUNKS * CHUNK - 5
"""Eight chunks, the last one short; a size no other test fetches."""


async def test_concurrent_requests_for_a_new_replica_get_every_chunk(
    origin: Running, ledger: Running, pair: Pair
) -> None:
    async with aiohttp.ClientSession() as session:
        b_payee = TronAddress.parse((await edge_info(session, pair.b.url))["payee"])
        await LedgerClient(ledger.url, session).faucet(b_payee, FUNDS)
        fetched = await fetch(session, pair.a.url, f"{origin.url}/bytes/{SIZE}")
        cid = fetched.info["content_id"]
        await wait_for_seal(session, pair.a.url, cid)
        await listed(session, pair.a.url, cid, pair.a.url)

        channels = await asyncio.gather(
            *(open_channel(session, ledger.url, pair.b.url) for _ in range(CHUNKS))
        )
        paid = [{"Atlas-Voucher": voucher_header(c, FULL_CHUNK_PRICE)} for c in channels]
        answers = await asyncio.gather(
            *(get_chunk(session, pair.b.url, cid, i, paid[i]) for i in range(CHUNKS))
        )
        verifier = ContentVerifier(fetched.head)
        for index, (status, body, headers) in enumerate(answers):
            assert status == 200, (index, status, body[:300])
            assert headers["Atlas-Paid-By"] == "voucher"
            verifier.verify_chunk(b64url_decode(headers["Atlas-Chunk"], 200, "chunk"), body)
            assert body == pattern(index * CHUNK, min(CHUNK, SIZE - index * CHUNK))

        info = await wait_for_seal(session, pair.b.url, cid)
        assert info["chunks_available"] == CHUNKS, json.dumps(info)[:300]
