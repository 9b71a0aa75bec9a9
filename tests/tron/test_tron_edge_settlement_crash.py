"""kill -9 of a real edge while it redeems on TRON (issue 15), at each step of the redeem's
transaction: journaled and signed (``tron.signed_persisted``), broadcast
(``tron.broadcast_sent``), its receipt read but not yet in the edge's books
(``tron.receipt_seen``). The edge is stopped with a voucher to redeem (it redeems on stop)
and dies at the step; started again on the same data dir and stopped, it finishes that
transaction (the same bytes, never rebuilt) or finds it applied, and records it: the payee's
token balance rose by the voucher's amount once, the edge paid for one transaction, and its
books say the channel is redeemed."""

from __future__ import annotations

import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.failpoints import ENV
from requester.protocol import PayerKey, TronAddress
from requester.tron.ledger import TronLedger
from requester.tron.tx_journal import JOURNAL_FILE, Entry, TxJournal
from tests.processes import Running, start_tron_node
from tests.tron.edge_on_tron import ONE, books, paid_edge, reader, start_tron_edge

AMOUNT = ONE // 4
FREE_FEES = ("--btt-per-trx", "0")
"""Test TRX is worth nothing: the edge redeems everything on stop, as on the embedded ledger."""


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start_tron_node()
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.mark.parametrize(
    ("point", "payer"),
    [pytest.param(point, payer, id=point) for point, payer in (
        ("tron.signed_persisted", 0x71), ("tron.broadcast_sent", 0x72),
        ("tron.receipt_seen", 0x73))],
)  # fmt: skip
async def test_an_edge_killed_while_redeeming_redeems_once_after_restart(
    node: Running, origin: Running, session: aiohttp.ClientSession, tmp_path: Path, point: str,
    payer: int,
) -> None:  # fmt: skip
    data_dir = tmp_path / "edge"
    edge = start_tron_edge(node, data_dir, *FREE_FEES, env={ENV: f"{point}=1"})
    chain = reader(node, session)
    try:
        paid = await paid_edge(session, node, edge, origin, PayerKey(bytes([payer]) * 32), ONE)
        cid = paid.terms.channel_id
        tokens, trx = await chain.balance(paid.payee), await _trx(chain, paid.payee)
        await paid.pay(session, AMOUNT)
        edge.proc.send_signal(signal.SIGTERM)  # it redeems on stop, and dies at the point
        assert edge.proc.wait(60) == -signal.SIGKILL

        (left,) = _journal(data_dir)
        assert left.intent == f"redeem:{cid.hex()}:{AMOUNT}" and left.txid is not None
        applied = point != "tron.signed_persisted"
        assert left.state == ("confirmed" if point == "tron.receipt_seen" else "signed")
        assert int((await chain.channel(cid))["redeemed"]) == (AMOUNT if applied else 0)
        assert int((await books(data_dir, cid))["redeemed"]) == 0  # not recorded yet

        edge = start_tron_edge(node, data_dir, *FREE_FEES)
        assert edge.stop() == 0
        (done,) = _journal(data_dir)
        assert (done.state, done.txid, done.superseded) == ("confirmed", left.txid, [])
        assert await chain.balance(paid.payee) == tokens + AMOUNT
        view = await chain.channel(cid)
        assert (int(view["redeemed"]), int(view["deposit"])) == (AMOUNT, ONE)
        row = await books(data_dir, cid)
        assert (int(row["paid"]), int(row["redeemed"])) == (AMOUNT, AMOUNT)
        assert done.receipt is not None
        assert await _trx(chain, paid.payee) == trx - int(done.receipt.get("fee", 0))
    finally:
        await chain.close()
        edge.stop()


def _journal(data_dir: Path) -> list[Entry]:
    """The redeems journaled in the edge's data dir."""
    journal = TxJournal(data_dir / JOURNAL_FILE)
    try:
        return list(journal.entries("redeem"))
    finally:
        journal.close()


async def _trx(chain: TronLedger, who: TronAddress) -> int:
    """Sun ``who`` holds: what its transactions' energy is paid from."""
    return int((await chain.account(who))["trx"])
