"""Provider records carry the edge's market terms (issue 16; docs/protocol.md 12.4).

A market edge announces to a tracker edge; the tracker's ``GET /v1/providers`` lists the
signed record and, beside it, the terms decoded from it (the keys of ``/v1/info``'s
``market``). When two bidders push the clearing price over the reserve, the edge signs
its records again and the tracker's copy shows the new price within a few rounds. The
tracker edge itself has no market: its own records say capacity 0 and its fixed price as
both reserve and clearing price. The SDK reads a listed provider's terms from its record.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cdn_edge import announcer
from cdn_edge.tracker import Tracker
from requester.bidding import Bidding, Market
from requester.protocol import BTT_LOCAL, NodeKey, PayerChannel, ProviderRecord, b64url_decode
from requester.protocol.node_advert import Market as AdvertMarket
from requester.protocol.provider_record import MAX_RECORD_BYTES
from requester.tracker_lookup import Listed, tracked
from tests.edge.edge_client import fetch, get_chunk, wait_for_seal
from tests.edge.paying import edge_info, open_channel, voucher_header
from tests.edge.test_edge_market import client
from tests.edge.test_edge_replication import listed
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
MIB = 1 << 20
BTT = BTT_LOCAL.one
MARKET = ["--upload-capacity", "8MiB/s", "--slots", "8", "--free-slots", "2", "--reserve", "1",
          "--round-seconds", "1"]  # fmt: skip
ONE_PAID_SLOT = ["--upload-capacity", "8MiB/s", "--slots", "2", "--free-slots", "1",
                 "--reserve", "0.01", "--round-seconds", "1"]  # fmt: skip
"""Two bidders (0.03 and 0.02 BTT/MiB) for one paid slot: the winner pays 0.02."""


async def _listing(session: aiohttp.ClientSession, tracker: str, cid: str,
                   provider: str) -> dict[str, Any]:  # fmt: skip
    """``provider``'s entry in ``tracker``'s providers of ``cid``."""
    async with session.get(f"{tracker}/v1/providers/{cid}") as r:
        assert r.status == 200
        answer = await r.json()
    [entry] = [p for p in answer["providers"] if p["url"] == provider]
    return dict(entry)


def _verified(entry: dict[str, Any], cid: str) -> ProviderRecord:
    """The entry's record, decoded and its signature checked; the JSON says what it says."""
    record = ProviderRecord.decode(b64url_decode(entry["record"], MAX_RECORD_BYTES, "record"))
    assert record.content_id.hex() == cid and record.url == entry["url"]
    assert record.node_id.hex() == entry["node_id"]
    terms = record.market
    assert terms is not None
    assert entry["market"] == {
        "capacity": terms.capacity, "slots": terms.slots, "free_slots": terms.free_slots,
        "reserve": str(terms.reserve), "clearing_price": str(terms.clearing_price),
        "round_seconds": terms.round_seconds,
    }  # fmt: skip
    return record


