"""The ledger of ``atlas up``: the embedded ledger with its faucet, or the offline TRON node.

Either way the launcher gets one URL to hand the edges, the proxy and ``config.json``
(``--ledger``): the embedded ledger's ``http://HOST:PORT``, or
``tron+http://HOST:PORT?contract=T...`` for the ``AtlasChannels`` contract the node
deployed at start (``requester/ledger_api.py``), so every program settles on the same
contract. The wallet and the edges' payee accounts are funded from the ledger's faucet
when they hold no BTT: on TRON, test BTT and the TRX that pays for energy (opens and
top-ups by the wallet, redeems by the edges). The node ``--ledger tron`` starts keeps its
chain in memory: each start is a new chain, funded anew, and a node that dies is not
restarted (a new one would be another chain). ``--ledger tron+http://HOST:PORT`` runs the
network on an offline node started apart, whose chain outlives the network.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from launcher.local_network import HOST
from launcher.supervisor import ChildSpec, Supervisor, say
from requester.ledger_api import open_ledger, parse_ledger_url
from requester.ledger_client import LedgerError
from requester.protocol import BTT_LOCAL, TronAddress

ATLAS = [sys.executable, "-m", "requester.cli"]
WALLET_FUNDS = 1000 * BTT_LOCAL.one
EDGE_FUNDS = 100 * BTT_LOCAL.one
WALLET_TRX = 10_000
"""TRX for the wallet's energy: an approve and an open cost about 15 TRX at 100 sun."""
EDGE_TRX = 1_000
"""TRX for an edge's energy: a redeem costs about 6 TRX."""
LEDGER_STAGE = 0
NODE_GONE = ("the offline TRON node keeps its chain in memory: a new node would be a new "
             "chain; stop atlas up and start it again")  # fmt: skip


@dataclass(frozen=True)
class UpLedger:
    """The running ledger: ``url`` is what the other programs are given, ``node`` where
    it answers ``/healthz`` (and, on TRON, ``/atlas/fund``), ``facts`` go into ``atlas
    up``'s ready line."""

    kind: str
    node: str
    url: str
    facts: dict[str, object] = field(default_factory=dict)
    edge_env: dict[str, str] = field(default_factory=dict)
    """Set for each edge: on the offline node TRX is free test money, so the edges count
    redeem fees as free (``ATLAS_BTT_PER_TRX=0``): they redeem on schedule and on stop."""


async def start_ledger(supervisor: Supervisor, kind: str, data_dir: Path, port: int) -> UpLedger:
    """Start the ledger of ``kind`` on ``port``: ``embedded``, ``tron``, or a running offline
    TRON node's ``tron+http://HOST:PORT`` (nothing to start: its chain outlives the network)."""
    if kind == "tron":
        child = await supervisor.start(ChildSpec(
            "ledger", [*ATLAS, "ledger", "tron-node", "--host", HOST, "--port", str(port)],
            LEDGER_STAGE, (port,), stops_last=True, no_restart=NODE_GONE,
        ))  # fmt: skip
        return _on_tron(child.url, child.ready)
    if kind.startswith("tron+"):
        node = parse_ledger_url(kind).endpoint
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            try:
                async with session.get(f"{node}/atlas/info") as resp:
                    info = await resp.json(content_type=None) if resp.status == 200 else None
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                raise LedgerError(503, "ledger_unreachable", f"{node}: {exc}") from None
        if not isinstance(info, dict) or "contract" not in info:
            why = f"{node} is not an offline TRON node (atlas ledger tron-node): no /atlas/info"
            raise LedgerError(400, "no_faucet", why)
        return _on_tron(node, {**info, "contract": parse_ledger_url(kind).contract
                               or info["contract"]})  # fmt: skip
    child = await supervisor.start(ChildSpec(
        "ledger", [*ATLAS, "ledger", "serve", "--host", HOST, "--port", str(port),
                   "--data-dir", str(data_dir / "ledger"), "--faucet"],
        LEDGER_STAGE, (port,), stops_last=True,
    ))  # fmt: skip
    return UpLedger(kind, child.url, child.url, {"ledger_backend": "embedded"})


def _on_tron(node: str, ready: dict[str, object]) -> UpLedger:
    contract, token = str(ready["contract"]), str(ready["token"])
    say(f"ledger: the offline TRON node at {node}, channel contract {contract}, "
        f"test BTT {token}")  # fmt: skip
    facts = {"ledger_backend": "tron", "contract": contract, "token": token,
             "chain_id": ready.get("chain_id")}  # fmt: skip
    return UpLedger("tron", node, f"tron+{node}?contract={contract}", facts,
                    {"ATLAS_BTT_PER_TRX": "0"})  # fmt: skip


async def fund(ledger: UpLedger, session: aiohttp.ClientSession, wallet: TronAddress,
               payees: list[TronAddress]) -> None:  # fmt: skip
    """Give the wallet and each payee what they need to pay and to settle, once (an
    account that holds BTT already is left as it is)."""
    grants = [(wallet, WALLET_FUNDS, WALLET_TRX), *[(p, EDGE_FUNDS, EDGE_TRX) for p in payees]]
    reader = open_ledger(ledger.url, session)
    try:
        for address, btt, trx in grants:
            if await reader.balance(address) != 0:
                continue
            if ledger.kind == "embedded":
                await reader.faucet(address, btt)
                continue
            body = {"address": address.base58(), "trx": str(trx),
                    "btt": str(btt // BTT_LOCAL.one)}  # fmt: skip
            async with session.post(f"{ledger.node}/atlas/fund", json=body) as resp:
                if resp.status != 200:
                    why = (await resp.text())[:200]
                    raise LedgerError(resp.status, "faucet_refused", f"funding {address}: {why}")
    finally:
        await reader.close()
