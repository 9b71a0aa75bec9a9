"""An edge's settlement rounds on TRON, all real processes (the offline node, an edge, an
origin): a round redeems the channel that brings ten times a redeem's fee and leaves the one
that brings less, until its payer's ``requestClose`` brings its expiry within the margin;
then it redeems that one too, stops taking vouchers on it, and the chain and the edge's
books agree to the unit."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.protocol import PayerKey
from tests.edge.edge_client import problem
from tests.processes import Running, start_tron_node
from tests.tron.edge_on_tron import ONE, PaidEdge, books, paid_edge, reader, start_tron_edge

INTERVAL = "0.3"
RATE = "0.01"
"""BTT per TRX: a redeem's 6 TRX of energy (60k at 100 sun) is a fee of 0.06 BTT, so a round
waits for 0.6 BTT."""
BIG, SMALL = 6 * ONE // 10, ONE // 10
ROUNDS = 10
"""Rounds the small channel is left waiting, after the big one was redeemed."""


@pytest.fixture
def node() -> Iterator[Running]:
    running = start_tron_node("--close-grace", "5m")  # within the edge's 20 min margin
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def redeemed_on_chain(node: Running, session: aiohttp.ClientSession, paid: PaidEdge,
                            want: int, edge: Running) -> None:  # fmt: skip
    """Wait until the contract says ``want`` was redeemed on the channel: 60 s at most (a
    round takes well under a second, but a loaded 2-core CI machine once took over 20 s)."""
    chain = reader(node, session)
    try:
        for _ in range(600):
            if int((await chain.channel(paid.terms.channel_id))["redeemed"]) == want:
                return
            await asyncio.sleep(0.1)
        raise AssertionError(
            f"{want} was not redeemed: {await chain.channel(paid.terms.channel_id)}\n"
            f"edge log:\n{edge.log_tail(40)}"
        )
    finally:
        await chain.close()


async def test_rounds_redeem_what_is_worth_ten_fees_and_a_closing_channel_before_expiry(
    node: Running, origin: Running, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    data_dir = tmp_path / "edge"
    edge = start_tron_edge(node, data_dir, "--settle-interval", INTERVAL, "--btt-per-trx", RATE)
    chain = reader(node, session)
    try:
        big = await paid_edge(session, node, edge, origin, PayerKey(b"\x61" * 32), ONE)
        small = await paid_edge(session, node, edge, origin, PayerKey(b"\x62" * 32), ONE)
        start = await chain.balance(big.payee)
        await big.pay(session, BIG)
        await small.pay(session, SMALL)

        await redeemed_on_chain(node, session, big, BIG, edge)  # 10 fees: the next round takes it
        await asyncio.sleep(ROUNDS * float(INTERVAL))
        assert (await chain.channel(small.terms.channel_id))["redeemed"] == "0"
        assert int((await books(data_dir, small.terms.channel_id))["redeemed"]) == 0

        payer = reader(node, session, small.key)
        try:
            closing = await payer.request_close(small.key, small.terms.channel_id)
        finally:
            await payer.close()
        assert int(closing["channel"]["expires_at"]) < small.terms.expires_at
        await redeemed_on_chain(node, session, small, SMALL, edge)  # near its new expiry: worth it
        assert await chain.balance(big.payee) == start + BIG + SMALL
        for paid, amount in ((big, BIG), (small, SMALL)):
            row = await books(data_dir, paid.terms.channel_id)
            assert (int(row["paid"]), int(row["redeemed"])) == (amount, amount)
        # The books took the new expiry: vouchers stop the settle margin before it.
        problem(await small.chunk(session, SMALL + ONE // 100), 402, "channel_expired")
        assert edge.stop() == 0
    finally:
        await chain.close()
        edge.stop()
