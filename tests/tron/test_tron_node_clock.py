"""The node's clock, its flags and its stop: ``POST /atlas/time`` moves ``block.timestamp``
and transaction expiry together; ``--chain-id`` is what ``block.chainid`` reads."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from typing import Any

import pytest
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.exceptions import TransactionError
from tronpy.keys import PrivateKey
from tronpy.providers import HTTPProvider

from requester.protocol import BTT as BTT_ASSET
from requester.protocol import PayerKey, PaymentDomain, TronAddress, Voucher, channel_id
from tests.processes import Running, start_tron_node
from tests.tron.node_client import (
    BTT,
    FEE_LIMIT,
    PROBE_ABI,
    PROBE_INIT,
    address,
    control,
    deploy,
    funded,
    key,
)

NILE = 0xCD8690DC
DAY = 86400


@pytest.fixture
def node() -> Iterator[Running]:
    running = start_tron_node("--chain-id", hex(NILE), "--close-grace", "90m",
                              "--fund", f"{address(key('clock-alice'))}=300,2")  # fmt: skip
    yield running
    running.stop()


def test_clock_moves_block_time_and_expiry(node: Running) -> None:
    tron = Tron(HTTPProvider(node.url))
    owner = funded(node, "clock-owner", trx=500)
    receipt = deploy(tron, owner, Contract(name="Probe", bytecode=PROBE_INIT.hex(), abi=PROBE_ABI))
    probe = tron.get_contract(receipt["contract_address"])
    stamp, chain_id, number = probe.functions.probe()
    assert chain_id == NILE and number == tron.get_latest_block_number()
    assert abs(stamp - time.time()) < 30

    moved = control(node, "time", {"advance": 2 * DAY})
    assert moved.status_code == 200 and moved.json()["offset"] == pytest.approx(2 * DAY)
    assert control(node, "time").json()["now"] == pytest.approx(time.time() + 2 * DAY, abs=30)
    later, _, _ = probe.functions.probe()
    assert later >= stamp + 2 * DAY

    # tronpy stamps expiry from this machine's clock: two days behind the chain's now.
    stale = tron.trx.transfer(address(owner), address(key("clock-to")), 1).build().sign(owner)
    with pytest.raises(TransactionError, match="Transaction expired"):
        stale.broadcast()
    ahead = tron.trx.transfer(address(owner), address(key("clock-to")), 1)
    fresh = ahead.expiration(2 * DAY * 1000 + 60_000).build().sign(owner).broadcast().wait()
    assert fresh["blockTimeStamp"] // 1000 >= later

    for bad in ({"set": 0}, {"advance": -1}, {"advance": "soon"}, {"advance": 1, "set": 5}):
        refused = control(node, "time", bad)
        assert refused.status_code == 400 and refused.json()["type"].endswith("/bad_request")


def test_flags_set_chain_close_grace_and_funds(node: Running) -> None:
    tron = Tron(HTTPProvider(node.url))
    ready = node.ready
    assert ready["chain_id"] == hex(NILE) and ready["close_grace"] == 90 * 60
    channels = tron.get_contract(str(ready["contract"]))
    assert (channels.functions.chainId(), channels.functions.closeGrace()) == (NILE, 90 * 60)
    token = tron.get_contract(str(ready["token"]))
    alice = address(key("clock-alice"))
    assert tron.get_account_balance(alice) == 300
    assert token.functions.balanceOf(alice) == 2 * 10**18
    assert node.stop(sig=signal.SIGTERM) == 0


def test_contract_addresses_are_the_same_at_every_start(node: Running) -> None:
    again = start_tron_node("--chain-id", hex(NILE), "--close-grace", "90m")
    try:
        for name in ("contract", "token", "variants", "channels_for"):
            assert again.ready[name] == node.ready[name]
    finally:
        again.stop()


def test_channel_energy_stays_under_the_issues_ceilings(node: Running) -> None:
    """The channel contract's operations, through the node's energy accounting."""
    tron = Tron(HTTPProvider(node.url))
    payer, payee = funded(node, "energy-payer", trx=500, btt=5), funded(node, "energy-payee")
    token = tron.get_contract(str(node.ready["token"]))
    channels = tron.get_contract(str(node.ready["contract"]))

    def energy(call: Any, who: PrivateKey, **raw: int) -> int:
        builder = call.with_owner(address(who)).fee_limit(FEE_LIMIT)
        builder._raw_data.update(raw)
        receipt = builder.build().sign(who).broadcast().wait()
        assert receipt["receipt"]["result"] == "SUCCESS", receipt
        return int(receipt["receipt"]["energy_usage_total"])

    energy(token.functions.approve(channels.address, 5 * BTT), payer)
    head = int(control(node, "time").json()["head_block"]["timestamp"]) // 1000
    used = {
        "open": energy(
            channels.functions.open(address(payee), 3 * BTT, head + 3600, bytes(32)), payer
        )
    }
    domain = PaymentDomain(NILE, TronAddress.parse(str(node.ready["contract"])).evm)
    payer_address, payee_address = (
        TronAddress.parse(address(payer)),
        TronAddress.parse(address(payee)),
    )
    channel = channel_id(domain, payer_address, payee_address, BTT_ASSET, bytes(32))
    voucher = Voucher.create(PayerKey(payer.to_bytes()), domain=domain, channel_id=channel,
                             payee=payee_address, asset=BTT_ASSET, amount=BTT // 4)  # fmt: skip
    used["redeem"] = energy(channels.functions.redeem(channel, BTT // 4, voucher.signature), payee)
    control(node, "time", {"advance": 3600})
    ahead = int(control(node, "time").json()["head_block"]["timestamp"]) + 60_000
    used["reclaim"] = energy(channels.functions.reclaim(channel), payer, expiration=ahead)
    assert used["open"] <= 130_000 and used["redeem"] <= 60_000 and used["reclaim"] <= 40_000, used
    assert token.functions.balanceOf(address(payee)) == BTT // 4
