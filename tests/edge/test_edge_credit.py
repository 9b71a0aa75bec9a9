"""Prepaid credit on a real edge: only its payer spends it, each spend once (issue 13, defect 3).

Channel ids are public (the ledger lists them, the proxy's status page shows
them), so a stranger who knows one must get 402 and leave the payer's credit
as it was. The payer's own spends are signed (``Atlas-Credit``), bound to one
chunk, fresh, and honoured once; a voucher that spends credit (one overtaken by
a larger voucher) does so once too.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import aiohttp
import pytest

from requester.protocol import PayerChannel, PayerKey, Quote, b64url_decode
from tests.edge.edge_client import fetch, get_chunk
from tests.edge.paying import (
    channel_earnings,
    credit_header,
    earnings,
    open_channel,
    voucher_header,
)
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024


def code(answer: tuple[int, bytes, dict[str, str]]) -> tuple[int, str]:
    status, body, _ = answer
    return status, str(json.loads(body)["type"]).rsplit("/", 1)[-1] if status != 200 else "ok"


async def test_a_stranger_knowing_the_channel_id_gets_402_and_the_credit_stays(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as payer, aiohttp.ClientSession() as stranger:
        fetched = await fetch(payer, paid_edge.url, f"{origin.url}/bytes/{4 * CHUNK}?t=credit")
        cid = fetched.info["content_id"]
        _, _, quoted = await get_chunk(payer, paid_edge.url, cid, 0)
        price = int(quoted["Atlas-Price"])
        key = PayerKey.generate()
        channel = await open_channel(payer, ledger.url, paid_edge.url, key=key)
        first = await get_chunk(payer, paid_edge.url, cid, 0,
                                {"Atlas-Voucher": voucher_header(channel, 3 * price)})  # fmt: skip
        assert first[0] == 200  # two chunks' worth of credit left on the channel
        t = channel.terms

        # A stranger who read the channel id off the ledger: the old bare header, and a
        # spend signed with its own key. Both 402, with a quote to pay its own way.
        bare = await get_chunk(stranger, paid_edge.url, cid, 1,
                               {"Atlas-Channel": channel.terms.channel_id.hex()})  # fmt: skip
        forged = await get_chunk(stranger, paid_edge.url, cid, 1,
                                 credit_header(PayerKey.generate(), t, cid, 1))  # fmt: skip
        assert code(bare) == (402, "credit_proof_required")
        assert code(forged) == (402, "credit_not_payer")
        assert (
            Quote.decode(b64url_decode(bare[2]["Atlas-Quote"], 400, "quote")).content_id.hex()
            == cid
        )

        # The payer's credit is whole: exactly two chunks, then it is used up.
        own = credit_header(key, t, cid, 1)
        second = await get_chunk(payer, paid_edge.url, cid, 1, own)
        assert code(second) == (200, "ok") and second[1] == pattern(CHUNK, CHUNK)
        assert second[2]["Atlas-Paid-By"] == "credit"
        # Someone who saw that header on the wire can use it neither again nor elsewhere.
        assert code(await get_chunk(stranger, paid_edge.url, cid, 1, own)) == (
            409, "credit_spend_replayed",
        )  # fmt: skip
        assert code(await get_chunk(stranger, paid_edge.url, cid, 2, own)) == (
            400, "wrong_binding",
        )  # fmt: skip
        stale = credit_header(key, t, cid, 2, issued_at=int(time.time()) - 3600)
        assert code(await get_chunk(payer, paid_edge.url, cid, 2, stale)) == (
            402, "credit_spend_expired",
        )  # fmt: skip
        third = await get_chunk(payer, paid_edge.url, cid, 2, credit_header(key, t, cid, 2))
        assert code(third) == (200, "ok")
        used_up = await get_chunk(payer, paid_edge.url, cid, 3, credit_header(key, t, cid, 3))
        assert code(used_up) == (402, "underpaid")


async def test_a_voucher_spends_credit_only_once(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    """A smaller voucher overtaken by a larger one is served from credit, once: a copy
    seen on the wire must not spend the payer's credit again."""
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{4 * CHUNK}?t=vcopy")
        cid = fetched.info["content_id"]
        _, _, quoted = await get_chunk(session, paid_edge.url, cid, 0)
        price = int(quoted["Atlas-Price"])
        channel = await open_channel(session, ledger.url, paid_edge.url)
        smaller = voucher_header(channel, price)  # amount p
        larger = voucher_header(channel, 3 * price)  # amount 4p, sent first
        answers = [
            await get_chunk(session, paid_edge.url, cid, i, {"Atlas-Voucher": v})
            for i, v in ((0, larger), (1, smaller), (2, smaller), (2, larger))
        ]
    assert [code(a) for a in answers] == [
        (200, "ok"), (200, "ok"), (409, "stale_voucher"), (409, "stale_voucher"),
    ]  # fmt: skip
    assert answers[1][2]["Atlas-Paid-By"] == "voucher"


