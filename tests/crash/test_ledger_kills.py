"""The ledger killed -9 right after a redeem or a channel open commits, 20 times each.

The kill comes before the answer leaves the ledger: the caller sees the
connection drop and cannot know the call was applied. A payee resends its
voucher (credited once: refused as already redeemed if it had committed); a
payer, as the SDK does, keeps the open it recorded before sending as pending,
and settles it (adopts the channel, or sends the same open again) before its
next open. The ledger restarts on the same data dir, armed for the next kill,
and the books are checked each time: no channel is left that its payer does
not know.
(``tests/ledger/test_ledger_crash.py`` covers every call kind at both sides of
the commit, once each.)
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import pytest

from requester.channel_manager import ChannelManager
from requester.ledger_client import LedgerClient, LedgerError
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, PayerKey, PaymentDomain, Voucher
from tests.crash.armed import (
    Arming,
    client_of,
    died_at_failpoint,
    env_of,
    schedule,
)
from tests.crash.books import check_pending, payer_book, payer_pending, unknown_channels
from tests.ledger.support import ONE, funded, totals
from tests.processes import Running, start_ledger

pytestmark = pytest.mark.crash

PARTIES = 3
"""Payees redeeming (or payers opening) at once."""
MOST_CALLS = 50


class Ledger:
    """One ledger data dir across its restarts (each on a new port, so no other process
    can have taken the old one meanwhile)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.running: Running = start_ledger(data)

    @asynccontextmanager
    async def restarted(self, arming: Arming | None) -> AsyncIterator[LedgerClient]:
        """The ledger started again, armed or not, and a client with a fresh session
        (no pooled connection outlives the process it went to)."""
        self.running.stop()
        self.running = start_ledger(self.data, env=env_of(arming))
        async with client_of(self.running) as client:
            yield client


class Payee:
    """Redeems ever higher vouchers of one channel; after a drop, resends the same one."""

    def __init__(self, payer: PayerKey, key: PayerKey, channel_id: bytes,
                 rng: random.Random) -> None:  # fmt: skip
        self.payer, self.key, self.channel_id, self.rng = payer, key, channel_id, rng
        self.answered = 0
        """The highest amount the ledger answered for (credited, or already redeemed)."""
        self.sent = 0

    async def redeem(self, ledger: LedgerClient, domain: PaymentDomain) -> bool:
        """One redeem; False if the ledger dropped the connection."""
        if self.sent == self.answered:
            self.sent += self.rng.randint(1, 10**15)
        voucher = Voucher.create(
            self.payer, domain=domain, channel_id=self.channel_id, payee=self.key.address,
            asset=BTT_LOCAL, amount=self.sent,
        )  # fmt: skip
        try:
            await ledger.redeem(voucher)
        except LedgerError as exc:
            if exc.code == "ledger_unreachable":
                return False
            assert exc.code == "already_redeemed", exc  # it had committed before the kill
        self.answered = self.sent
        return True

    async def check(self, ledger: LedgerClient) -> None:
        """Redeemed wholly or not at all, and credited once."""
        redeemed = int((await ledger.channel(self.channel_id))["redeemed"])
        assert redeemed in (self.answered, self.sent), (redeemed, self.answered, self.sent)
        assert await ledger.balance(self.key.address) == redeemed


async def _until_down(call: Callable[[], Awaitable[bool]]) -> None:
    """Repeat ``call`` until it reports the ledger gone."""
    for _ in range(MOST_CALLS):
        if not await call():
            return
    raise AssertionError(f"the ledger took {MOST_CALLS} calls without dying")


async def test_ledger_killed_after_a_redeem_commits(tmp_path: Path, rng: random.Random) -> None:
    ledger = Ledger(tmp_path / "ledger")
    try:
        async with ledger.restarted(None) as client:
            payees = []
            for _ in range(PARTIES):
                payer, key = await funded(client, 20 * ONE), PayerKey.generate()
                view = await client.open_channel(payer, key.address, 10 * ONE,
                                                 int(time.time()) + 3600)  # fmt: skip
                cid = bytes.fromhex(view["channel"]["channel_id"])
                payees.append(Payee(payer, key, cid, rng))
        for arming in [*schedule(rng, "ledger.redeem_committed", most=2 * PARTIES), None]:
            async with ledger.restarted(arming) as client:
                await totals(client)
                for payee in payees:
                    await payee.check(client)
                domain = await client.domain()
                if arming is None:  # last: what was unanswered is sent again, once
                    assert all([await p.redeem(client, domain) for p in payees])
                    assert all([p.sent == p.answered for p in payees])
                    for payee in payees:
                        await payee.check(client)
                    continue
                await asyncio.gather(*(_until_down(partial(p.redeem, client, domain))
                                       for p in payees))  # fmt: skip
                died_at_failpoint(ledger.running.proc, arming)
    finally:
        ledger.running.stop()


async def test_ledger_killed_after_a_channel_open_commits(
    tmp_path: Path, rng: random.Random
) -> None:
    ledger = Ledger(tmp_path / "ledger")
    keys = [PayerKey.generate() for _ in range(PARTIES)]
    payee = PayerKey.generate().address
    paths = [tmp_path / f"payer{i}" / "state.sqlite3" for i in range(PARTIES)]
    stores = [PayerStore(path) for path in paths]
    try:
        async with ledger.restarted(None) as client:
            for key in keys:
                await client.faucet(key.address, 100 * ONE)
        plan = schedule(rng, "ledger.open_committed", most=2 * PARTIES)
        for arming in [*plan, None]:
            async with ledger.restarted(arming) as client:
                await totals(client)
                for key, path in zip(keys, paths, strict=True):
                    await _no_channel_stranded(client, key, path)
                managers = [ChannelManager(k, s, client) for k, s in zip(keys, stores, strict=True)]
                if arming is None:  # last: each payer settles what the kills cut off, and opens
                    for manager in managers:
                        await manager.open_channel(payee, ONE, int(time.time()))
                    for key, path in zip(keys, paths, strict=True):
                        await _no_channel_stranded(client, key, path, settled=True)
                    continue

                async def opened(manager: ChannelManager) -> bool:
                    try:
                        await manager.open_channel(payee, ONE, int(time.time()))
                    except LedgerError as exc:
                        assert exc.code == "ledger_unreachable", exc
                        return False
                    return True

                await asyncio.gather(*(_until_down(partial(opened, m)) for m in managers))
                died_at_failpoint(ledger.running.proc, arming)
    finally:
        ledger.running.stop()
        for store in stores:
            store.close()


async def _no_channel_stranded(ledger: LedgerClient, key: PayerKey, state: Path, *,
                               settled: bool = False) -> None:  # fmt: skip
    """Each channel the ledger holds for the payer is in its book with the deposit the
    ledger holds, or is an open it recorded before sending: the one a kill cut off, which
    its next open settles. With ``settled``, nothing is pending any more."""
    known, pending = payer_book(state), payer_pending(state)
    for cid, row in known.items():
        view = await ledger.channel(bytes.fromhex(cid))
        assert int(view["deposit"]) == row.deposit, (cid, view, row)
    await check_pending(ledger, pending)
    assert len(pending) <= (0 if settled else 1), pending
    opens = [p.channel_id for p in pending if p.kind == "open"]
    stranded = await unknown_channels(ledger, key.address, [*known, *opens])
    assert stranded == {}, f"{len(stranded)} channels the payer does not know: {stranded}"
