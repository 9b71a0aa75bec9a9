"""Driving a running ``atlas ledger tron-node`` from tests: keys, its faucet, a probe contract.

Everything goes through unmodified tronpy (``Tron``/``AsyncTron`` over HTTP) or the node's
own ``/atlas/`` controls, as a client of a real TRON node would.
"""

from __future__ import annotations

import hashlib
from typing import Any

import requests
from tronpy import Tron
from tronpy.contract import Contract
from tronpy.keys import PrivateKey

from tests.processes import Running

SUN = 10**6
BTT = 10**18
FEE_LIMIT = 100 * SUN
PROBE_RUNTIME = bytes.fromhex("42600052466020524360405260606000f3")
"""TIMESTAMP, CHAINID and NUMBER, returned as three words."""
PROBE_INIT = bytes.fromhex("601180600b6000396000f3") + PROBE_RUNTIME
PROBE_OUTPUTS = [{"name": n, "type": "uint256"} for n in ("timestamp", "chainid", "number")]
PROBE_ABI = [{"type": "function", "name": "probe", "stateMutability": "view", "inputs": [],
              "outputs": PROBE_OUTPUTS}]  # fmt: skip


def key(name: str) -> PrivateKey:
    """A fixed test key, by name."""
    return PrivateKey(hashlib.sha256(f"atlas.test.tron-node.{name}".encode()).digest())


def address(who: PrivateKey) -> str:
    return str(who.public_key.to_base58check_address())


def control(node: Running, path: str, body: dict[str, Any] | None = None) -> requests.Response:
    """GET (no body) or POST one of the node's ``/atlas/`` controls."""
    url = f"{node.url}/atlas/{path}"
    if body is None:
        return requests.get(url, timeout=10)
    return requests.post(url, json=body, timeout=10)


def funded(node: Running, name: str, trx: int = 100, btt: int = 0) -> PrivateKey:
    """A key the node's faucet gave ``trx`` TRX and ``btt`` test BTT."""
    who = key(name)
    answer = control(node, "fund", {"address": address(who), "trx": trx, "btt": btt})
    assert answer.status_code == 200, answer.text
    return who


def deploy(
    tron: Tron, owner: PrivateKey, contract: Contract, fee_limit: int = 1000 * SUN
) -> dict[str, Any]:
    """Deploy ``contract`` with tronpy's ``deploy_contract``; its receipt."""
    built = tron.trx.deploy_contract(address(owner), contract).fee_limit(fee_limit).build()
    receipt: dict[str, Any] = built.sign(owner).broadcast().wait()
    return receipt


def token_balance(token: Contract, who: str) -> int:
    return int(token.functions.balanceOf(who))
