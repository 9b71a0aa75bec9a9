"""The edge killed -9 while it takes payment or settles on stop, 20 times per step.

Each test runs one paid workload against one edge, in a chain: the edge starts
armed to die at a random hit of the step, the payers (the SDK, in this
process) pay for chunks until it dies, the books are checked at rest, and the
next edge starts on the same data dir (armed for the next kill) while the
payers pay on, as a restarted download would. After the last kill an unarmed
edge finishes the work and stops; its settlement must leave every channel
redeemed exactly to the best voucher the edge holds.
"""

from __future__ import annotations

import random
import signal
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from requester.protocol import TronAddress, b64url_encode
from tests.crash.armed import Arming, died_at_failpoint, schedule, start_edge_armed
from tests.crash.books import PayeeRow, check_ledger, check_payee, payee_book
from tests.crash.payers import Content, Payer, pay_for_chunks, sealed_content
from tests.edge.edge_client import get_chunk
from tests.edge.paying import edge_info
from tests.processes import Running, start_ledger

pytestmark = pytest.mark.crash

CHUNK = 256 * 1024
WIDTH = 2
"""Requests each payer keeps in flight (what ``atlas fetch`` keeps per provider)."""


class Workload:
    """Payers, an edge's data dir and the ledger, across the edge's restarts."""

    def __init__(self, tmp: Path, ledger: Running, session: aiohttp.ClientSession) -> None:
        self.dir, self.ledger_url = tmp / "edge", ledger.url
        self.ledger = LedgerClient(ledger.url, session)
        self.session, self.tmp = session, tmp
        self.payers: list[Payer] = []
        self.book: dict[str, PayeeRow] = {}
        self.edge: Running | None = None

    async def prepare(self, payers: int, url: str) -> tuple[Content, TronAddress]:
        self.payers = [await Payer.funded(self.tmp / f"payer{i}", self.ledger)
                       for i in range(payers)]  # fmt: skip
        edge = self.start(None)
        content = await sealed_content(self.session, edge.url, url)
        payee = TronAddress.parse((await edge_info(self.session, edge.url))["payee"])
        assert edge.stop() == 0
        return content, payee

    def start(self, arming: Arming | None) -> Running:
        self.edge = start_edge_armed(self.dir, self.ledger_url, arming)
        return self.edge

    async def check(self, payee: TronAddress, *, settled: bool = False) -> None:
        """The books at rest, against the last check's."""
        book = payee_book(self.dir)
        issued = {c: a for p in self.payers for c, a in p.issued().items()}
        delivered = {c: v for p in self.payers for c, v in p.delivered.items()}
        check_payee(book, issued, delivered, self.book)
        await check_ledger(self.ledger, payee, book, settled=settled)
        self.book = book

    async def replay_best_vouchers(self, content: Content) -> None:
        """The best voucher of each channel, sent again, adds nothing to what was paid
        (refused as stale, or served from the channel's own credit)."""
        assert self.edge is not None
        async with aiohttp.ClientSession() as session:  # none pooled to a dead edge's port
            for cid, row in self.book.items():
                if row.voucher is None:
                    continue
                header = {"Atlas-Voucher": b64url_encode(row.voucher)}
                status, _, _ = await get_chunk(session, self.edge.url, content.content_id, 0,
                                               header)  # fmt: skip
                assert status in (200, 409), status
                assert payee_book(self.dir)[cid].paid == row.paid

    def close(self) -> None:
        if self.edge is not None:
            self.edge.stop()
        for payer in self.payers:
            payer.close()


@pytest.mark.parametrize(
    "point", ["edge.voucher_accepted", "edge.payments_before_commit", "edge.payments_committed"]
)
async def test_edge_killed_while_taking_payment(
    tmp_path: Path, origin: Running, rng: random.Random, point: str
) -> None:
    ledger = start_ledger(tmp_path / "ledger")
    try:
        async with aiohttp.ClientSession() as session:
            work = Workload(tmp_path, ledger, session)
            try:
                content, payee = await work.prepare(2, f"{origin.url}/bytes/{8 * CHUNK}?p={point}")
                for arming in schedule(rng, point, most=12):
                    edge = work.start(arming)
                    await work.replay_best_vouchers(content)
                    alive = await pay_for_chunks(edge, content, work.payers,
                                                 width=WIDTH, each=200)  # fmt: skip
                    assert not alive, f"{arming} not reached in 200 chunks"
                    died_at_failpoint(edge.proc, arming)
                    await work.check(payee)
                edge = work.start(None)
                await work.replay_best_vouchers(content)
                assert await pay_for_chunks(edge, content, work.payers,
                                            width=WIDTH, each=content.count)  # fmt: skip
                assert edge.stop() == 0  # settles everything on stop
                await work.check(payee, settled=True)
                _overpaid_at_most(work, kills=20, price=_price(work))
            finally:
                work.close()
    finally:
        ledger.stop()


@pytest.mark.parametrize("point", ["settle.redeem_sent", "settle.redeem_answered"])
async def test_edge_killed_while_settling_on_stop(
    tmp_path: Path, origin: Running, rng: random.Random, point: str
) -> None:
    payers = 3
    ledger = start_ledger(tmp_path / "ledger")
    try:
        async with aiohttp.ClientSession() as session:
            work = Workload(tmp_path, ledger, session)
            try:
                content, payee = await work.prepare(payers, f"{origin.url}/bytes/{2 * CHUNK}")
                for arming in schedule(rng, point, most=payers):
                    edge = work.start(arming)
                    # Each payer pays at least once: on stop, every channel is redeemed.
                    assert await pay_for_chunks(edge, content, work.payers,
                                                width=1, each=rng.randint(1, 2))  # fmt: skip
                    edge.proc.send_signal(signal.SIGTERM)
                    died_at_failpoint(edge.proc, arming)
                    await work.check(payee)
                # Last, a plain start and stop: what the kills left is redeemed now, either
                # credited or found already redeemed (then only recorded).
                assert work.start(None).stop() == 0
                await work.check(payee, settled=True)
            finally:
                work.close()
    finally:
        ledger.stop()


def _price(work: Workload) -> int:
    return max(p.price for p in work.payers)


def _overpaid_at_most(work: Workload, kills: int, price: int) -> None:
    """What payers signed for and never received is lost with requests in flight at a
    kill (persisted, then the edge died before sending): bounded by those requests."""
    signed = sum(sum(p.issued().values()) for p in work.payers)
    received = sum(sum(p.delivered.values()) for p in work.payers)
    assert received <= signed <= received + kills * len(work.payers) * WIDTH * price, (
        signed, received, price,
    )  # fmt: skip
