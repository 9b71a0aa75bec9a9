"""An edge selling its upload capacity (docs/market.md): a paying bidder and a free requester
on one edge of 4 MiB/s, 4 slots (1 free), a reserve of 1 BTT/MiB and 1 s rounds.

The two requesters come from different loopback addresses (127.0.0.2 and
127.0.0.3), as the free lane is shared by address. Runs are a few seconds; the
rates by bid are measured by the scenario tests and the benchmark, not here.
"""

from __future__ import annotations

import asyncio
import math
import secrets
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.protocol import BTT_LOCAL, PayerChannel, Quote, b64url_decode
from tests.edge.edge_client import fetch, get_chunk, metrics
from tests.edge.paying import channel_earnings, earnings, edge_info, open_channel, voucher_header
from tests.edge.tunnel_client import echo_through, new_id, opened, target_of, tunnel_info
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
CHUNKS = 16
MIB = 1 << 20
BTT = BTT_LOCAL.one
MARKET = ["--upload-capacity", "4MiB/s", "--slots", "4", "--free-slots", "1", "--reserve", "1",
          "--round-seconds", "1", "--free-mib", "0"]  # fmt: skip


@pytest.fixture(scope="module")
def market_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("market-edge")


@pytest.fixture(scope="module")
def market_edge(market_dir: Path, ledger: Running) -> Iterator[Running]:
    running = start_edge(market_dir, ledger.url, *MARKET)
    yield running
    running.stop()


def client(source: str) -> aiohttp.ClientSession:
    """A session whose connections come from ``source`` (a loopback address of its own)."""
    return aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(source, 0)))


async def wait_round(session: aiohttp.ClientSession, edge: str, after: int) -> dict[str, object]:
    """The edge's market once a round later than ``after`` has cleared."""
    for _ in range(100):
        market: dict[str, object] = (await edge_info(session, edge))["market"]
        if int(str(market["round"])) > after:
            return market
        await asyncio.sleep(0.05)
    raise AssertionError("no round cleared in 5 s")


async def take_all(session: aiohttp.ClientSession, edge: str, cid: str,
                   headers: object = None) -> list[tuple[int, bytes, dict[str, str]]]:  # fmt: skip
    """Every chunk of ``cid``, four requests at a time; ``headers(index)`` for each."""
    out: list[tuple[int, bytes, dict[str, str]]] = [(0, b"", {})] * CHUNKS
    todo = iter(range(CHUNKS))

    async def worker() -> None:
        for index in todo:
            extra = headers(index) if callable(headers) else {}
            out[index] = await get_chunk(session, edge, cid, index, extra)

    await asyncio.gather(*(worker() for _ in range(4)))
    return out


