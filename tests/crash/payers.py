"""Requesters in the test process, paying an edge through the SDK's own classes.

Used where the edge or the ledger is the process killed: each :class:`Payer`
has a ``ChannelManager`` over a ``PayerStore`` on disk and pays with a
``ChunkClient`` (a voucher per chunk, sent ahead once it knows the quote), as
``atlas fetch`` does. It counts what it received, so the test can hold the
edge's durable book against it.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from requester.channel_manager import ChannelManager
from requester.chunk_client import ChunkClient, ChunkUnavailable, ProviderFault
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, ContentVerifier, PayerKey, b64url_decode
from requester.protocol.manifest import SEAL_SIZE
from tests.crash.books import payer_book
from tests.edge.edge_client import fetch, wait_for_seal
from tests.processes import Running

FUNDS = 100 * BTT_LOCAL.one


@dataclass
class Content:
    """Sealed content an edge holds (sealed content survives the edge's restarts)."""

    content_id: str
    verifier: ContentVerifier
    count: int


async def sealed_content(session: aiohttp.ClientSession, edge: str, url: str) -> Content:
    fetched = await fetch(session, edge, url)
    cid = fetched.info["content_id"]
    info = await wait_for_seal(session, edge, cid)
    verifier = ContentVerifier(fetched.head)
    seal = verifier.accept_seal(b64url_decode(info["seal"], SEAL_SIZE, "seal"))
    return Content(cid, verifier, seal.chunk_count)


@dataclass
class Payer:
    key: PayerKey
    state: Path
    manager: ChannelManager
    store: PayerStore
    delivered: dict[str, int] = field(default_factory=dict)
    """Price of every chunk received, by channel id."""
    price: int = 0
    """The highest price paid for one chunk."""

    @classmethod
    async def funded(cls, home: Path, ledger: LedgerClient) -> Payer:
        key = PayerKey.generate()
        await ledger.faucet(key.address, FUNDS)
        store = PayerStore(home / "state.sqlite3")
        return cls(key, home / "state.sqlite3", ChannelManager(key, store, ledger), store)

    def issued(self) -> dict[str, int]:
        return {cid: row.issued for cid, row in payer_book(self.state).items()}

    def close(self) -> None:
        self.store.close()


async def pay_for_chunks(
    edge: Running, content: Content, payers: list[Payer], *, width: int = 2, each: int = 10**6
) -> bool:
    """Each payer gets ``each`` chunks (round and round the content) over ``width``
    concurrent requests, paying per chunk. False if the edge process died first.

    A fresh session and ``ChunkClient`` per call, as a download after a restart would
    have: no pooled connection to a dead edge, and the first request learns the quote
    from a 402.
    """
    down = asyncio.Event()

    async def worker(payer: Payer, client: ChunkClient, indices: Iterator[int], left: list[int]
                     ) -> None:  # fmt: skip
        while left[0] > 0 and not down.is_set():
            left[0] -= 1
            try:
                got = await client.get(edge.url, content.verifier, next(indices))
            except (ChunkUnavailable, ProviderFault) as exc:
                # A refusal is a failure; a dropped connection is the edge dying, or a
                # hiccup of a loaded machine if the edge lives on: then ask again.
                assert isinstance(exc, ChunkUnavailable) or exc.reason.startswith("unreachable"), (
                    exc
                )
                left[0] += 1
                if isinstance(exc, ProviderFault) and await _exited(edge):
                    down.set()
                    return
                await asyncio.sleep(0.05)
                continue
            (channel,) = payer.manager.channels()  # one channel to the one edge
            cid = channel.terms.channel_id.hex()
            payer.delivered[cid] = payer.delivered.get(cid, 0) + got.price
            payer.price = max(payer.price, got.price)

    async with aiohttp.ClientSession() as session, asyncio.TaskGroup() as tasks:
        for payer in payers:
            client = ChunkClient(session, payer.manager)
            indices, left = itertools.cycle(range(content.count)), [each]
            for _ in range(width):
                tasks.create_task(worker(payer, client, indices, left))
    return not down.is_set()


async def _exited(edge: Running, patience: float = 2.0) -> bool:
    """Whether the edge's process has ended (its sockets close a moment before)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + patience
    while edge.proc.poll() is None:
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True
