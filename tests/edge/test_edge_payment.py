"""Paying an edge per chunk: 402 and quote, vouchers, refusals, settlement."""

from __future__ import annotations

import asyncio
import json
import subprocess
from dataclasses import replace
from pathlib import Path

import aiohttp

from requester.ledger_client import LedgerClient
from requester.protocol import PayerKey, Quote, b64url_decode
from tests.edge.edge_client import fetch, get_chunk
from tests.edge.paying import credit_header, open_channel, voucher_header
from tests.origin_server import pattern
from tests.processes import ATLAS, Running, start_edge

CHUNK = 256 * 1024


async def test_unpaid_chunk_gets_402_with_a_signed_quote(
    origin: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{CHUNK}")
        status, body, headers = await get_chunk(
            session, paid_edge.url, fetched.info["content_id"], 0
        )
        async with session.get(f"{paid_edge.url}/v1/info") as r:
            info = await r.json()
    assert status == 402
    assert json.loads(body)["status"] == 402
    quote = Quote.decode(b64url_decode(headers["Atlas-Quote"], 400, "quote"))
    assert quote.content_id.hex() == fetched.info["content_id"]
    assert quote.edge_id.hex() == info["node_id"]
    assert str(quote.payee) == info["payee"]
    assert quote.chunk_price(CHUNK) == int(headers["Atlas-Price"])


async def test_voucher_pays_for_a_chunk_and_replays_are_refused(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{2 * CHUNK}")
        cid = fetched.info["content_id"]
        _, _, quoted = await get_chunk(session, paid_edge.url, cid, 0)
        price = int(quoted["Atlas-Price"])
        channel = await open_channel(session, ledger.url, paid_edge.url)
        header = voucher_header(channel, price)
        ok = await get_chunk(session, paid_edge.url, cid, 0, {"Atlas-Voucher": header})
        replay = await get_chunk(session, paid_edge.url, cid, 1, {"Atlas-Voucher": header})
        short = await get_chunk(
            session, paid_edge.url, cid, 1, {"Atlas-Voucher": voucher_header(channel, price // 2)}
        )
        garbage = await get_chunk(session, paid_edge.url, cid, 1, {"Atlas-Voucher": "!!!"})
    assert ok[0] == 200 and ok[1] == pattern(0, CHUNK) and ok[2]["Atlas-Paid-By"] == "voucher"
    assert replay[0] == 409 and json.loads(replay[1])["type"].endswith("stale_voucher")
    assert short[0] == 402 and json.loads(short[1])["type"].endswith("underpaid")
    assert garbage[0] == 400


async def test_prepaid_credit_serves_without_a_new_voucher(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{3 * CHUNK}")
        cid = fetched.info["content_id"]
        _, _, quoted = await get_chunk(session, paid_edge.url, cid, 0)
        price = int(quoted["Atlas-Price"])
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, paid_edge.url, key=key)
        first = await get_chunk(
            session, paid_edge.url, cid, 0, {"Atlas-Voucher": voucher_header(channel, 3 * price)}
        )
        t = channel.terms
        second = await get_chunk(session, paid_edge.url, cid, 1, credit_header(key, t, cid, 1))
        third = await get_chunk(session, paid_edge.url, cid, 2, credit_header(key, t, cid, 2))
        fourth = await get_chunk(session, paid_edge.url, cid, 0, credit_header(key, t, cid, 0))
    assert [first[0], second[0], third[0]] == [200, 200, 200]
    assert second[2]["Atlas-Paid-By"] == "credit"
    assert fourth[0] == 402


async def test_channel_to_another_payee_is_refused(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{CHUNK}")
        other = PayerKey.generate().address
        channel = await open_channel(session, ledger.url, paid_edge.url, payee=other)
        status, body, _ = await get_chunk(
            session, paid_edge.url, fetched.info["content_id"], 0,
            {"Atlas-Voucher": voucher_header(channel, 10**16)},
        )  # fmt: skip
    assert status == 400 and json.loads(body)["type"].endswith("wrong_binding")


async def test_64_copies_of_one_voucher_are_credited_once(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{CHUNK}")
        cid = fetched.info["content_id"]
        _, _, quoted = await get_chunk(session, paid_edge.url, cid, 0)
        channel = await open_channel(session, ledger.url, paid_edge.url)
        header = voucher_header(channel, int(quoted["Atlas-Price"]))
        results = await asyncio.gather(
            *(
                get_chunk(session, paid_edge.url, cid, 0, {"Atlas-Voucher": header})
                for _ in range(64)
            )
        )
    statuses = sorted(r[0] for r in results)
    assert statuses.count(200) == 1
    assert set(statuses) <= {200, 409, 429}


async def test_edge_redeems_on_shutdown_and_reports_earnings(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    data_dir = tmp_path / "settling-edge"
    edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
    try:
        async with aiohttp.ClientSession() as session:
            fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{2 * CHUNK}")
            cid = fetched.info["content_id"]
            _, _, quoted = await get_chunk(session, edge.url, cid, 0)
            price = int(quoted["Atlas-Price"])
            channel = await open_channel(session, ledger.url, edge.url)
            for index in range(2):
                status, _, _ = await get_chunk(
                    session, edge.url, cid, index, {"Atlas-Voucher": voucher_header(channel, price)}
                )
                assert status == 200
    finally:
        assert edge.stop() == 0
    async with aiohttp.ClientSession() as session:
        view = await LedgerClient(ledger.url, session).channel(channel.terms.channel_id)
    assert int(view["redeemed"]) == 2 * price == channel.issued
    result = await asyncio.to_thread(
        subprocess.run,
        [ATLAS, "edge", "earnings", "--data-dir", str(data_dir), "--json"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    earnings = json.loads(result.stdout)
    assert earnings["paid"] == earnings["redeemed"] == str(2 * price)
    assert earnings["unredeemed"] == "0"


async def test_unknown_channel_is_refused(origin: Running, ledger: Running,
                                          paid_edge: Running) -> None:  # fmt: skip
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/10")
        cid = fetched.info["content_id"]
        key = PayerKey.generate()
        channel = await open_channel(session, ledger.url, paid_edge.url, key=key)
        made_up = replace(channel.terms, channel_id=bytes([0xAB]) * 32)
        status, body, _ = await get_chunk(
            session, paid_edge.url, cid, 0, credit_header(key, made_up, cid, 0)
        )
    assert status == 400 and json.loads(body)["type"].endswith("wrong_binding")
