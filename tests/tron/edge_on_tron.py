"""An edge paid on the offline TRON node, for the settlement tests: a funded payer with a
channel to the edge's payee, vouchers riding on chunk requests, and what the chain and the
edge's books say afterwards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aiohttp

from requester.ledger_api import open_ledger
from requester.protocol import BTT, ChannelTerms, PayerKey, TronAddress, Voucher
from requester.tron.ledger import TronLedger
from tests.edge.edge_client import Answer, fetch, get_chunk
from tests.edge.paying import channel_earnings, earnings, edge_info
from tests.processes import Running, start_edge_env

ONE = BTT.one
CHUNK = 256 * 1024
EDGE_TRX = "200"
"""TRX the edge's payee account gets for its redeems' energy (about 6 TRX each)."""


def tron_url(node: Running) -> str:
    return "tron+" + node.url


def start_tron_edge(node: Running, data_dir: Path, *extra: str,
                    env: dict[str, str] | None = None) -> Running:  # fmt: skip
    """An edge on the node's contract charging from the first byte, without torrents or
    tunnels (settlement is all these tests look at)."""
    args = ["--free-mib", "0", "--no-torrents", "--no-tunnel", *extra]
    return start_edge_env(data_dir, tron_url(node), env or {}, *args)


@dataclass
class PaidEdge:
    """A payer's channel to an edge on TRON, and the content it pays for chunks of."""

    edge: str
    payee: TronAddress
    content_id: str
    terms: ChannelTerms
    key: PayerKey

    def voucher(self, total: int) -> dict[str, str]:
        """The ``Atlas-Voucher`` header of a voucher for ``total`` (cumulative)."""
        voucher = Voucher.create(self.key, domain=self.terms.domain,
                                 channel_id=self.terms.channel_id, payee=self.payee,
                                 asset=self.terms.asset, amount=total)  # fmt: skip
        return {"Atlas-Voucher": voucher.to_header()}

    async def chunk(self, session: aiohttp.ClientSession, total: int) -> Answer:
        """The first chunk, paid with a voucher for ``total``."""
        return await get_chunk(session, self.edge, self.content_id, 0, self.voucher(total))

    async def pay(self, session: aiohttp.ClientSession, total: int) -> None:
        status, body, _ = await self.chunk(session, total)
        assert status == 200, body[:300]


async def fund(session: aiohttp.ClientSession, node: Running, who: TronAddress, trx: str,
               btt: str = "0") -> None:  # fmt: skip
    body = {"address": who.base58(), "trx": trx, "btt": btt}
    async with session.post(f"{node.url}/atlas/fund", json=body) as resp:
        assert resp.status == 200, await resp.text()


async def node_time(node: Running, ledger: TronLedger) -> int:
    return int((await ledger.info())["time"])


async def paid_edge(session: aiohttp.ClientSession, node: Running, edge: Running,
                    origin: Running, key: PayerKey, deposit: int) -> PaidEdge:  # fmt: skip
    """``key`` funded, a channel of ``deposit`` for an hour to ``edge``'s payee (itself given
    TRX for its redeems), and one chunk of content on the edge to pay for."""
    payee = TronAddress.parse((await edge_info(session, edge.url))["payee"])
    await fund(session, node, key.address, "200", "100")
    await fund(session, node, payee, EDGE_TRX)
    payer = reader(node, session, key)
    try:
        now = await node_time(node, payer)
        view = (await payer.open_channel(key, payee, deposit, now + 3600))["channel"]
        terms = ChannelTerms(await payer.domain(), bytes.fromhex(view["channel_id"]),
                             key.address, payee, BTT, deposit, now + 3600)  # fmt: skip
    finally:
        await payer.close()
    fetched = await fetch(session, edge.url, f"{origin.url}/bytes/{CHUNK}?for={key.address}")
    return PaidEdge(edge.url, payee, fetched.info["content_id"], terms, key)


def reader(node: Running, session: aiohttp.ClientSession, key: PayerKey | None = None,
           data_dir: Path | None = None) -> TronLedger:  # fmt: skip
    ledger = open_ledger(tron_url(node), session, key=key, data_dir=data_dir)
    assert isinstance(ledger, TronLedger)
    return ledger


async def books(data_dir: Path, channel_id: bytes) -> dict[str, str]:
    """The edge's own record of a channel (``atlas edge earnings``, in the TRON asset)."""
    summary = await earnings(data_dir)
    assert summary["asset"] == BTT.uri
    row = channel_earnings(summary, channel_id)
    assert row is not None
    return row
