"""How a benchmark talks to an edge (``/v1/fetch``, ``/v1/content``, chunks, metrics), and the
paid network of the sdk and proxy benchmarks: a ledger, nginx (the origin, and the
reference), a tracker and three (or more) paid edges, a funded wallet with channels open to
them, and downloads from it timed and checked against nginx's files."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from loadtest.harness.blobs import file_sha256, write_blob
from loadtest.harness.children import ATLAS, BenchError, Proc, Processes, Timed, run_timed
from loadtest.harness.nginx import CACHEABLE_LOCATION, start_nginx
from requester import BTT_LOCAL, Budget, ChannelManager, LedgerClient, PayerStore, keystore
from requester.channel_manager import DepositPolicy
from requester.chunk_client import ChunkClient
from requester.protocol import (
    ContentVerifier,
    ManifestHead,
    PayerChannel,
    PayerKey,
    TronAddress,
    b64url_decode,
)
from requester.protocol.manifest import MAX_HEAD_BYTES, SEAL_SIZE
from requester.recorded_calls import view_terms
from requester.settings import write_config

PASSPHRASE = "bench-sdk-passphrase"
WALLET_FUNDS = 1000 * BTT_LOCAL.one  # the faucet's largest grant, once
EDGE_FUNDS = 200 * BTT_LOCAL.one  # per edge: edges pay the origin edge for what they replicate
CHANNEL_DEPOSIT = 150 * BTT_LOCAL.one  # per edge, up to 6 (a full run spends ~2 BTT per edge)
PAYER_DEPOSIT = 900 * BTT_LOCAL.one  # open_payer's (a market winner spends ~4 BTT/s)
EDGES = 3
WARM_WORKERS = 4  # chunk requests in flight while filling an edge's replica (setup)
COUNTERS = {
    "hit": ['atlas_edge_fetches_total{cache="HIT"}'],
    "miss": ['atlas_edge_fetches_total{cache="MISS"}'],
    "served": [f'atlas_edge_chunks_total{{paid_by="{by}"}}' for by in ("voucher", "credit")],
    "accepted": ['atlas_edge_vouchers_total{outcome="accepted"}'],
}
"""What ``Net.counters`` sums: hit and miss at the origin edge, the others at every edge."""
PROXY_ENV_VARS = {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Straight to the edge, whatever proxy the environment names."""


async def edge_fetch(session: aiohttp.ClientSession, edge: str, url: str) -> dict[str, Any]:
    async with session.post(f"{edge}/v1/fetch", json={"url": url}) as response:
        info: dict[str, Any] = await response.json()
        if response.status != 200:
            raise BenchError(f"fetch {url} via {edge}: {response.status} {info}")
    return info


async def wait_sealed(
    session: aiohttp.ClientSession, edge: str, cid: str, limit: float = 120
) -> dict[str, Any]:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        async with session.get(f"{edge}/v1/content/{cid}") as response:
            info: dict[str, Any] = await response.json()
        if info.get("error"):
            raise BenchError(f"content {cid} failed at the edge: {info['error']}")
        if info.get("seal"):
            return info
        await asyncio.sleep(0.05)
    raise BenchError(f"content {cid} was not sealed within {limit} s")


async def get_chunk(
    session: aiohttp.ClientSession,
    edge: str,
    cid: str,
    index: int,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes, Any]:
    async with session.get(
        f"{edge}/v1/chunk/{cid}/{index}", headers=headers or {}, auto_decompress=False
    ) as response:
        return response.status, await response.read(), response.headers


async def edge_payee(session: aiohttp.ClientSession, edge: str) -> TronAddress:
    """The address ``edge`` is paid at (its ``/v1/info``)."""
    async with session.get(f"{edge}/v1/info") as response:
        return TronAddress.parse((await response.json())["payee"])


async def open_payer(ledger: LedgerClient, payee: TronAddress, key: PayerKey | None = None,
                     deposit: int = PAYER_DEPOSIT) -> PayerChannel:  # fmt: skip
    """``key`` (a new one by default) given the faucet's largest grant, with a ``deposit``
    channel open to ``payee`` for three hours: a payer that is not the wallet's."""
    key = key or PayerKey.generate()
    await ledger.faucet(key.address, WALLET_FUNDS)
    expires = int(time.time()) + 3 * 3600
    view = (await ledger.open_channel(key, payee, deposit, expires))["channel"]
    return PayerChannel(
        view_terms(view, await ledger.domain(), bytes.fromhex(view["channel_id"])), key
    )


