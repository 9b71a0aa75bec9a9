"""Two processes of one wallet pay from one ``state.sqlite3`` (the proxy beside ``atlas fetch``).

Each :class:`ChannelManager` keeps its channels in memory and reads the shared store again
only when another connection committed since (SQLite's ``data_version``). These tests run
two managers on two connections to one file, as two processes would, and check that what
one did (paid on, topped up, opened) is what the other continues from.
"""

from __future__ import annotations

import time
from pathlib import Path

import aiohttp

from requester import keystore
from requester.channel_manager import ChannelManager, DepositPolicy
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, NodeKey, PayerKey
from tests.conftest import make_quote
from tests.processes import Running
from tests.sdk.conftest import PASSPHRASE, make_home

BTT = BTT_LOCAL.one


async def test_a_top_up_by_another_process_is_paid_on_not_repeated(
    ledger: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "home", [], ledger.url, funds=0)
    keys = keystore.load(home.path / "wallet.json", PASSPHRASE)
    path = home.path / "state.sqlite3"
    first, second = PayerStore(path), PayerStore(path)
    payee = PayerKey.generate().address
    now = int(time.time())
    quote = make_quote(NodeKey.generate(), payee, valid_from=now - 10, valid_until=now + 3600)
    policy = DepositPolicy(2 * BTT, 3600)
    try:
        async with aiohttp.ClientSession() as session:
            client = LedgerClient(home.ledger, session)
            await client.faucet(keys.payer.address, 100 * BTT)
            one = ChannelManager(keys.payer, first, client, policy)
            other = ChannelManager(keys.payer, second, client, policy)
            amounts = [(await one.pay(quote, BTT, now)).amount]  # opens 2 BTT
            amounts.append((await one.pay(quote, BTT // 2, now)).amount)  # 0.5 BTT left
            amounts.append((await other.pay(quote, BTT // 2, now)).amount)  # fills it
            amounts.append((await other.pay(quote, BTT, now)).amount)  # tops it up to 4
            # Only the store tells `one` of the top-up and of 3 BTT issued: paying from what
            # it last read (0.5 BTT left) would top up again, 6 BTT locked.
            amounts.append((await one.pay(quote, BTT, now)).amount)
            on_ledger = await client.channels(keys.payer.address)
    finally:
        first.close()
        second.close()
    assert amounts == [BTT, 3 * BTT // 2, 2 * BTT, 3 * BTT, 4 * BTT]
    [stored] = PayerStore(path).channels(payee=payee)
    assert (stored.terms.deposit, stored.issued) == (4 * BTT, 4 * BTT)
    assert [int(c["deposit"]) for c in on_ledger] == [4 * BTT]


async def test_many_payments_elsewhere_between_two_of_ours(ledger: Running, tmp_path: Path) -> None:
    """More payments by the other process than a payment retries (8) still leave ours
    exactly one step above the last of them."""
    home = make_home(tmp_path / "home", [], ledger.url, funds=0)
    keys = keystore.load(home.path / "wallet.json", PASSPHRASE)
    path = home.path / "state.sqlite3"
    first, second = PayerStore(path), PayerStore(path)
    payee = PayerKey.generate().address
    now = int(time.time())
    quote = make_quote(NodeKey.generate(), payee, valid_from=now - 10, valid_until=now + 3600)
    step = BTT // 100
    try:
        async with aiohttp.ClientSession() as session:
            client = LedgerClient(home.ledger, session)
            await client.faucet(keys.payer.address, 100 * BTT)
            one = ChannelManager(keys.payer, first, client, DepositPolicy(BTT, 3600))
            other = ChannelManager(keys.payer, second, client, DepositPolicy(BTT, 3600))
            assert (await one.pay(quote, step, now)).amount == step
            for n in range(2, 13):
                assert (await other.pay(quote, step, now)).amount == n * step
            assert (await one.pay(quote, step, now)).amount == 13 * step
            assert (await one.pay(quote, step, now)).amount == 14 * step  # nothing new: no read
    finally:
        first.close()
        second.close()
    [stored] = PayerStore(path).channels(payee=payee)
    assert stored.issued == 14 * step
