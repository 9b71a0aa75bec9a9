"""End to end on TRON (issue 15), all real processes: an offline TRON node, ``atlas up``
on it (3 edges charging from the first byte, the proxy), ``atlas fetch`` of 8 MiB through
the three edges. The edges redeem when ``atlas up`` stops (not before); then, read on chain through
unmodified tronpy, the money is conserved: what the payer's token balance lost, less what
its open channels still lock, equals what ``atlas fetch --json`` says it paid, each edge
redeemed from the payer's channel what the summary says that edge was paid, and the edges
together gained that much (edges pay each other for replicas: what they hold counts their
balances and what their own channels still lock in the contract). The node runs apart
from ``atlas up`` (``--ledger tron+http://...``) so its chain outlives the network and can
be read after."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from eth_abi.abi import decode
from tronpy import Tron
from tronpy.providers import HTTPProvider

from requester.protocol import TronAddress
from tests.launcher.atlas_up import ATLAS, env, fetch, start_up
from tests.origin_server import pattern
from tests.processes import Running, start

SIZE = 8 << 20
NOBODY = TronAddress(b"\x41" + bytes(20)).base58()
"""The caller of reads (an account without code, as java-tron wants)."""


@pytest.fixture
def node() -> Iterator[Running]:
    running = start(["ledger", "tron-node", "--host", "127.0.0.1", "--port", "0"])
    yield running
    running.stop()


class Chain:
    """Reads of the node's contracts, as any TRON client makes them."""

    def __init__(self, node: Running) -> None:
        self.client = Tron(HTTPProvider(node.url))
        self.contract, self.token = str(node.ready["contract"]), str(node.ready["token"])

    def _call(self, at: str, signature: str, args: bytes, kinds: list[str]) -> tuple[object, ...]:
        raw = self.client.trigger_const_smart_contract_function(NOBODY, at, signature, args.hex())
        return tuple(decode(kinds, bytes.fromhex(raw)))

    def balance(self, who: str) -> int:
        word = TronAddress.parse(who).evm.rjust(32, b"\0")
        (units,) = self._call(self.token, "balanceOf(address)", word, ["uint256"])
        assert isinstance(units, int)
        return units

    def channel(self, channel_id: str) -> tuple[str, int, int, int]:
        """(payee, deposit, redeemed, status) of a channel."""
        kinds = ["address", "uint64", "address", "uint64", "uint128", "uint128", "uint8"]
        view = self._call(self.contract, "channels(bytes32)", bytes.fromhex(channel_id), kinds)
        payee = TronAddress.parse(str(view[2])).base58()
        return payee, int(view[4]), int(view[5]), int(view[6])  # type: ignore[call-overload]


def channel_list(data_dir: Path) -> list[dict[str, str]]:
    """The payer's channels, as ``atlas channel list --json`` on the data dir shows them."""
    listed = subprocess.run(
        [*ATLAS, "channel", "list", "--json"], env={**env(), "ATLAS_HOME": str(data_dir)},
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    found: list[dict[str, str]] = json.loads(listed.stdout)
    return found


def payee_of(edge: str) -> str:
    return str(requests.get(f"{edge}/v1/info", timeout=10).json()["payee"])


def test_a_paid_fetch_on_tron_conserves_money_on_chain(
    origin: Running, node: Running, tmp_path: Path
) -> None:
    chain, data_dir = Chain(node), tmp_path / "atlas"
    up = start_up(data_dir, "--ledger", f"tron+{node.url}", edges=3,
                  more_env={"ATLAS_FREE_MIB": "0"})  # fmt: skip
    try:
        assert up.info["ledger_backend"] == "tron" and up.info["contract"] == chain.contract
        payer = str(up.info["wallet"])
        payees = {edge: payee_of(edge) for edge in up.edges}
        before = {who: chain.balance(who) for who in [payer, *payees.values()]}
        done = fetch(data_dir, f"{origin.url}/bytes/{SIZE}?t=tron-e2e", tmp_path / "out", "--json")
        assert done.returncode == 0, done.stderr
        assert (tmp_path / "out").read_bytes() == pattern(0, SIZE)
        summary = json.loads(done.stdout)
        running = [chain.channel(c["channel_id"]) for c in channel_list(data_dir)]
        assert len(running) == 3 and all(r == 0 for _, _, r, _ in running)  # not yet redeemed
    finally:
        up.proc.send_signal(signal.SIGINT)
        assert up.wait() == 0  # the edges redeemed before it returned
    providers = summary["providers"]
    assert set(providers) == set(up.edges)  # paid through all three
    assert all(int(p["paid"]) > 0 for p in providers.values())
    channels = [chain.channel(c["channel_id"]) for c in channel_list(data_dir)]
    locked = sum(deposit - redeemed for _, deposit, redeemed, status in channels if status == 1)
    spent = before[payer] - chain.balance(payer) - locked
    assert spent == int(summary["paid"]) > 0
    # each edge redeemed on chain what the summary says the payer paid it
    redeemed = {edge: sum(r for to, _, r, _ in channels if to == p) for edge, p in payees.items()}
    assert redeemed == {edge: int(p["paid"]) for edge, p in providers.items()}
    # the edges also paid each other for replicas; together they gained what the payer
    # spent: their balances' rise plus what their own channels still lock in the contract
    gained = sum(chain.balance(p) - before[p] for p in payees.values())
    held = chain.balance(chain.contract)
    assert gained + (held - locked) == spent
    print(
        f"\npayer spent {spent} (fetch paid {summary['paid']}); payees redeemed from it "
        f"{sorted(redeemed.values())}; edges gained {gained}, lock {held - locked} in "
        f"their own channels"
    )
