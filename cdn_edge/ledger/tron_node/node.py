"""One running node: its chain, what it deployed at start, its faucet and its counters."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter

from cdn_edge.ledger.tron_node.chain import Chain
from cdn_edge.ledger.tron_node.genesis import TEST_BTT, deploy_all
from cdn_edge.ledger.tron_node.protobuf import Msg
from cdn_edge.ledger.tron_node.settings import BTT_UNITS, SUN_PER_TRX, Funding
from requester.protocol import TronAddress

MAX_GRANT_TRX = 1_000_000_000
"""The most TRX one faucet grant gives (the deployer holds 100 billion)."""
MAX_GRANT_BTT = 10**15


class Node:
    def __init__(self, chain_id: int, close_grace: int, funding: tuple[Funding, ...] = ()) -> None:
        self.chain = Chain(chain_id)
        self.close_grace = close_grace
        self.deployer, self.deployment = deploy_all(self.chain, close_grace)
        self.registry = CollectorRegistry()
        self.broadcasts = Counter(
            "atlas_tron_node_broadcasts", "Broadcast transactions by answer code", ["code"],
            registry=self.registry,
        )  # fmt: skip
        for grant in funding:
            self.fund(grant.address.raw, grant.sun, grant.btt)

    def count(self, code: str) -> None:
        self.broadcasts.labels(code).inc()

    def tokens(self) -> dict[str, bytes]:
        return {TEST_BTT: self.deployment.token, **self.deployment.variants}

    def fund(self, address: bytes, sun: int, btt: int, token: str = TEST_BTT) -> None:
        """Give ``address`` TRX (sun) and ``btt`` base units of a test token, as the deployer.

        ValueError if the grant is too large or the token unknown."""
        if sun > MAX_GRANT_TRX * SUN_PER_TRX or btt > MAX_GRANT_BTT * BTT_UNITS:
            raise ValueError(f"a grant is at most {MAX_GRANT_TRX} TRX and {MAX_GRANT_BTT} BTT")
        if token not in self.tokens():
            raise ValueError(f"no test token {token[:40]!r} (one of {', '.join(self.tokens())})")
        self.deployer.fund(address, sun, btt, self.tokens()[token])

    def ready(self, url: str) -> Msg:
        """The ready line: where the node listens and what it deployed (base58 addresses)."""
        done = self.deployment
        return {
            "listening": url,
            "contract": str(TronAddress(done.contract)),
            "token": str(TronAddress(done.token)),
            "chain_id": f"{self.chain.chain_id:#x}",
            "close_grace": self.close_grace,
            "deployer": str(TronAddress(self.deployer.address)),
            "deployer_key": self.deployer.key.secret.hex(),
            "variants": {k: str(TronAddress(v)) for k, v in done.variants.items()},
            "channels_for": {k: str(TronAddress(v)) for k, v in done.channels_for.items()},
        }

    def time(self) -> Msg:
        head = self.chain.blocks.catch_up()
        return {"now": self.chain.clock.now(), "offset": self.chain.clock.offset,
                "head_block": {"number": head.number, "timestamp": head.timestamp}}  # fmt: skip
