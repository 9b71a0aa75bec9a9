"""kill -9 in the middle of paying: no money lost, none counted twice.

An edge stores each voucher durably before it sends the chunk the voucher pays
for, and redeems the best voucher of each channel on the ledger when it stops.
These tests SIGKILL the edge while a client is paying for a response that is
still arriving, and the ledger while the edge is redeeming, restart them on
the same data dirs, and check the edge's books and the ledger's balances.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from cdn_edge.ledger.cli import CRASH_ENV
from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, PayerChannel, PayerKey, format_amount
from tests.crash.armed import start_ledger_at
from tests.edge.edge_client import fetch, get_chunk, problem, request
from tests.edge.paying import (
    FUNDS,
    channel_earnings,
    credit_header,
    earnings,
    open_channel,
    voucher_header,
)
from tests.origin_server import pattern
from tests.processes import Running, start_edge

CHUNK = 256 * 1024
SLOW = 16
"""Chunks in the slow response: at 0.8 s per chunk, the last arrives ~13 s after the first."""


def fmt(units: int) -> str:
    return format_amount(units, BTT_LOCAL)


async def _ledger_totals(session: aiohttp.ClientSession, ledger: str, payer: PayerKey,
                         channel: PayerChannel) -> tuple[int, int, int, int]:  # fmt: skip
    """Payer balance, payee balance, what is left in the channel, what was redeemed."""
    client = LedgerClient(ledger, session)
    view = await client.channel(channel.terms.channel_id)
    left = int(view["deposit"]) - int(view["redeemed"])
    return (
        await client.balance(payer.address),
        await client.balance(channel.terms.payee),
        left,
        int(view["redeemed"]),
    )


async def test_kill_9_mid_transfer_loses_no_voucher_and_counts_none_twice(
    tmp_path: Path, origin: Running, ledger: Running
) -> None:
    data_dir = tmp_path / "edge"
    edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
    key = PayerKey.generate()
    try:
        async with aiohttp.ClientSession() as session:
            slow = await fetch(session, edge.url, f"{origin.url}/slow/{SLOW * CHUNK}?delay=0.05")
            cid = slow.info["content_id"]
            price = int((await get_chunk(session, edge.url, cid, 0))[2]["Atlas-Price"])
            channel = await open_channel(session, ledger.url, edge.url, key=key)
            accepted = []
            for index in range(3):
                header = voucher_header(channel, price)
                status, body, _ = await get_chunk(
                    session, edge.url, cid, index, {"Atlas-Voucher": header}
                )
                assert status == 200 and body == pattern(index * CHUNK, CHUNK)
                accepted.append(header)
            # The fourth voucher rides on a request for the last chunk, which the origin
            # has not sent yet: the edge records it as credit, then is killed while the
            # request waits, before it sends (or charges) the chunk.
            in_flight = voucher_header(channel, price)
            waiting = asyncio.create_task(
                get_chunk(session, edge.url, cid, SLOW - 1, {"Atlas-Voucher": in_flight})
            )
            await asyncio.sleep(0.3)
            assert not waiting.done()
            edge.kill9()
            with pytest.raises(aiohttp.ClientError):
                await waiting
        assert edge.proc.returncode == -signal.SIGKILL

        books = await earnings(data_dir)
        row = channel_earnings(books, channel.terms.channel_id)
        assert row is not None
        assert (int(row["paid"]), int(row["served"])) == (4 * price, 3 * price)  # 1 credit
        assert int(row["redeemed"]) == 0, "a killed edge redeems nothing"

        edge = start_edge(data_dir, ledger.url, "--free-mib", "0")
        async with aiohttp.ClientSession() as session:
            gone = await request(session, "GET", f"{edge.url}/v1/content/{cid}")
            fresh = await fetch(session, edge.url, f"{origin.url}/bytes/{CHUNK}")
            fresh_id = fresh.info["content_id"]
            replays = [
                await get_chunk(session, edge.url, fresh_id, 0, {"Atlas-Voucher": header})
                for header in accepted
            ]
            late = await get_chunk(session, edge.url, fresh_id, 0, {"Atlas-Voucher": in_flight})
            spend = credit_header(key, channel.terms, fresh_id, 0)
            paid = await get_chunk(session, edge.url, fresh_id, 0, spend)  # the credit it left
        # Unsealed content is dropped at start: nobody can be sold half of it.
        assert problem(gone, 404, "not_found") == "this edge does not hold that content"
        for number, replay in enumerate([*replays, late], start=1):
            assert problem(replay, 409, "stale_voucher") == (
                f"voucher amount {fmt(number * price)} is not above the last accepted "
                f"{fmt(4 * price)}, and it was already used"
            )
        assert paid[0] == 200 and paid[1] == pattern(0, CHUNK), paid[1][:300]
        assert edge.stop() == 0
    finally:
        edge.stop()

    row = channel_earnings(await earnings(data_dir), channel.terms.channel_id)
    assert row is not None
    assert (int(row["paid"]), int(row["served"]), int(row["redeemed"])) == (4 * price,) * 3
    async with aiohttp.ClientSession() as session:
        payer, payee, left, redeemed = await _ledger_totals(session, ledger.url, key, channel)
    assert redeemed == payee == 4 * price
    assert payer + payee + left == FUNDS


@pytest.mark.parametrize("point", ["before-commit", "after-commit"])
async def test_kill_9_of_the_ledger_while_the_edge_redeems(
    tmp_path: Path, origin: Running, point: str
) -> None:
    ledger_dir, edge_dir = tmp_path / "ledger", tmp_path / "edge"
    ledger = start_ledger_at(ledger_dir, "http://127.0.0.1:0")
    edge: Running | None = None
    key = PayerKey.generate()
    try:
        edge = start_edge(edge_dir, ledger.url, "--free-mib", "0")
        async with aiohttp.ClientSession() as session:
            fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{2 * CHUNK}")
            cid = fetched.info["content_id"]
            price = int((await get_chunk(session, edge.url, cid, 0))[2]["Atlas-Price"])
            channel = await open_channel(session, ledger.url, edge.url, key=key)
            for index in range(2):
                header = voucher_header(channel, price)
                status, _, _ = await get_chunk(
                    session, edge.url, cid, index, {"Atlas-Voucher": header}
                )
                assert status == 200
        # Swap in a ledger that SIGKILLs itself inside the edge's redeem, then stop the edge.
        assert ledger.stop() == 0
        ledger = start_ledger_at(ledger_dir, ledger.url, {CRASH_ENV: point})
        assert edge.stop() == 0, "an unreachable ledger must not make the edge fail to stop"
        ledger.proc.wait(15)
        assert ledger.stop() == -signal.SIGKILL

        ledger = start_ledger_at(ledger_dir, ledger.url)
        async with aiohttp.ClientSession() as session:
            *_, redeemed = await _ledger_totals(session, ledger.url, key, channel)
        assert redeemed == (0 if point == "before-commit" else 2 * price)
        row = channel_earnings(await earnings(edge_dir), channel.terms.channel_id)
        assert row is not None and (int(row["paid"]), int(row["redeemed"])) == (2 * price, 0)

        edge = start_edge(edge_dir, ledger.url, "--free-mib", "0")
        assert edge.stop() == 0  # redeems again: credited now, or found already redeemed
        row = channel_earnings(await earnings(edge_dir), channel.terms.channel_id)
        assert row is not None and (int(row["paid"]), int(row["redeemed"])) == (2 * price,) * 2
        async with aiohttp.ClientSession() as session:
            payer, payee, left, redeemed = await _ledger_totals(session, ledger.url, key, channel)
        assert redeemed == payee == 2 * price
        assert payer + payee + left == FUNDS
    finally:
        if edge is not None:
            edge.stop()
        ledger.stop()
