"""An edge serving content another edge fetched: found through a tracker, paid for, verified.

Edge A fetches from the origin; edge B, whose tracker is A, is asked for the
same content id. B learns from A's tracker that A provides it, takes the signed
head from A, and fetches each chunk it lacks from A the first time a client
asks, paying A with vouchers from its own wallet (the SDK's ChunkClient and
ChannelManager) and checking every chunk against A's statements before it
serves it. The client pays B; B pays A; the ledger sees both.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import (
    ContentVerifier,
    ManifestHead,
    NodeKey,
    PayerChannel,
    ProviderRecord,
    TronAddress,
    b64url_decode,
    b64url_encode,
)
from tests.edge.conftest import Pair
from tests.edge.edge_client import (
    LIMIT,
    fetch,
    get_chunk,
    metrics,
    problem,
    request,
    wait_for_seal,
)
from tests.edge.paying import (
    FUNDS,
    channel_earnings,
    credit_left_by_payer,
    earnings,
    edge_info,
    issued_by_payer,
    open_channel,
    voucher_header,
)
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
SIZE = 3 * CHUNK + 11
"""Four chunks, the last one short; a size no other test fetches, so origin hits are ours."""
FULL_CHUNK_PRICE = 10**15 // 4  # the default 0.001 BTT per MiB, for 256 KiB


async def listed(session: aiohttp.ClientSession, tracker: str, cid: str, provider: str) -> None:
    """Wait until ``tracker`` lists ``provider`` for ``cid`` (announcing is asynchronous)."""
    async with asyncio.timeout(20):
        while True:
            async with session.get(f"{tracker}/v1/providers/{cid}") as r:
                answer = await r.json()
            if provider in {p["url"] for p in answer["providers"]}:
                return
            await asyncio.sleep(0.05)


async def paid_download(session: aiohttp.ClientSession, edge: str, head: ManifestHead,
                         channel: PayerChannel) -> tuple[bytes, int]:  # fmt: skip
    """Every chunk of ``head``'s content from ``edge``, verified; each paid at the price asked."""
    cid = head.content_id.hex()
    verifier = ContentVerifier(head)
    out = bytearray()
    spent = 0
    index = 0
    while True:
        status, body, quoted = await get_chunk(session, edge, cid, index)
        if status == 416:
            break
        assert status == 402, (index, status, body[:300])
        price = int(quoted["Atlas-Price"])
        paid = await get_chunk(
            session, edge, cid, index, {"Atlas-Voucher": voucher_header(channel, price)}
        )
        assert paid[0] == 200 and paid[2]["Atlas-Paid-By"] == "voucher", paid[1][:300]
        verifier.verify_chunk(b64url_decode(paid[2]["Atlas-Chunk"], 200, "chunk"), paid[1])
        out += paid[1]
        spent += price
        index += 1
    info = await wait_for_seal(session, edge, cid)
    verifier.accept_seal(b64url_decode(info["seal"], 200, "seal"))
    verifier.check_complete()
    return bytes(out), spent


async def test_edge_replicates_from_another_edge_paying_it(
    origin: Running, ledger: Running, pair: Pair
) -> None:
    url = f"{origin.url}/bytes/{SIZE}"
    async with aiohttp.ClientSession() as session:
        ledger_client = LedgerClient(ledger.url, session)
        a_payee = (await edge_info(session, pair.a.url))["payee"]
        b_payee = TronAddress.parse((await edge_info(session, pair.b.url))["payee"])
        await ledger_client.faucet(b_payee, FUNDS)
        fetched = await fetch(session, pair.a.url, url)
        cid = fetched.info["content_id"]
        await wait_for_seal(session, pair.a.url, cid)
        await listed(session, pair.a.url, cid, pair.a.url)

        status, body, _ = await request(session, "GET", f"{pair.b.url}/v1/content/{cid}")
        assert status == 200, body[:300]
        head = ManifestHead.decode(b64url_decode(json.loads(body)["head"], LIMIT, "head"))
        assert head.content_id.hex() == cid
        assert head.edge_id.hex() == (await edge_info(session, pair.a.url))["node_id"]

        channel = await open_channel(session, ledger.url, pair.b.url)
        data, client_paid = await paid_download(session, pair.b.url, head, channel)
        assert data == pattern(0, SIZE)

        async with session.get(f"{origin.url}/hits") as r:
            assert (await r.json())[f"/bytes/{SIZE}"] == 1, "B must not go to the origin"
        b_pays = [c for c in await ledger_client.channels(b_payee) if c["payer"] == str(b_payee)]
        assert len(b_pays) == 1
        to_a = b_pays[0]
        assert (to_a["payer"], to_a["payee"]) == (str(b_payee), a_payee)
        a_row = channel_earnings(await earnings(pair.a_dir), bytes.fromhex(to_a["channel_id"]))
        assert a_row is not None
        a_earned = int(a_row["paid"])
        # Same prices at both edges and incompressible bytes: A served B what B served the
        # client. B pays ahead for a full-size chunk, so a short last chunk leaves A less
        # than one chunk's price as credit, never more.
        assert int(a_row["served"]) == client_paid
        assert client_paid <= a_earned < client_paid + FULL_CHUNK_PRICE
        assert issued_by_payer(pair.b_dir, bytes.fromhex(to_a["channel_id"])) == a_earned
        a_metrics = await metrics(session, pair.a.url)
        assert a_metrics['atlas_edge_chunks_total{paid_by="voucher"}'] == 4
        await listed(session, pair.a.url, cid, pair.b.url)  # B now provides it too

        assert pair.a.stop() == 0  # A redeems what B paid it on the way out
        view = await ledger_client.channel(bytes.fromhex(to_a["channel_id"]))
        assert int(view["redeemed"]) == a_earned
        assert await ledger_client.balance(TronAddress.parse(a_payee)) == a_earned
        assert await ledger_client.balance(b_payee) == FUNDS - int(view["deposit"])
        assert pair.b.stop() == 0  # B keeps the credit it left with A for after a restart
        credit = credit_left_by_payer(pair.b_dir, bytes.fromhex(to_a["channel_id"]))
        assert credit == a_earned - client_paid > 0