def edge_counter(edge: str, metric: str) -> float:
    """One sample of the edge's Prometheus text, e.g. ``atlas_edge_vouchers_total{...}``
    (blocking: read between two measurements, never during one)."""
    with DIRECT.open(f"{edge}/metrics", timeout=10) as response:
        text = response.read().decode()
    for line in text.splitlines():
        if line.startswith(metric + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def client_env() -> dict[str, str]:
    """The environment of curl and hey: no proxy settings but the ones given explicitly."""
    return {k: v for k, v in os.environ.items() if k.lower() not in PROXY_ENV_VARS}


@dataclass
class Net:
    workdir: Path
    procs: Processes
    session: aiohttp.ClientSession
    ledger: Proc
    nginx: Proc
    edges: list[Proc]
    home: Path
    files: dict[str, str] = field(default_factory=dict)  # nginx file name -> its SHA-256
    runs: int = 0

    @property
    def env(self) -> dict[str, str]:
        # No spend ceiling: the rss part fetches 1 GiB (about 1.02 BTT at the default price),
        # past atlas fetch's default max_spend of 1 BTT; the wallet holds 1000 BTT.
        return {**os.environ, "ATLAS_HOME": str(self.home), "ATLAS_PASSPHRASE": PASSPHRASE,
                "ATLAS_MAX_SPEND": "none"}  # fmt: skip

    def atlas_fetch(self, url: str, edges: int, expect: str) -> Timed:
        """``atlas fetch URL -o FILE --json`` from the first ``edges`` edges, its peak RSS;
        FILE checked against nginx's ``expect``."""
        argv = [ATLAS, "fetch", url, "--json", *(f"--edge={e.url}" for e in self.edges[:edges])]
        self.runs += 1
        run = timed_download(argv, self.env, self.workdir, f"fetch-{self.runs}",
                             self.files[expect], rss=True)  # fmt: skip
        if run.summary.get("status") != 200 or run.summary.get("dropped"):
            raise BenchError(f"atlas fetch {url}: {run.summary}")
        return run

    def curl(self, name: str, *options: str, query: str = "") -> Timed:
        """``curl -sS --fail OPTIONS -o FILE URL`` of nginx's file ``name``, FILE checked."""
        argv = [shutil.which("curl") or "curl", "-sS", "--fail", *options]
        self.runs += 1
        return timed_download([*argv, f"{self.nginx.url}/{name}{query}"], client_env(),
                              self.workdir, f"curl-{self.runs}", self.files[name])  # fmt: skip

    def counters(self, since: dict[str, float] | None = None) -> dict[str, float]:
        """The COUNTERS now, or their growth ``since`` an earlier reading."""
        out = {}
        for key, metrics in COUNTERS.items():
            edges = self.edges[:1] if key in ("hit", "miss") else self.edges
            out[key] = sum(edge_counter(e.url, m) for m in metrics for e in edges)
        return {k: v - since[k] for k, v in out.items()} if since else out

    async def cache(self, name: str) -> str:
        """nginx's ``name`` fetched with ``atlas fetch`` from the first EDGES edges, so the
        origin edge caches it, then bought whole from each other edge (full replicas): its
        content id."""
        url = f"{self.nginx.url}/{name}"
        warm = await asyncio.to_thread(self.atlas_fetch, url, EDGES, name)
        await fill_replicas(self, self.edges[1:], content_id := str(warm.summary["content_id"]))
        return content_id


def timed_download(argv: Sequence[str], env: dict[str, str], workdir: Path, name: str,
                   sha256: str, *, rss: bool = False, watch: bool = False) -> Timed:  # fmt: skip
    """``argv -o FILE`` timed (:func:`run_timed`; with ``watch``, the first byte of
    ``FILE.part``); BenchError unless FILE's SHA-256 is ``sha256``. FILE and what ``atlas
    fetch`` leaves beside it are removed."""
    output = workdir / f"{name}.bin"
    part = output.with_name(f"{name}.bin.part")
    try:
        run = run_timed([*argv, "-o", str(output)], env, workdir, name, rss=rss,
                        watch=part if watch else None)  # fmt: skip
        got = file_sha256(output)
    finally:
        for path in (output, part, output.with_name(f"{name}.bin.atlas")):
            path.unlink(missing_ok=True)
    if got != sha256:
        raise BenchError(f"{name}: {' '.join(argv[:3])}: the downloaded file differs")
    return run


@contextlib.asynccontextmanager
async def wallet(net: Net) -> AsyncIterator[ChannelManager]:
    """The requester's channel manager, from the same ATLAS_HOME as ``atlas fetch`` (used
    only while no ``atlas fetch`` runs: it reloads the issued amounts from the store)."""
    keys, ledger = keystore.load(net.home / "wallet.json", PASSPHRASE), net.ledger.url
    store = PayerStore(net.home / "state.sqlite3")
    try:
        yield ChannelManager(keys.payer, store, LedgerClient(ledger, net.session), DepositPolicy())
    finally:
        store.close()


async def build_net(
    sizes: dict[str, int], workdir: Path, procs: Processes, session: aiohttp.ClientSession,
    edges: int = EDGES,
) -> Net:  # fmt: skip
    """Ledger, nginx serving files of ``sizes`` (name -> bytes), a tracker, ``edges`` paid
    edges; funds; a wallet whose channels to them are open (as ``atlas channel open``)."""
    ledger = procs.ledger()
    www = workdir / "nginx" / "www"
    www.mkdir(parents=True)
    files = {name: write_blob(www / name, size, salt)
             for salt, (name, size) in enumerate(sizes.items(), 1)}  # fmt: skip
    nginx = start_nginx(procs, workdir / "nginx", location=CACHEABLE_LOCATION)
    # The tracker is an edge of its own that serves nothing, so a client given k edges finds
    # exactly those k as providers (an edge's tracker lists only what was announced to it).
    tracker = procs.edge("tracker", ledger.url, "--free-mib", "0")
    paid = [
        procs.edge(f"edge{i}", ledger.url, "--free-mib", "0", "--tracker", tracker.url)
        for i in range(1, edges + 1)
    ]
    ledger_client = LedgerClient(ledger.url, session)
    payees: list[TronAddress] = []
    for edge in paid:
        payees.append(await edge_payee(session, edge.url))
        await ledger_client.faucet(payees[-1], EDGE_FUNDS)
    home = workdir / "home"
    keys = keystore.create(home / "wallet.json", PASSPHRASE, fast=True)
    write_config(home, [e.url for e in paid], ledger.url)
    await ledger_client.faucet(keys.payer.address, WALLET_FUNDS)
    net = Net(workdir, procs, session, ledger, nginx, paid, home, files)
    async with wallet(net) as manager:
        for payee in payees:
            await manager.open_channel(payee, CHANNEL_DEPOSIT, int(time.time()))
    return net


async def fill_replicas(net: Net, edges: Sequence[Proc], content_id: str) -> None:
    """Buy every chunk of ``content_id`` from each of ``edges`` (with the SDK's ChunkClient),
    so they replicate all of it from the origin edge; checks that they then hold it all."""
    info = await wait_sealed(net.session, net.edges[0].url, content_id)
    verifier = ContentVerifier(
        ManifestHead.decode(b64url_decode(info["head"], MAX_HEAD_BYTES, "head"))
    )
    count = verifier.accept_seal(b64url_decode(info["seal"], SEAL_SIZE, "seal")).chunk_count
    async with wallet(net) as manager:
        client = ChunkClient(net.session, Budget(manager, None))

        async def worker(edge: Proc, indexes: Iterator[int]) -> None:
            for index in indexes:  # shared by the edge's WARM_WORKERS workers
                await client.get(edge.url, verifier, index)

        queues = [(edge, iter(range(count))) for edge in edges]
        await asyncio.gather(*(worker(e, q) for e, q in queues for _ in range(WARM_WORKERS)))
    for edge in edges:
        async with net.session.get(f"{edge.url}/v1/content/{content_id}") as response:
            held = (await response.json())["chunks_available"]
        if held != count:
            raise BenchError(f"{edge.name} holds {held} of {count} chunks after the warm-up")