async def paying(session: aiohttp.ClientSession, edge: str, ledger: str,
                 url: str) -> tuple[str, int, PayerKey, PayerChannel]:  # fmt: skip
    """``url`` fetched through ``edge``: its content id, a chunk's price (from a 402), and
    a new payer with a channel to the edge."""
    cid = (await fetch(session, edge, url)).info["content_id"]
    _, _, quoted = await get_chunk(session, edge, cid, 0)
    key = PayerKey.generate()
    channel = await open_channel(session, ledger, edge, key=key)
    return cid, int(quoted["Atlas-Price"]), key, channel


async def test_a_voucher_for_a_chunk_still_arriving_is_kept_when_the_requester_leaves(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    """A requester that gives up on a paid request while the edge waits for the chunk (a
    straggler it raced elsewhere) counts what it paid as credit there: the edge recorded
    the voucher before the wait, so it is, and it pays for the chunk later. Before, the
    voucher was taken only once the chunk came, and lost with the requester."""
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{origin.url}/slow/{40 * CHUNK}?delay=0.01&t=paid-wait"  # ~6 s in all
            cid, price, key, channel = await paying(session, edge.url, ledger.url, url)
            pay = {"Atlas-Voucher": voucher_header(channel, price)}
            with pytest.raises(TimeoutError):  # the chunk is seconds away: the requester leaves
                await asyncio.wait_for(get_chunk(session, edge.url, cid, 39, pay), 0.5)
            books = await earnings(tmp_path / "edge")
            row = channel_earnings(books, channel.terms.channel_id)
            assert row is not None and int(row["paid"]) == price  # recorded, though it left
            while int(row["served"]):  # held until the chunk came and found no one to take it
                await asyncio.sleep(0.2)
                books = await earnings(tmp_path / "edge")
                row = channel_earnings(books, channel.terms.channel_id)
                assert row is not None
            spend = credit_header(key, channel.terms, cid, 39)
            status, body, _ = await get_chunk(session, edge.url, cid, 39, spend)
            assert status == 200 and body == pattern(39 * CHUNK, CHUNK)  # paid by that credit
        books = await earnings(tmp_path / "edge")
        assert channel_earnings(books, channel.terms.channel_id) == {**row, "served": str(price)}
    finally:
        edge.stop()


async def test_a_voucher_sent_with_a_refused_request_is_kept_as_credit(
    origin: Running, ledger: Running, tmp_path: Path
) -> None:
    """A requester counts what it paid ahead and was not charged as credit at the edge,
    whatever the answer: a chunk past the end (416) keeps its voucher too, for a credit
    spend later. Before, the edge dropped it, and the requester's books ran ahead of it."""
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            url = f"{origin.url}/bytes/{4 * CHUNK}?t=refused-voucher"
            cid, price, key, channel = await paying(session, edge.url, ledger.url, url)
            pay = {"Atlas-Voucher": voucher_header(channel, price)}
            assert code(await get_chunk(session, edge.url, cid, 9, pay)) == (416, "beyond_end")
            row = channel_earnings(await earnings(tmp_path / "edge"), channel.terms.channel_id)
            assert row is not None and (int(row["paid"]), int(row["served"])) == (price, 0)
            spend = credit_header(key, channel.terms, cid, 3)
            status, body, _ = await get_chunk(session, edge.url, cid, 3, spend)
            assert status == 200 and body == pattern(3 * CHUNK, CHUNK)  # paid by that credit
    finally:
        edge.stop()