async def test_edge_without_funds_answers_503_not_402(
    origin: Running, ledger: Running, pair: Pair
) -> None:
    # B's wallet is empty: it cannot open a channel to A. B buys a chunk it lacks only
    # for a request that paid first (an unpaid one gets the 402, and B pays nobody); a
    # paying client must learn that the chunk is not available here now, its payment
    # stays credit with B, and A earns nothing.
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, pair.a.url, f"{origin.url}/bytes/{CHUNK}")
        cid = fetched.info["content_id"]
        await wait_for_seal(session, pair.a.url, cid)
        await listed(session, pair.a.url, cid, pair.a.url)
        unpaid = await get_chunk(session, pair.b.url, cid, 0)
        assert unpaid[0] == 402 and int(unpaid[2]["Atlas-Price"]) == FULL_CHUNK_PRICE
        channel = await open_channel(session, ledger.url, pair.b.url)
        paying = {"Atlas-Voucher": voucher_header(channel, FULL_CHUNK_PRICE)}
        answer = await get_chunk(session, pair.b.url, cid, 0, paying)
        beyond = await get_chunk(session, pair.b.url, cid, 1)
    detail = problem(answer, 503, "chunk_not_ready")
    assert "wallet balance is 0 BTT" in detail, detail
    assert answer[2]["Retry-After"] == "1"
    # B holds none of the chunks, but knows from A's seal where the content ends.
    assert problem(beyond, 416, "beyond_end") == "content has 1 chunks; 1 is past the end"
    assert (await earnings(pair.a_dir))["channels"] == []
    [credit] = (await earnings(pair.b_dir))["channels"]
    assert (int(credit["paid"]), int(credit["served"])) == (FULL_CHUNK_PRICE, 0)


async def test_hostile_provider_is_skipped(
    ledger: Running, odd_origin: Running, tmp_path: Path
) -> None:
    # Anyone can announce a signed record naming any URL. A provider that answers
    # nonsense must leave the content unknown here (404), not break the request.
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        cid = bytes(range(32))
        record = ProviderRecord.create(NodeKey.generate(), cid, odd_origin.url, 2_000_000_000)
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{edge.url}/v1/announce", json={"records": [b64url_encode(record.encode())]}
            ) as r:
                assert r.status == 200 and (await r.json())["accepted"] == 0  # too far ahead
            soon = ProviderRecord.create(NodeKey.generate(), cid, odd_origin.url,
                                         int(time.time()) + 600)  # fmt: skip
            async with session.post(
                f"{edge.url}/v1/announce", json={"records": [b64url_encode(soon.encode())]}
            ) as r:
                assert r.status == 200 and (await r.json())["accepted"] == 1
            content = await request(session, "GET", f"{edge.url}/v1/content/{cid.hex()}")
            chunk = await get_chunk(session, edge.url, cid.hex(), 0)
    finally:
        edge.stop()
    assert problem(content, 404, "not_found") == "this edge does not hold that content"
    assert problem(chunk, 404, "not_found") == "this edge does not hold that content"