async def test_a_bidder_wins_a_paid_slot_at_the_clearing_price_and_a_free_requester_is_served(
    origin: Running, ledger: Running, market_edge: Running, market_dir: Path
) -> None:
    edge = market_edge.url
    async with client("127.0.0.2") as payer, client("127.0.0.3") as free:
        fetched = await fetch(payer, edge, f"{origin.url}/bytes/{CHUNKS * CHUNK}")
        cid = fetched.info["content_id"]
        channel: PayerChannel = await open_channel(payer, ledger.url, edge)
        price_per_chunk = BTT // 4  # 1 BTT/MiB (the reserve) for 256 KiB

        def paying(index: int) -> dict[str, str]:
            return {"Atlas-Bid": "2", "Atlas-Voucher": voucher_header(channel, price_per_chunk)}

        before = (await edge_info(payer, edge))["market"]
        first = await get_chunk(payer, edge, cid, 0, paying(0))  # bids; nobody has won yet
        market = await wait_round(payer, edge, int(before["round"]))
        paid, free_answers = await asyncio.gather(
            take_all(payer, edge, cid, paying), take_all(free, edge, cid)
        )
        report = await earnings(market_dir)
    assert first[0] == 200 and first[2]["Atlas-Lane"] == "free"
    assert first[2]["Atlas-Paid-By"] == "free" and first[2]["Atlas-Price"] == "0"
    assert market["winners"] == 1 and market["clearing_price"] == str(BTT)
    assert market["capacity"] == 4 * MIB and market["reserve"] == str(BTT)
    for index, (status, body, headers) in enumerate(free_answers):
        assert status == 200, body[:300]  # never a 402: slowed, not refused
        assert body == pattern(index * CHUNK, CHUNK)
        assert headers["Atlas-Paid-By"] == "free" and headers["Atlas-Lane"] == "free"
        assert headers["Atlas-Price"] == "0" and headers["Atlas-Clearing-Price"] == str(BTT)
    lanes = [h["Atlas-Lane"] for _, _, h in paid]
    assert all(s == 200 for s, _, _ in paid) and "paid" in lanes
    paid_bytes = 0
    for _status, body, headers in paid:
        if headers["Atlas-Lane"] == "paid":
            assert headers["Atlas-Paid-By"] == "voucher"
            assert int(headers["Atlas-Price"]) == math.ceil(len(body) * BTT / MIB)
            paid_bytes += len(body)
        else:
            assert headers["Atlas-Paid-By"] == "free" and headers["Atlas-Price"] == "0"
    row = channel_earnings(report, channel.terms.channel_id)
    assert row is not None
    # What the channel was charged is the clearing price times the paid MiB, within a chunk.
    assert abs(int(row["served"]) - paid_bytes * BTT // MIB) <= price_per_chunk
    assert int(row["paid"]) >= int(row["served"])  # the rest stays credit on the channel


async def test_bids_under_the_reserve_or_not_covered_get_every_chunk_free(
    origin: Running, ledger: Running, market_edge: Running
) -> None:
    """And the metrics show the market. A bid of 20 BTT/MiB is not covered by a 10 BTT
    channel: one slot (1 MiB/s) for one round (1 s) would cost 20 BTT."""
    edge = market_edge.url
    async with client("127.0.0.4") as low, client("127.0.0.5") as rich:
        fetched = await fetch(low, edge, f"{origin.url}/bytes/{4 * CHUNK}")
        cid = fetched.info["content_id"]
        channel = await open_channel(low, ledger.url, edge)
        unfunded = await open_channel(rich, ledger.url, edge)
        answers = []
        start = int((await edge_info(low, edge))["market"]["round"])
        for index in range(4):  # across a round's end: neither bid ever wins
            bid = {"Atlas-Bid": "0.5", "Atlas-Voucher": voucher_header(channel, BTT // 8)}
            answers.append(await get_chunk(low, edge, cid, index, bid))
            bid = {"Atlas-Bid": "20", "Atlas-Voucher": voucher_header(unfunded, BTT // 8)}
            answers.append(await get_chunk(rich, edge, cid, index, bid))
            await asyncio.sleep(0.35)
        market = (await edge_info(low, edge))["market"]
        malformed = await get_chunk(low, edge, cid, 0, {"Atlas-Bid": "lots"})
        unpaid_bid = await get_chunk(low, edge, cid, 0, {"Atlas-Bid": "2"})
        async with low.get(f"{edge}/metrics") as r:
            exported = await r.text()
    assert [(s, h["Atlas-Lane"], h["Atlas-Paid-By"], h["Atlas-Price"]) for s, _, h in answers] == [
        (200, "free", "free", "0")
    ] * 8
    assert market["round"] > start and market["winners"] == 0
    assert malformed[0] == 400 and b"malformed_message" in malformed[1]
    # A bid without payment is how a requester asks the way to pay: a quote at the clearing
    # price (the reserve, nobody having won), for the chunk at that price.
    assert unpaid_bid[0] == 402
    quote = Quote.decode(b64url_decode(unpaid_bid[2]["Atlas-Quote"], 400, "quote"))
    assert quote.price_per_mib == BTT and quote.price_per_chunk == 0
    assert unpaid_bid[2]["Atlas-Price"] == str(BTT // 4)
    assert "atlas_edge_market_reserve_btt_per_mib 1.0" in exported  # --reserve 1
    for series in ("atlas_edge_market_clearing_price_btt_per_mib", "atlas_edge_market_winners",
                   'atlas_edge_lane_bytes_total{lane="free"}'):  # fmt: skip
        assert series in exported


async def test_without_capacity_there_is_no_market_and_chunks_still_name_their_lane(
    origin: Running, ledger: Running, paid_edge: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        fetched = await fetch(session, paid_edge.url, f"{origin.url}/bytes/{CHUNK}")
        cid = fetched.info["content_id"]
        info = await edge_info(session, paid_edge.url)
        unpaid = await get_chunk(session, paid_edge.url, cid, 0, {"Atlas-Bid": "5"})
        channel = await open_channel(session, ledger.url, paid_edge.url)
        price = int(unpaid[2]["Atlas-Price"])
        ok = await get_chunk(session, paid_edge.url, cid, 0,
                             {"Atlas-Voucher": voucher_header(channel, price)})  # fmt: skip
    market = info["market"]
    assert market["capacity"] == 0 and market["clearing_price"] == info["price_per_mib"]
    assert market["round"] == 0 and market["winners"] == 0
    assert unpaid[0] == 402  # exactly as before: fixed price, a bid changes nothing
    assert ok[0] == 200 and ok[2]["Atlas-Lane"] == "paid" and ok[2]["Atlas-Price"] == str(price)
    assert ok[2]["Atlas-Clearing-Price"] == info["price_per_mib"]


async def test_tunnel_bytes_go_through_the_free_lane_of_the_same_capacity(
    tmp_path: Path, ledger: Running, echo: Running
) -> None:
    edge = start_edge(tmp_path / "tunnel-market", ledger.url, *MARKET[:-2], "--free-mib", "1")
    try:
        async with aiohttp.ClientSession() as session:
            tunnel_url, _ = await tunnel_info(session, edge.url)
            async with opened(tunnel_url, target_of(echo.url), new_id()) as tunnel:
                data = secrets.token_bytes(200_000)
                assert await echo_through(tunnel, data) == data
            samples = await metrics(session, edge.url)
    finally:
        edge.stop()
    assert samples['atlas_edge_lane_bytes_total{lane="free"}'] == 400_000  # both ways
    assert samples.get('atlas_edge_lane_bytes_total{lane="paid"}', 0) == 0
