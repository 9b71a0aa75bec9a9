"""The node's clock, its flags and its stop: ``POST /atlas/time`` moves ``block.timestamp``
and transaction expiry together; ``--chain-id`` is what ``block.chainid`` reads."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator

import pytest
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.exceptions import TransactionError
from tronpy.providers import HTTPProvider

from tests.processes import Running, start_tron_node
from tests.tron.node_client import PROBE_ABI, PROBE_INIT, address, control, deploy, funded, key

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
