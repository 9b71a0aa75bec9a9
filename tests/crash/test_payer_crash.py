"""The payer (the SDK in its own process) killed -9 at each of its payment steps.

One edge and one ledger stay up. A payer process (``tests/crash/payer_worker.py``)
downloads through the edge, paying per chunk, opening small channels as each
runs out or topping its channel up; it is armed to die at a random hit of the
step, 20 times in a chain, each new process resuming from the payer's store.
The books are checked at rest after every kill; then an unarmed payer must
finish the download, the edge settles on stop, and every channel must be
redeemed exactly to the edge's best voucher.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from requester.protocol import PayerKey, TronAddress
from tests.crash.armed import Arming, died_at_failpoint, env_of, schedule, start_edge_armed
from tests.crash.books import (
    check_ledger,
    check_payee,
    check_pending,
    payee_book,
    payer_book,
    payer_pending,
    unknown_channels,
)
from tests.edge.paying import edge_info
from tests.processes import Running, start_ledger

pytestmark = pytest.mark.crash

CHUNK = 256 * 1024
CHUNKS = 8
RUN = CHUNKS // 2
"""The longest chunk run the SDK asks for in a download of CHUNKS chunks from one edge."""
PRICE = 250_000_000_000_000
"""What the edge charges for one 256 KiB chunk (0.001 BTT per MiB, its default)."""
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Payer:
    """The payer's home (key and store) and the one edge and ledger it pays through."""

    home: Path
    key: PayerKey
    ledger: str
    edge: str
    url: str
    options: list[str]

    def start(self, arming: Arming | None) -> subprocess.Popen[str]:
        argv = [sys.executable, "-m", "tests.crash.payer_worker", str(self.home), self.ledger,
                self.edge, self.url, *self.options]  # fmt: skip
        return subprocess.Popen(
            argv, cwd=ROOT, env={**os.environ, **env_of(arming)}, text=True,
            stdout=subprocess.PIPE,
        )  # fmt: skip


async def check_books(payer: Payer, edge_dir: Path, ledger: LedgerClient, payee: TronAddress,
                      *, settled: bool = False) -> None:  # fmt: skip
    """The payer's, the edge's and the ledger's books agree, and no channel of the payer's
    is stranded on the ledger: each is in its book or is an open it recorded before
    sending (at most one call is pending: the one in flight at the kill; the next start
    settles it). With ``settled``, nothing is pending and the payer's book holds each
    channel's deposit and expiry as the ledger does: no top-up cut off by a kill is lost."""
    state = payer.home / "state.sqlite3"
    mine, pending = payer_book(state), payer_pending(state)
    book = payee_book(edge_dir)
    check_payee(book, {c: r.issued for c, r in mine.items()}, {})
    await check_ledger(ledger, payee, book, settled=settled)
    for cid, row in mine.items():
        on_ledger = await ledger.channel(bytes.fromhex(cid))
        assert row.issued <= row.deposit <= int(on_ledger["deposit"]), (cid, row, on_ledger)
        if settled:
            assert row.deposit == int(on_ledger["deposit"]), (cid, row, on_ledger)
            assert row.expires_at == int(on_ledger["expires_at"]), (cid, row, on_ledger)
    await check_pending(ledger, pending)
    assert len(pending) <= (0 if settled else 1), pending
    opens = [p.channel_id for p in pending if p.kind == "open"]
    stranded = await unknown_channels(ledger, payer.key.address, [*mine, *opens])
    assert stranded == {}, f"{sum(stranded.values())} units locked in {len(stranded)} channels"


# point: (worker options, the most hits a worker is sure to reach). With deposits of 1.5
# chunks' price, a channel that runs out is topped up. The SDK pays a provider's first chunk
# alone and then a voucher per chunk run (docs/protocol.md 13), so a download of 8 chunks
# signs 3 or more vouchers, not 8.
SMALL = [f"--deposit={PRICE * 3 // 2}"]
WORKLOADS = {
    "payer.voucher_persisted": ([], 5),
    "payer.open_requested": ([*SMALL, "--open-every=2"], 6),
    "payer.open_answered": ([*SMALL, "--open-every=2"], 6),
    "payer.topup_requested": (SMALL, 3),
    "payer.topup_answered": (SMALL, 3),
}


