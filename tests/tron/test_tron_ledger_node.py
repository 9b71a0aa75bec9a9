"""TronLedger against the offline TRON node (``atlas ledger tron-node``, a real process),
through unmodified tronpy: the lifecycle of a channel with the embedded ledger's views and
refusal codes, money conserved after every transaction, a top-up or open applied once
across a lost answer or a kill -9 between its steps, an open out of energy, and the SDK's
ChannelManager opening and topping up on the contract."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from subprocess import PIPE

import aiohttp
import pytest

from requester.channel_manager import ChannelManager
from requester.failpoints import ENV
from requester.ledger_api import open_ledger
from requester.ledger_client import LedgerError
from requester.payer_store import PayerStore
from requester.protocol import (
    BTT,
    OpenChannel,
    PayerKey,
    PaymentDomain,
    SignedOp,
    TronAddress,
    Voucher,
)
from requester.tron.ledger import TronLedger
from requester.tron.tx_journal import JOURNAL_FILE, TxJournal
from tests.processes import Running, start_tron_node

KEYS = [PayerKey(bytes([n]) * 32) for n in (0x11, 0x22, 0x33, 0x44, 0x55, 0x66)]
PAYER, PAYEE, LOW_FEE_PAYER, SDK_PAYER, KILLED_PAYER, SETTLING_PAYER = KEYS
ONE = BTT.one
ROOT = Path(__file__).resolve().parents[2]


def start_node() -> Running:
    funds = [arg for k in KEYS for arg in ("--fund", f"{k.address}=2000,100")]
    return start_tron_node("--close-grace", "1h", *funds)


@pytest.fixture(scope="module")
def node() -> Iterator[Running]:
    running = start_node()
    yield running
    running.stop()


@pytest.fixture
def own_node() -> Iterator[Running]:
    """A node of its own: the lifecycle counts every channel on it, and moves its clock."""
    running = start_node()
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def tron_url(node: Running) -> str:
    return "tron+" + node.url


def tron(node: Running, session: aiohttp.ClientSession, key: PayerKey, data_dir: Path | None = None,
         fee_limit: int = 50_000_000) -> TronLedger:  # fmt: skip
    ledger = open_ledger(tron_url(node), session, key=key, data_dir=data_dir,
                         fee_limit=fee_limit)  # fmt: skip
    assert isinstance(ledger, TronLedger)
    return ledger


async def node_time(ledger: TronLedger) -> int:
    return int((await ledger.info())["time"])


async def set_time(node: Running, session: aiohttp.ClientSession, unix: int) -> None:
    async with session.post(f"{node.url}/atlas/time", json={"set": unix}) as resp:
        assert resp.status == 200, await resp.text()


async def refused(call: object, status: int, code: str) -> LedgerError:
    with pytest.raises(LedgerError) as caught:
        await call  # type: ignore[misc]
    assert (caught.value.status, caught.value.code) == (status, code), caught.value
    return caught.value


async def conserved(ledger: TronLedger, channel_ids: list[bytes]) -> None:
    """The contract holds exactly the sum of (deposit - redeemed) over open channels."""
    contract = TronAddress.parse(str((await ledger.info())["contract_address"]))
    held = 0
    for cid in channel_ids:
        view = await ledger.channel(cid)
        if view["status"] == "open":
            held += int(view["deposit"]) - int(view["redeemed"])
    assert await ledger.balance(contract) == held


async def test_a_channel_lives_and_ends_with_the_embedded_ledgers_answers(
    own_node: Running, session: aiohttp.ClientSession,
) -> None:  # fmt: skip
    node = own_node
    payer, edge = tron(node, session, PAYER), tron(node, session, PAYEE)
    try:
        domain = await payer.domain()
        assert domain.chain_id == 0x2B6653DC and await payer.asset() == BTT
        now = await node_time(payer)
        mine: list[bytes] = []
        start_payer, start_payee = await payer.balance(PAYER.address), await edge.balance(
            PAYEE.address)  # fmt: skip
        opened = await payer.open_channel(PAYER, PAYEE.address, 3 * ONE, now + 3600)
        view = opened["channel"]
        cid = bytes.fromhex(view["channel_id"])
        mine.append(cid)
        assert {k: view[k] for k in ("payer", "payee", "asset", "deposit", "redeemed",
                                     "expires_at", "status")} == {
            "payer": str(PAYER.address), "payee": str(PAYEE.address), "asset": BTT.uri,
            "deposit": str(3 * ONE), "redeemed": "0", "expires_at": now + 3600, "status": "open",
        }  # fmt: skip
        assert opened["replayed"] is False and await payer.channel(cid) == view
        assert await payer.balance(PAYER.address) == start_payer - 3 * ONE
        await conserved(payer, mine)

        def voucher(amount: int, in_domain: PaymentDomain = domain) -> Voucher:
            return Voucher.create(PAYER, domain=in_domain, channel_id=cid, payee=PAYEE.address,
                                  asset=BTT, amount=amount)  # fmt: skip

        first = await edge.redeem(voucher(ONE // 4))
        assert first["credited"] == str(ONE // 4)
        assert await edge.balance(PAYEE.address) == start_payee + ONE // 4
        await conserved(payer, mine)
        second = await edge.redeem(voucher(6 * ONE // 10))
        assert second["credited"] == str(35 * ONE // 100)
        assert await edge.balance(PAYEE.address) == start_payee + 6 * ONE // 10
        assert second["channel"]["redeemed"] == str(6 * ONE // 10)
        await conserved(payer, mine)

        await refused(edge.redeem(voucher(6 * ONE // 10)), 409, "already_redeemed")
        elsewhere = PaymentDomain(0xCD8690DC, domain.contract)  # Nile's chain id
        await refused(edge.redeem(voucher(ONE, elsewhere)), 400, "wrong_binding")
        good = voucher(ONE)
        s = int.from_bytes(good.signature[32:64], "big")
        n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
        flipped = good.signature[:32] + (n - s).to_bytes(32, "big") + bytes(
            [55 - good.signature[64]])  # fmt: skip
        high_s = Voucher(domain, cid, PAYER.address, PAYEE.address, BTT, ONE, flipped)
        await refused(edge.redeem(high_s), 400, "invalid_signature")
        await refused(edge.redeem(voucher(3 * ONE + 1)), 409, "deposit_exceeded")
        await refused(payer.reclaim(PAYER, cid), 409, "not_expired")
        assert await edge.balance(PAYEE.address) == start_payee + 6 * ONE // 10
        await conserved(payer, mine)

        await set_time(node, session, now + 3600)  # the channel's expiry, on the node's clock
        await refused(edge.redeem(voucher(7 * ONE // 10)), 409, "channel_expired")
        reclaimed = await payer.reclaim(PAYER, cid)
        assert reclaimed["returned"] == str(24 * ONE // 10)
        assert reclaimed["channel"]["status"] == "reclaimed"
        assert await payer.balance(PAYER.address) == start_payer - 6 * ONE // 10
        await conserved(payer, mine)
        await refused(payer.reclaim(PAYER, cid), 409, "already_reclaimed")
        await conserved(payer, mine)
    finally:
        await payer.close()
        await edge.close()


async def test_a_top_up_sent_again_after_a_lost_answer_charges_once(
    node: Running, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    ledger = tron(node, session, PAYER, tmp_path)
    try:
        now = await node_time(ledger)
        opened = await ledger.open_channel(PAYER, PAYEE.address, 2 * ONE, now + 7200)
        cid = bytes.fromhex(opened["channel"]["channel_id"])
        recorded: list[SignedOp] = []
        balance = await ledger.balance(PAYER.address)
        await ledger.top_up(PAYER, cid, ONE, now + 7200, record=recorded.append)  # answer "lost"
        again = await ledger.send(recorded[0])
        assert again["replayed"] is True and again["channel"]["deposit"] == str(3 * ONE)
    finally:
        await ledger.close()
    restarted = tron(node, session, PAYER, tmp_path)  # the journal survives the process
    try:
        assert (await restarted.send(recorded[0]))["channel"]["deposit"] == str(3 * ONE)
        assert await restarted.balance(PAYER.address) == balance - ONE
    finally:
        await restarted.close()


@pytest.mark.parametrize(
    ("what", "point", "late"),
    [("topup", "tron.signed_persisted=2", False), ("topup", "tron.broadcast_sent=2", False),
     ("topup", "tron.receipt_seen=2", False), ("open", "tron.signed_persisted=2", False),
     ("topup", "tron.signed_persisted=2", True)],
)  # fmt: skip
async def test_a_payer_killed_between_a_transactions_steps_applies_it_once(
    node: Running, session: aiohttp.ClientSession, tmp_path: Path, what: str, point: str,
    late: bool,
) -> None:  # fmt: skip
    """Hit 1 of each point is the approve, hit 2 the open or top-up itself. ``late``: the
    restart comes after the journaled transaction expired unsent, so a new one carries it."""
    key = KILLED_PAYER
    ledger = tron(node, session, key, tmp_path)
    store = PayerStore(tmp_path / "state.sqlite3")
    journal = TxJournal(tmp_path / JOURNAL_FILE)  # the worker's too: what its kill left
    try:
        manager = ChannelManager(key, store, ledger)
        now = await node_time(ledger)
        cid = (await manager.open_channel(PAYEE.address, ONE, now, 7200)).terms.channel_id
        balance = await ledger.balance(key.address)
        before = {e.intent for e in journal.entries()}
        target = cid.hex() if what == "topup" else str(PAYEE.address)
        await killed_worker(node, tmp_path, key, point, what, target, str(2 * ONE), str(now))
        name = point.partition("=")[0]
        (left,) = [e for e in journal.entries(what) if e.intent not in before]  # the kill's
        assert (left.state, left.txid is not None) == (
            "confirmed" if name == "tron.receipt_seen" else "signed", True)  # fmt: skip
        if late:
            assert left.expiration is not None
            await set_time(node, session, left.expiration // 1000 + 1)
        settled = await ChannelManager(key, store, ledger).settle_pending(now)
        assert [s.left for s in settled] == [None], settled
        done = journal.get(left.intent)
        assert done is not None and done.state == "confirmed"
        if late:  # the expired transaction was replaced, once
            assert done.txid != left.txid and done.superseded == [left.txid]
        else:  # the same bytes, never rebuilt
            assert (done.txid, done.superseded) == (left.txid, [])
        assert await ledger.balance(key.address) == balance - 2 * ONE  # charged once
        if what == "topup":
            assert (await ledger.channel(cid))["deposit"] == str(3 * ONE)
            (stored,) = [c for c in store.channels() if c.terms.channel_id == cid]
            assert stored.terms.deposit == 3 * ONE
        else:
            assert sorted(c.terms.deposit for c in store.channels()) == [ONE, 2 * ONE]
        assert store.pending() == []
    finally:
        journal.close()
        store.close()
        await ledger.close()


@pytest.mark.parametrize("what", ["redeem", "reclaim"])
async def test_a_redeem_or_reclaim_killed_after_its_broadcast_applies_once(
    node: Running, session: aiohttp.ClientSession, tmp_path: Path, what: str
) -> None:
    """The edge's redeem, or the payer's reclaim, dies between its broadcast and its
    receipt; the same call after the restart follows the journaled transaction: the payee
    is credited (or the payer repaid) once, and a new call is refused."""
    payer = tron(node, session, SETTLING_PAYER, tmp_path / "payer")
    try:
        now = await node_time(payer)
        opened = await payer.open_channel(SETTLING_PAYER, PAYEE.address, 2 * ONE, now + 600)
        cid = bytes.fromhex(opened["channel"]["channel_id"])
        voucher = Voucher.create(SETTLING_PAYER, domain=await payer.domain(), channel_id=cid,
                                 payee=PAYEE.address, asset=BTT, amount=ONE // 2)  # fmt: skip
        if what == "reclaim":
            await set_time(node, session, now + 600)
        key, home = (PAYEE, tmp_path / "edge") if what == "redeem" else (
            SETTLING_PAYER, tmp_path / "payer")  # fmt: skip
        target = voucher.to_header() if what == "redeem" else cid.hex()
        before = await payer.balance(key.address)
        await killed_worker(node, home, key, "tron.broadcast_sent=1", what, target, "0", "0")
        restarted = tron(node, session, key, home)
        try:
            if what == "redeem":
                again = await restarted.redeem(voucher)
                assert again["credited"] == str(ONE // 2)
                await refused(restarted.redeem(voucher), 409, "already_redeemed")
            else:
                again = await restarted.reclaim(key, cid)
                assert again["returned"] == str(2 * ONE)
                await refused(restarted.reclaim(key, cid), 409, "already_reclaimed")
            assert await payer.balance(key.address) == before + (
                ONE // 2 if what == "redeem" else 2 * ONE)  # once  # fmt: skip
        finally:
            await restarted.close()
    finally:
        await payer.close()


async def killed_worker(node: Running, home: Path, key: PayerKey, point: str,
                        *call: str) -> None:  # fmt: skip
    """Run ``call`` (tests/tron/tron_payer_worker.py) from ``home`` and see it killed at
    ``point``."""
    argv = [sys.executable, "-m", "tests.tron.tron_payer_worker", str(home), tron_url(node),
            key.secret.hex(), *call]  # fmt: skip
    worker = await asyncio.create_subprocess_exec(
        *argv, cwd=ROOT, env={**os.environ, ENV: point}, stdout=PIPE, stderr=PIPE
    )
    _, stderr = await asyncio.wait_for(worker.communicate(), 60)
    name, _, hit = point.partition("=")
    assert worker.returncode == -9 and f"{name} reached (hit {hit})" in stderr.decode(), stderr


async def test_an_open_out_of_energy_changes_nothing_and_says_so(
    node: Running, session: aiohttp.ClientSession
) -> None:
    key = LOW_FEE_PAYER
    rich = tron(node, session, key)
    poor = tron(node, session, key, fee_limit=2_000_000)  # 2 TRX: an approve, not an open
    try:
        now = await node_time(rich)
        contract = TronAddress.parse(str((await rich.info())["contract_address"]))
        held, tokens = await rich.balance(contract), await rich.balance(key.address)
        calls: list[SignedOp] = []
        opening = poor.open_channel(key, PAYEE.address, ONE, now + 600, record=calls.append)
        failed = await refused(opening, 402, "out_of_energy")
        assert "tron_fee_limit" in failed.detail
        op = calls[0].op
        assert isinstance(op, OpenChannel)
        cid = op.channel_id(await rich.domain())
        await refused(rich.channel(cid), 404, "not_found")
        assert (await rich.balance(contract), await rich.balance(key.address)) == (held, tokens)
        await refused(poor.send(calls[0]), 402, "out_of_energy")  # built anew: fails alike
        assert (await rich.balance(contract), await rich.balance(key.address)) == (held, tokens)
        opened = await rich.send(calls[0])  # the same call with a fee limit that suffices
        assert opened["channel"]["deposit"] == str(ONE)
    finally:
        await rich.close()
        await poor.close()


async def test_the_sdk_opens_and_tops_up_channels_on_the_contract(
    node: Running, session: aiohttp.ClientSession, tmp_path: Path
) -> None:
    ledger = tron(node, session, SDK_PAYER, tmp_path)
    store = PayerStore(tmp_path / "state.sqlite3")
    try:
        manager = ChannelManager(SDK_PAYER, store, ledger)
        now = await node_time(ledger)
        channel = await manager.open_channel(PAYEE.address, 2 * ONE, now, 3600)
        assert channel.terms.domain == await ledger.domain() and channel.terms.asset == BTT
        await manager.top_up(channel.terms.channel_id, ONE, 7200, now)
        assert channel.terms.deposit == 3 * ONE and channel.terms.expires_at == now + 7200
        (stored,) = store.channels()
        assert (stored.terms.deposit, stored.terms.expires_at, stored.ledger) == (
            3 * ONE, now + 7200, tron_url(node))  # fmt: skip
        view = await ledger.channel(channel.terms.channel_id)
        assert (view["deposit"], view["expires_at"]) == (str(3 * ONE), now + 7200)
        assert store.pending() == []
        listed = await ledger.channels(SDK_PAYER.address)
        assert [v["channel_id"] for v in listed] == [channel.terms.channel_id.hex()]
        info = json.dumps(await ledger.info())
        assert "tron" in info
    finally:
        store.close()
        await ledger.close()
