"""The issue's market scenarios on real processes (docs/market.md, Measured): one edge of
8 MiB/s, 8 slots (2 free), a reserve of 1 BTT/MiB, 256 KiB chunks, requesters on loopback
addresses of their own (loadtest/market/driver.py: raw HTTP, so the edge's mechanism is
what is measured). Long runs (60 s, measured over the last 30 s), marked slow.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.market.driver import Requester, content, drive
from requester.protocol import BTT_LOCAL
from tests.edge.paying import channel_earnings, earnings
from tests.processes import Running, start_edge

MIB = 1 << 20
KIB = 1 << 10
CHUNK = 256 * KIB
CHUNKS = 64
CAPACITY = 8 * MIB
BTT = BTT_LOCAL.one
IN_FLIGHT = 4


def market(round_seconds: int) -> list[str]:
    return ["--upload-capacity", "8MiB/s", "--slots", "8", "--free-slots", "2", "--reserve",
            "1", "--round-seconds", str(round_seconds), "--free-mib", "0"]  # fmt: skip


@pytest.fixture
def edge_dir(tmp_path: Path) -> Path:
    return tmp_path / "edge"


@pytest.fixture
def edge(edge_dir: Path, ledger: Running, request: pytest.FixtureRequest) -> Iterator[Running]:
    running = start_edge(edge_dir, ledger.url, *market(request.param))
    yield running
    running.stop()


async def run(edge: Running, ledger: Running, origin: Running, requesters: list[Requester],
              seconds: float, settle: float) -> None:  # fmt: skip
    cid = await content(edge.url, f"{origin.url}/bytes/{CHUNKS * CHUNK}")
    await drive(edge.url, ledger.url, cid, CHUNKS, requesters, seconds=seconds, settle=settle,
                in_flight=IN_FLIGHT)  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("edge", [5], indirect=True)
async def test_ten_bidders_and_two_free_requesters_get_the_auctions_rates(
    edge: Running, edge_dir: Path, ledger: Running, origin: Running
) -> None:
    """Bids 1..10 BTT/MiB and two free requesters: bids 5..10 win at 4 BTT/MiB, 7/6 MiB/s
    each; the others 1/6 MiB/s each, never refused."""
    bidders = [Requester(f"127.0.2.{bid}", str(bid)) for bid in range(1, 11)]
    free = [Requester("127.0.2.11"), Requester("127.0.2.12")]
    seconds, settle = 60.0, 30.0
    await run(edge, ledger, origin, [*bidders, *free], seconds, settle)
    report = await earnings(edge_dir)
    span = seconds - settle
    rates = {r.bid or r.source: r.rate(span) for r in [*bidders, *free]}
    print({k: f"{v / KIB:.0f} KiB/s" for k, v in rates.items()})  # shown with -s
    winners, losers = bidders[4:], bidders[:4]
    print("vouchers - charged, in chunks at 4 BTT/MiB:",
          [(r.vouchers - r.charged) / (BTT * CHUNK // MIB * 4) for r in winners])  # fmt: skip
    for r in bidders:
        assert r.clearing == 4 * BTT, (r.bid, r.clearing)
    for r in winners:
        assert r.rate(span) >= 0.9 * 7 / 6 * MIB, (r.bid, r.window)
        assert r.window["paid"] > 0 and set(r.statuses) <= {200, 402}, (r.bid, r.statuses)
        row = channel_earnings(report, r.channel.terms.channel_id) if r.channel else None
        assert row is not None and int(row["served"]) == r.charged, (row, r.charged)
        # charged: each clearing price times the MiB paid at it, within one chunk's price
        owed = sum(price * size / MIB for price, size in r.paid_at.items())
        assert abs(r.charged - owed) <= 4 * BTT * CHUNK / MIB, (r.charged, owed)
        # what its vouchers add up to is what it was charged, within one chunk's price (the
        # credit a chunk served free left with the edge, spent before a new voucher)
        assert r.charged <= r.vouchers <= r.charged + 4 * BTT * CHUNK / MIB, (r.bid, r.vouchers)
    for r in [*losers, *free]:
        assert r.rate(span) >= 136 * KIB, (r.bid, r.window)
        assert r.window["paid"] == 0 and set(r.statuses) == {200}, (r.bid, r.statuses)
    by_bid = [(free[0].rate(span) + free[1].rate(span)) / 2, *(r.rate(span) for r in bidders)]
    for lower, higher in itertools.pairwise(by_bid):
        assert higher >= 0.9 * lower, by_bid
    assert sum(rates.values()) >= 0.9 * CAPACITY, rates


@pytest.mark.parametrize("edge", [2], indirect=True)
async def test_a_bid_under_the_reserve_gets_every_chunk_free(
    edge: Running, edge_dir: Path, ledger: Running, origin: Running
) -> None:
    """Beside a bid of 2 that wins a paid slot at the reserve."""
    low, winner = Requester("127.0.3.1", "0.5"), Requester("127.0.3.2", "2")
    await run(edge, ledger, origin, [low, winner], 12.0, 4.0)
    report = await earnings(edge_dir)
    assert set(low.statuses) == {200} and low.paid_at == {} and low.charged == 0
    assert low.window["free"] > 0 and low.window["paid"] == 0
    row = channel_earnings(report, low.channel.terms.channel_id) if low.channel else None
    assert row is None or int(row["served"]) == 0, row
    assert winner.window["paid"] > 0 and winner.clearing == BTT
    # its vouchers add up to what it was charged at the reserve, within one chunk's price
    assert winner.charged <= winner.vouchers <= winner.charged + BTT * CHUNK // MIB, (
        winner.vouchers - winner.charged
    )


@pytest.mark.parametrize("edge", [2], indirect=True)
async def test_a_lone_free_requester_gets_the_whole_capacity(
    edge: Running, ledger: Running, origin: Running
) -> None:
    alone = Requester("127.0.3.3")
    await run(edge, ledger, origin, [alone], 12.0, 4.0)
    print(f"alone: {alone.rate(8.0) / MIB:.2f} MiB/s")
    assert set(alone.statuses) == {200} and alone.window["paid"] == 0
    assert alone.rate(8.0) >= 0.9 * CAPACITY, alone.window