async def test_a_tracker_lists_each_providers_signed_terms(
    origin: Running, ledger: Running, edges: tuple[Path, list[Running]]
) -> None:
    tmp, started = edges
    started.append(tracker := start_edge(tmp / "tracker", ledger.url))
    started.append(market := start_edge(tmp / "market", ledger.url, *MARKET,
                                        "--tracker", tracker.url))  # fmt: skip
    async with aiohttp.ClientSession() as session:
        cid = (await fetch(session, market.url, f"{origin.url}/bytes/{4 * CHUNK}?t=terms")
               ).info["content_id"]  # fmt: skip
        await listed(session, tracker.url, cid, market.url)
        sold = await _listing(session, tracker.url, cid, market.url)
        info = (await edge_info(session, market.url))["market"]
        own = (await fetch(session, tracker.url, f"{origin.url}/bytes/{CHUNK}?t=own")
               ).info["content_id"]  # fmt: skip
        await listed(session, tracker.url, own, tracker.url)
        fixed = await _listing(session, tracker.url, own, tracker.url)
        tracker_info = await edge_info(session, tracker.url)
        found = await tracked(session, tracker.url, bytes.fromhex(cid))
    record = _verified(sold, cid)
    assert record.encode()[:4] == b"ATP\x02"
    assert sold["market"] == {
        "capacity": 8 * MIB, "slots": 8, "free_slots": 2, "reserve": str(BTT),
        "clearing_price": str(BTT), "round_seconds": 1,
    }  # fmt: skip
    for key in ("capacity", "slots", "free_slots", "reserve", "clearing_price"):
        assert sold["market"][key] == info[key], key  # what /v1/info says, signed
    assert record.market is not None and record.market.price_per_chunk == 0
    # The SDK takes the signed terms as its first guess of the provider's market.
    assert found == [Listed(market.url, Market(8 * MIB, 1.0, BTT, slots=8))]
    cheap, dear = Bidding(ceiling=BTT // 2), Bidding(ceiling=2 * BTT)
    for bidding in (cheap, dear):
        bidding.learn(market.url, found[0].market)
    assert not cheap.priced_within(market.url) and cheap.candidates(0.0) == []
    assert dear.candidates(0.0) == [market.url] and dear.paying == {market.url}
    _verified(fixed, own)
    price = tracker_info["price_per_mib"]
    assert fixed["market"] == {
        "capacity": 0, "slots": 0, "free_slots": 0, "reserve": price, "clearing_price": price,
        "round_seconds": 0,
    }  # fmt: skip


async def _bid(session: aiohttp.ClientSession, edge: str, channel: PayerChannel, cid: str,
               bid: str, stop: asyncio.Event) -> None:  # fmt: skip
    """Bid ``bid`` BTT/MiB on every request, a few a round, paying a chunk at that bid each."""
    per_chunk = int(float(bid) * BTT) // 4
    index = 0
    while not stop.is_set():
        headers = {"Atlas-Bid": bid, "Atlas-Voucher": voucher_header(channel, per_chunk)}
        status, _body, _ = await get_chunk(session, edge, cid, index % 4, headers)
        assert status == 200, status
        index += 1
        await asyncio.sleep(0.2)


async def test_a_new_clearing_price_reaches_the_trackers_record_within_a_few_rounds(
    origin: Running, ledger: Running, edges: tuple[Path, list[Running]]
) -> None:
    """Before any bid the record says the reserve (0.01 BTT/MiB); with two bidders for the
    one paid slot the edge clears at 0.02, and the tracker's record says 0.02 within the
    announcer's bound (a round, and 10 s between two announces of everything)."""
    tmp, started = edges
    started.append(tracker := start_edge(tmp / "tracker", ledger.url))
    started.append(market := start_edge(tmp / "market", ledger.url, *ONE_PAID_SLOT,
                                        "--tracker", tracker.url))  # fmt: skip
    stop = asyncio.Event()
    async with client("127.0.0.2") as high, client("127.0.0.3") as low:
        cid = (await fetch(high, market.url, f"{origin.url}/bytes/{4 * CHUNK}?t=price")
               ).info["content_id"]  # fmt: skip
        await wait_for_seal(high, market.url, cid)
        await listed(high, tracker.url, cid, market.url)
        before = _verified(await _listing(high, tracker.url, cid, market.url), cid)
        channels = [await open_channel(s, ledger.url, market.url) for s in (high, low)]
        bidding = [
            asyncio.create_task(_bid(session, market.url, channel, cid, bid, stop))
            for session, channel, bid in zip((high, low), channels, ("0.03", "0.02"), strict=True)
        ]
        seen: list[str] = []
        try:
            async with asyncio.timeout(40):
                while not seen or seen[-1] != str(BTT // 50):
                    await asyncio.sleep(0.25)
                    entry = await _listing(high, tracker.url, cid, market.url)
                    seen.append(entry["market"]["clearing_price"])
            cleared = (await edge_info(high, market.url))["market"]
        finally:
            stop.set()
            await asyncio.gather(*bidding)
    assert before.market is not None and before.market.clearing_price == BTT // 100
    assert cleared["winners"] == 1 and cleared["clearing_price"] == str(BTT // 50)
    after = _verified(entry, cid)
    assert after.market is not None and after.market.reserve == BTT // 100
    assert after.expires_at >= before.expires_at
    assert set(seen) <= {str(BTT // 100), str(BTT // 50)}, seen


async def test_a_moving_price_is_announced_at_most_once_a_round_and_a_gap(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The announcer itself (a real tracker object, no tracker to post to): terms that change
    on every look are signed again at most once per max(gap, round), and the tracker's copy
    is always one the announcer signed. The gap is cut from 10 s to 0.2 s to run quickly."""
    monkeypatch.setattr(announcer, "REANNOUNCE_GAP", 0.2)
    monkeypatch.setattr(announcer, "TERMS_CHECK", 0.02)
    looks = itertools.count()

    def moving(round_seconds: int) -> Callable[[], AdvertMarket | None]:
        def terms() -> AdvertMarket:
            if not round_seconds:  # no market: a fixed price (moving here all the same)
                return AdvertMarket(BTT + next(looks), BTT + next(looks), 0, 0, 0, 0, 0)
            return AdvertMarket(BTT, BTT + next(looks), 0, 8 * MIB, 8, 2, round_seconds)

        return terms

    cids = [bytes([i]) * 32 for i in range(3)]

    async def held() -> list[bytes]:
        return cids

    counts: dict[int, int] = {}
    async with aiohttp.ClientSession() as session:
        for round_seconds in (0, 1):
            own = Tracker()
            a = announcer.Announcer(NodeKey.generate(), (), own, session, held,
                                    terms=moving(round_seconds))  # fmt: skip
            a.public_url = "http://127.0.0.1:9"
            started = time.monotonic()
            task = asyncio.create_task(a.run())
            await asyncio.sleep(2.1)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            ran = time.monotonic() - started
            counts[round_seconds] = a.full_announces
            bound = 1 + math.floor(ran / max(0.2, round_seconds))
            assert 2 <= a.full_announces <= bound, (round_seconds, a.full_announces, ran)
            listed = own.providers(cids[0], int(time.time()))
            assert len(listed) == 1 and listed[0].market is not None
    # The first announce, then one per 0.2 s gap at most (or per 1 s round): in 2.1 s
    # that is 11 and 3 (what this machine did, unloaded).
    assert counts[1] < counts[0], counts


def test_a_replayed_older_record_does_not_bring_back_an_old_price() -> None:
    """Anyone may announce any signed record, also a provider's earlier one, still
    unexpired: the tracker keeps the record of each provider that expires last."""
    key, cid, now = NodeKey.generate(), bytes(range(32)), int(time.time())
    cheap = AdvertMarket(BTT // 100, BTT // 100, 0, 8 * MIB, 2, 1, 1)
    dear = AdvertMarket(BTT // 100, BTT // 50, 0, 8 * MIB, 2, 1, 1)
    old = ProviderRecord.create(key, cid, "http://127.0.0.1:9", now + 1800, cheap)
    new = ProviderRecord.create(key, cid, "http://127.0.0.1:9", now + 1810, dear)
    tracker = Tracker()
    assert tracker.add(old, now) and tracker.add(new, now)
    assert not tracker.add(old, now)  # the replay
    assert tracker.providers(cid, now) == [new]
