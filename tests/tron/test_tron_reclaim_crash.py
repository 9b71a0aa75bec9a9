"""kill -9 of a payer's ``atlas channel close`` while it reclaims an expired channel on TRON
(issue 15), at each step of the reclaim's transaction; run again, the reclaim is finished
from the journaled bytes, or (killed after its receipt) found reclaimed (the dry run says
``already_reclaimed``) with no second transaction; the payer got the deposit back once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.failpoints import ENV
from requester.protocol import PayerKey
from requester.tron.tx_journal import JOURNAL_FILE, Entry, TxJournal
from tests.processes import Running, start_tron_node
from tests.sdk.conftest import Home, make_home
from tests.tron.edge_on_tron import ONE, reader, tron_url

PAYEE = PayerKey(bytes([0x74]) * 32).address


@pytest.fixture
def node() -> Iterator[Running]:
    """A node per test: each moves its clock to its channel's expiry."""
    running = start_tron_node()
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def close(
    home: Home, cid: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``atlas channel close CID`` as the payer runs it."""
    return subprocess.run(
        [sys.executable, "-m", "requester.cli", "channel", "close", cid],
        env={**home.env, **(env or {})}, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def reclaims(home: Home) -> list[Entry]:
    journal = TxJournal(home.path / JOURNAL_FILE)
    try:
        return list(journal.entries("reclaim"))
    finally:
        journal.close()


@pytest.mark.parametrize("point", ["tron.signed_persisted", "tron.broadcast_sent",
                                   "tron.receipt_seen"])  # fmt: skip
async def test_a_payer_killed_while_reclaiming_gets_its_deposit_back_once(
    node: Running, session: aiohttp.ClientSession, tmp_path: Path, point: str
) -> None:
    home = await asyncio.to_thread(make_home, tmp_path / "home", [], tron_url(node), funds=0)
    funded = await asyncio.to_thread(home.atlas, "wallet", "fund", "5")
    assert funded.returncode == 0, funded.stderr
    opened = await asyncio.to_thread(home.atlas, "channel", "open", str(PAYEE), "--deposit", "2",
                                     "--hours", "1")  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    channel = json.loads(opened.stdout)
    cid = channel["channel_id"]
    async with session.post(f"{node.url}/atlas/time", json={"set": channel["expires_at"]}) as r:
        assert r.status == 200, await r.text()
    chain = reader(node, session)
    try:
        before = await chain.balance(home.address)
        killed = await asyncio.to_thread(close, home, cid, {ENV: f"{point}=1"})
        assert killed.returncode == -9, killed.stderr
        (left,) = reclaims(home)
        assert left.state == ("confirmed" if point == "tron.receipt_seen" else "signed")
        status = "reclaimed" if point != "tron.signed_persisted" else "open"
        assert (await chain.channel(bytes.fromhex(cid)))["status"] == status

        again = await asyncio.to_thread(close, home, cid)
        if point == "tron.receipt_seen":  # done before the kill: nothing more is sent
            assert again.returncode == 0 and "already reclaimed" in again.stdout, again
        else:  # finished from the journaled bytes
            assert again.returncode == 0 and "reclaimed 2 BTT" in again.stdout, again.stderr
        (done,) = [e for e in reclaims(home) if e.txid is not None]
        assert (done.state, done.txid, done.superseded) == ("confirmed", left.txid, [])
        assert (await chain.channel(bytes.fromhex(cid)))["status"] == "reclaimed"
        assert await chain.balance(home.address) == before + 2 * ONE
    finally:
        await chain.close()