@pytest.mark.parametrize("point", list(WORKLOADS))
async def test_payer_killed_while_paying(
    tmp_path: Path, origin: Running, rng: random.Random, point: str
) -> None:
    options, most = WORKLOADS[point]
    ledger = start_ledger(tmp_path / "ledger")
    edge = start_edge_armed(tmp_path / "edge", ledger.url, None)
    try:
        async with aiohttp.ClientSession() as session:
            client = LedgerClient(ledger.url, session)
            payee = TronAddress.parse((await edge_info(session, edge.url))["payee"])
            payer = await _payer(tmp_path, client, edge, f"{origin.url}/bytes/{CHUNKS * CHUNK}",
                                 options)  # fmt: skip
            for arming in schedule(rng, point, most=most):
                died_at_failpoint(payer.start(arming), arming)
                await check_books(payer, tmp_path / "edge", client, payee)
            worker = payer.start(None)
            out, _ = worker.communicate(timeout=60)
            assert worker.returncode == 0 and json.loads(out)["chunks"] == 2 * CHUNKS
            assert edge.stop() == 0  # settles everything on stop
            await check_books(payer, tmp_path / "edge", client, payee, settled=True)
            # Signed and recorded but never sent (or sent and never answered): lost with the
            # requests in flight at each kill, two at most (the SDK's workers per provider),
            # each paying ahead for a run of at most 4 chunks here (8 chunks, one provider:
            # a run is at most half of what is left). What was sent stays credit at the
            # edge, which the restarted payer does not know of.
            signed = sum(r.issued for r in payer_book(payer.home / "state.sqlite3").values())
            served = sum(r.consumed for r in payee_book(tmp_path / "edge").values())
            assert served <= signed <= served + 20 * 2 * RUN * PRICE, (signed, served)
    finally:
        edge.stop()
        ledger.stop()


async def _payer(tmp: Path, ledger: LedgerClient, edge: Running, url: str,
                 options: list[str]) -> Payer:  # fmt: skip
    key = PayerKey.generate()
    await ledger.faucet(key.address, 100 * 10**18)
    home = tmp / "payer"
    home.mkdir()
    (home / "key.hex").write_text(key.secret.hex())
    return Payer(home, key, ledger.url, edge.url, url, options)


async def test_a_channel_opened_before_a_crash_is_not_forgotten(
    tmp_path: Path, origin: Running
) -> None:
    """Killed after the ledger opened its channel and before recording the answer, the payer
    finds the channel at its next start and spends it, instead of opening another while the
    first one's deposit stays locked."""
    ledger = start_ledger(tmp_path / "ledger")
    edge = start_edge_armed(tmp_path / "edge", ledger.url, None)
    try:
        async with aiohttp.ClientSession() as session:
            client = LedgerClient(ledger.url, session)
            payer = await _payer(tmp_path, client, edge, f"{origin.url}/bytes/{CHUNK}", SMALL)
            arming = Arming("payer.open_answered", 1)
            died_at_failpoint(payer.start(arming), arming)
            worker = payer.start(None)  # the download again, as a user would
            worker.communicate(timeout=60)
            assert worker.returncode == 0
            known = payer_book(payer.home / "state.sqlite3")
            stranded = await unknown_channels(client, payer.key.address, known)
            assert stranded == {}, f"{sum(stranded.values())} units locked in {len(stranded)}"
            assert payer_pending(payer.home / "state.sqlite3") == []
            (row,) = known.values()  # the channel opened before the kill, spent after it
            assert row.issued > 0, row
    finally:
        edge.stop()
        ledger.stop()
