"""The SDK sizes a market edge's channel to cover its own bid (docs/market.md).

A market edge counts a bid only while the channel's unspent deposit covers it for one
slot for one round: bid x capacity / slots x round_seconds / MiB. A bid of 5 BTT/MiB on
a 16 MiB/s edge of 8 slots with 1 s rounds needs 10 BTT unspent; the default deposit of
10 BTT covered it only until the first payment, and the bid silently went to the free
lane. Now the download asks the channel manager to keep that room (``keep_room``): a
channel with less is topped up by the deposit plus the room, and the edge sees the top-up
when a bid is not covered by the deposit it knew (it asks the ledger again).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import aiohttp

from requester import keystore
from requester.bidding import Bidding, Market
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, NodeKey, PayerKey
from requester.settings import CONFIG_FILE
from tests.conftest import make_quote
from tests.origin_server import pattern
from tests.processes import Running
from tests.sdk.conftest import PASSPHRASE, make_home, summary
from tests.sdk.market_load import contended, market_edge

MIB = 1 << 20
BTT = BTT_LOCAL.one


def test_the_cover_is_the_bid_for_one_slot_for_one_round() -> None:
    bidding = Bidding(5 * BTT)
    bidding.learn("http://b", Market(16 * MIB, 1.0, 3 * BTT, slots=8), now=0.0)
    assert bidding.cover("http://b") == 10 * BTT  # 5 x 2 MiB/s x 1 s
    bidding.learn("http://t", Market(16 * MIB, 2.5, 3 * BTT, slots=3), now=0.0)
    assert bidding.cover("http://t") == -(-5 * BTT * 16 * 5 // (3 * 2))  # rounded up
    bidding.learn("http://old", Market(16 * MIB, 1.0, 3 * BTT), now=0.0)  # slots not said
    bidding.learn("http://toll", Market(0, 1.0, 3 * BTT, slots=8), now=0.0)  # no auction
    assert bidding.cover("http://old") == bidding.cover("http://toll") == 0
    assert bidding.cover("http://unknown") == 0


async def test_a_default_deposit_keeps_the_room_a_bid_needs(
    ledger: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "home", [], ledger.url, funds=0)
    keys = keystore.load(home.path / "wallet.json", PASSPHRASE)
    store = PayerStore(home.path / "state.sqlite3")
    edge, payee = NodeKey.generate(), PayerKey.generate().address
    now = int(time.time())
    quote = make_quote(edge, payee, valid_from=now - 10, valid_until=now + 3600)
    room = 10 * BTT
    try:
        async with aiohttp.ClientSession() as session:
            client = LedgerClient(home.ledger, session)
            await client.faucet(keys.payer.address, 100 * BTT)
            manager = ChannelManager(keys.payer, store, client)
            payer = Budget(manager, None)  # what a download pays through
            left = []
            for _ in range(12):  # 1.25 BTT: a 256 KiB chunk at 5 BTT/MiB
                payer.keep_room(payee, room)
                await payer.pay(quote, BTT + BTT // 4, now)
                [channel] = store.channels(payee=payee, status="open")
                left.append(channel.terms.deposit - channel.issued)
            other = PayerKey.generate().address  # the same payment with no room kept
            await payer.pay(
                make_quote(edge, other, valid_from=now - 10, valid_until=now + 3600),
                BTT + BTT // 4,
                now,
            )
            [bare] = store.channels(payee=other, status="open")
    finally:
        store.close()
    assert min(left) >= room, left  # the bid stays covered after every payment
    # 15 BTT paid: opened with deposit + room (20 BTT), topped up once by as much
    assert channel.terms.deposit == 40 * BTT and channel.issued == 15 * BTT
    assert bare.terms.deposit - bare.issued < room  # the default 10 BTT: uncovered at once


def test_a_bid_stays_covered_through_top_ups_the_edge_sees_late(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    """A deposit of 1 BTT and a bid of 4 BTT/MiB on a 1 MiB/s slot with 1 s rounds (a cover
    of 4 BTT): the channel opens with 5 BTT and is topped up after about 1 BTT is paid. The
    edge knew only the 5 BTT, so the bid was uncovered from then on, every chunk went free,
    no voucher reached the old deposit (the one thing that made the edge read the ledger
    again), and about 1 MiB of 16 was paid (before the edge re-read the channel for an
    uncovered bid). Under contention a covered bid gets about half the bytes paid."""
    size = 16 * MIB
    url = f"{origin.url}/bytes/{size}?t=deposit-late"
    home = make_home(tmp_path / "home", [], ledger.url, funds=100 * BTT)
    config = home.path / CONFIG_FILE
    config.write_text(json.dumps({**json.loads(config.read_text()), "deposit": "1"}))
    out = tmp_path / "out.bin"
    with market_edge(tmp_path / "edge", ledger.url) as edge, contended(edge.url, url, size, 15):
        doc = summary(home.atlas("fetch", url, "-o", str(out), "--json", "--edge", edge.url,
                                 "--max-price", "4", "--max-spend", "50"))  # fmt: skip
    assert out.read_bytes() == pattern(0, size)
    [provider] = doc["providers"].values()
    assert provider["paid_bytes"] >= size // 4, provider
