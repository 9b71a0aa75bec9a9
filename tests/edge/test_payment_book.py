"""The edge's payment book in process: group commit, durability on return, one decode.

No ledger process: a stub answers the one question the book asks it (the
channel's terms). Durability is checked through a second SQLite connection,
as a restarted edge would read it.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path
from typing import Any, cast

import pytest

from cdn_edge.payments import CreditClaim, PaymentBook
from requester.ledger_client import LedgerClient, LedgerError
from requester.protocol import (
    BTT_LOCAL,
    ChannelTerms,
    CreditSpend,
    PayerChannel,
    PayerKey,
    PaymentDomain,
    SendVoucher,
    Underpaid,
    WrongBinding,
    identity,
)
from requester.protocol import voucher as voucher_module
from requester.protocol.assets import LOCAL_CHAIN_ID
from requester.protocol.payment_domain import LOCAL_LEDGER_CONTRACT

DOMAIN = PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
PAYEE = PayerKey.generate().address
DEPOSIT = 10**6
PRICE = 10


class StubLedger:
    def __init__(self) -> None:
        self.terms: dict[bytes, ChannelTerms] = {}

    async def channel(self, channel_id: bytes, wait: object = None) -> dict[str, Any]:
        await asyncio.sleep(0)  # a real ledger call yields: concurrent requests overlap
        t = self.terms.get(channel_id)
        if t is None:
            raise LedgerError(404, "not_found", f"no channel {channel_id.hex()}")
        return {
            "payee": str(t.payee), "payer": str(t.payer), "status": "open",
            "asset": t.asset.uri, "deposit": str(t.deposit), "expires_at": t.expires_at,
        }  # fmt: skip


def open_channel(ledger: StubLedger, number: int) -> PayerChannel:
    key = PayerKey.generate()
    channel_id = number.to_bytes(32, "big")
    terms = ChannelTerms(DOMAIN, channel_id, key.address, PAYEE, BTT_LOCAL, DEPOSIT,
                         int(time.time()) + 86400)  # fmt: skip
    ledger.terms[channel_id] = terms
    return PayerChannel(terms, key)


def next_voucher(channel: PayerChannel) -> bytes:
    send = channel.pay(PRICE, int(time.time()))[1]
    assert isinstance(send, SendVoucher)
    return send.voucher.encode()


def durable_paid(path: Path, channel: PayerChannel) -> int:
    """What a restarted edge would read for ``channel``: only committed rows."""
    with sqlite3.connect(path) as db:
        row = db.execute(
            "SELECT paid FROM channels WHERE channel_id=?", (channel.terms.channel_id.hex(),)
        ).fetchone()
    return int(row[0]) if row else 0


@pytest.fixture
async def book(tmp_path: Path) -> Any:
    ledger = StubLedger()
    payments = PaymentBook(tmp_path / "payments.sqlite3", PAYEE, DOMAIN,
                           cast(LedgerClient, ledger))  # fmt: skip
    await payments.open()
    yield payments, ledger, tmp_path / "payments.sqlite3"
    await payments.close()


async def test_concurrent_vouchers_share_commits_and_each_is_durable_on_return(
    book: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payments, ledger, path = book
    commits: list[int] = []
    save_rows = payments._rows._save_rows

    def counted(rows: list[Any]) -> None:
        commits.append(len(rows))
        save_rows(rows)

    monkeypatch.setattr(payments._rows, "_save_rows", counted)
    channels = [open_channel(ledger, n) for n in range(1, 9)]

    async def pay_many(channel: PayerChannel) -> None:
        for _ in range(15):
            await payments.charge(next_voucher(channel), None, PRICE, int(time.time()))
            # A returned charge is on disk: the chunk it pays for may be sent now.
            assert durable_paid(path, channel) == channel.issued

    await asyncio.gather(*(pay_many(c) for c in channels))
    charges = 8 * 15
    assert sum(commits) >= charges
    assert len(commits) < charges, "vouchers accepted together must share a commit"
    assert max(commits) > 1


async def test_a_failed_commit_fails_its_whole_batch_and_nothing_is_credited(
    book: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payments, ledger, path = book
    first, second = open_channel(ledger, 1), open_channel(ledger, 2)
    for channel in (first, second):  # known to the book, so the next charges batch together
        await payments.charge(next_voucher(channel), None, PRICE, int(time.time()))
    save_rows = payments._rows._save_rows

    def disk_full(rows: list[Any]) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(payments._rows, "_save_rows", disk_full)
    lost = [next_voucher(first), next_voucher(second)]
    results = await asyncio.gather(
        *(payments.charge(v, None, PRICE, int(time.time())) for v in lost),
        return_exceptions=True,
    )
    assert all(isinstance(r, sqlite3.OperationalError) for r in results)
    monkeypatch.setattr(payments._rows, "_save_rows", save_rows)
    # The refused vouchers were never credited: the book reloads what is on disk, and a
    # later voucher (for both chunks' worth) pays for one more chunk and leaves credit.
    await payments.charge(next_voucher(first), None, PRICE, int(time.time()))
    records = {r.channel_id: r for r in await payments.records()}
    row = records[first.terms.channel_id.hex()]
    assert (row.paid, row.consumed) == (3 * PRICE, 2 * PRICE)
    assert durable_paid(path, second) == PRICE


async def test_each_voucher_signature_is_recovered_once(
    book: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    payments, ledger, _ = book
    channel = open_channel(ledger, 1)
    await payments.charge(next_voucher(channel), None, PRICE, int(time.time()))
    recoveries: list[bytes] = []
    recover = identity.recover_signer

    def counted(digest: bytes, signature: bytes, what: str) -> Any:
        recoveries.append(digest)
        return recover(digest, signature, what)

    monkeypatch.setattr(voucher_module, "recover_signer", counted)
    await payments.charge(next_voucher(channel), None, PRICE, int(time.time()))
    assert len(recoveries) == 1


async def test_a_flood_of_made_up_channel_ids_leaves_no_lock_behind(book: Any) -> None:
    """Issue 13, defect 6: each made-up id used to leave a lock in the table for good."""
    payments, ledger, _ = book
    real = open_channel(ledger, 1)
    strangers = [os.urandom(32) for _ in range(2000)]

    stranger_key = PayerKey.generate()

    async def stranger(channel_id: bytes) -> BaseException | None:
        spend = CreditSpend.create(
            stranger_key, domain=DOMAIN, channel_id=channel_id, content_id=bytes(32), index=0,
            issued_at=int(time.time()), nonce=os.urandom(16),
        )  # fmt: skip
        try:
            await payments.charge(None, CreditClaim(spend, bytes(32), 0), PRICE, int(time.time()))
        except WrongBinding as exc:  # "does not exist on the ledger"
            return exc
        return None

    async def payer() -> None:
        for _ in range(20):
            await payments.charge(next_voucher(real), None, PRICE, int(time.time()))

    results = await asyncio.gather(*(stranger(c) for c in strangers), payer())
    assert all(isinstance(r, WrongBinding) for r in results[:-1])
    assert payments._locks == {}  # nothing left by 2000 refusals and 20 accepted vouchers
    assert durable_paid(book[2], real) == 20 * PRICE


async def test_waiters_share_a_lock_until_the_last_leaves(book: Any) -> None:
    """Pruning must not hand a second lock to a request that waits behind the first."""
    payments, ledger, _ = book
    channel = open_channel(ledger, 1)
    await payments.charge(next_voucher(channel), None, PRICE, int(time.time()))
    vouchers = [next_voucher(channel) for _ in range(30)]
    results = await asyncio.gather(
        *(payments.charge(v, None, PRICE, int(time.time())) for v in vouchers),
        return_exceptions=True,
    )
    # Vouchers raced past each other; each one is either accepted in turn or overtaken by
    # a larger one already accepted, and the book ends at the largest one.
    assert not [r for r in results if isinstance(r, BaseException)]
    assert durable_paid(book[2], channel) == 31 * PRICE
    assert payments._locks == {}
    with pytest.raises(Underpaid):
        await payments.charge(next_voucher(channel), None, DEPOSIT, int(time.time()))
    assert payments._locks == {}
