"""An optional smoke test of TronLedger on TRON's Nile testnet: never in CI.

It runs only when ``ATLAS_NILE_KEY`` names a funded Nile key (hex secret, with test
TRX for energy and the deployment's token) and ``ATLAS_NILE_CONTRACT`` an AtlasChannels
deployed there (``atlas ledger deploy --node https://nile.trongrid.io --token T...``).
It opens a small channel to a fresh payee, redeems half of it with a voucher the SDK
signs, and asks for the channel to close: the same calls the offline node's tests make,
against java-tron itself. ``TRON_PRO_API_KEY`` is read from the environment if set.
``ATLAS_NILE_URL`` (default ``tron:nile``) lets the test be rehearsed on the offline node
started with ``--chain-id 0xcd8690dc``.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aiohttp
import pytest

from requester.ledger_api import open_ledger
from requester.protocol import PayerKey, Voucher
from requester.tron.ledger import TronLedger

NILE_KEY = os.environ.get("ATLAS_NILE_KEY", "")
NILE_CONTRACT = os.environ.get("ATLAS_NILE_CONTRACT", "")
NILE_URL = os.environ.get("ATLAS_NILE_URL", "tron:nile")
DEPOSIT = 10**15  # 0.001 of an 18-decimal token

pytestmark = pytest.mark.skipif(
    not (NILE_KEY and NILE_CONTRACT),
    reason="set ATLAS_NILE_KEY (a funded Nile key) and ATLAS_NILE_CONTRACT to run on Nile",
)


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


async def test_a_channel_opens_redeems_and_closes_on_nile(
    session: aiohttp.ClientSession,
) -> None:
    payer_key, payee_key = PayerKey(bytes.fromhex(NILE_KEY)), PayerKey.generate()
    ledger = open_ledger(NILE_URL, session, key=payer_key, contract=NILE_CONTRACT,
                         fee_limit=150_000_000)  # fmt: skip
    assert isinstance(ledger, TronLedger)
    try:
        domain = await ledger.domain()
        assert domain.chain_id == 0xCD8690DC
        now = int((await ledger.info())["time"])
        opened = await ledger.open_channel(payer_key, payee_key.address, DEPOSIT, now + 3600)
        cid = bytes.fromhex(opened["channel"]["channel_id"])
        half = Voucher.create(payer_key, domain=domain, channel_id=cid,
                              payee=payee_key.address, asset=await ledger.asset(),
                              amount=DEPOSIT // 2)  # fmt: skip
        redeemed = await ledger.redeem(half)  # anyone may redeem: the payer pays the energy
        assert redeemed["credited"] == str(DEPOSIT // 2)
        assert await ledger.balance(payee_key.address) == DEPOSIT // 2
        closing = await ledger.request_close(payer_key, cid)
        assert closing["channel"]["expires_at"] <= now + 3600
    finally:
        await ledger.close()
