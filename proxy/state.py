"""Everything the proxy's request handlers share: the wallet's channels, the spending
book, the edges and their health, and the secrets that guard the API."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from proxy.fresh_heads import FreshHeads
from proxy.spending import RequestPayer, SpendBook
from requester.channel_manager import ChannelManager
from requester.chunk_client import Account
from requester.client import AtlasClient, Download
from requester.dht_bootstrap import Finder
from requester.errors import SdkError
from requester.ledger_api import Ledger
from requester.payer_store import PayerStore
from requester.protocol import TronAddress
from requester.provider_trust import TrustPolicy
from requester.secret_file import write_secret

HANDOFF_SECONDS = 30.0
HEALTH_INTERVAL = 10.0
HEALTH_TIMEOUT = aiohttp.ClientTimeout(total=3)


@dataclass
class EdgeHealth:
    ok: bool = False
    checked_at: float = 0.0
    detail: str = "not checked yet"


@dataclass
class Handoff:
    """A download the proxy port's addon opened and counted as active, for the relay."""

    client: AtlasClient
    download: Download
    site: str
    timer: asyncio.TimerHandle | None = None


@dataclass
class ProxyState:
    edges: list[str]
    session: aiohttp.ClientSession
    manager: ChannelManager | None
    ledger: Ledger | None
    address: TronAddress | None
    book: SpendBook
    api_token: str
    ca_cert: Path | None
    intercept: bool
    api_url: str = ""
    proxy_url: str = ""
    relay_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    health: dict[str, EdgeHealth] = field(default_factory=dict)
    requests: int = 0
    active: int = 0
    max_active: int = 64
    """Transfers served at once; more get 503 with Retry-After instead of a growing queue."""
    tunnels_opened: int = 0
    tunnels_paying: int = 0
    """Tunnels whose pay-ahead task runs now (each ends with its browser connection)."""
    window: int = 16
    """Chunks a download may hold ahead of the browser, in 256 KiB chunks' worth of bytes
    (4 MiB: 4 of the 1 MiB chunks a body of 64 MiB or more is cut in). The SDK's runs reach
    32 MiB whatever the window (requester.download_window.REACH_BYTES). At 8, 20 providers
    on probation filled the window and stalled a download (docs/proxy.md)."""
    accounts: dict[str, Account] = field(default_factory=dict)
    """What each provider quoted and holds as credit, shared so requests pay ahead."""
    tunnels: dict[str, str] = field(default_factory=dict)
    """Each edge's tunnel listener (from its ``/v1/info``), for HTTPS CONNECTs."""
    trust: TrustPolicy = field(default_factory=TrustPolicy)
    store: PayerStore | None = None
    """The wallet's payer store: every channel of the wallet and its spending by hour."""
    finder: Finder | None = None
    """More providers of each download's content (the DHT's, with ``--bootstrap``)."""
    find_edges: Callable[[], Coroutine[Any, Any, list[str]]] | None = None
    """The edges the DHT lists now (``--bootstrap``): proxy/dht_edges.py."""
    fresh: FreshHeads = field(default_factory=FreshHeads)
    """Verified heads of small objects reused without a /v1/fetch while fresh."""
    handoffs: dict[str, Handoff] = field(default_factory=dict)
    """Downloads opened on the proxy port, by token, until the relay streams them."""
    recent: deque[tuple[str, dict[str, dict[str, Any]]]] = field(
        default_factory=lambda: deque(maxlen=20)
    )
    """The latest downloads' sites and providers (lane, bytes, price per MiB, rate)."""
    """Limits on providers found through trackers, per request (``unknown_channels``,
    ``unknown_deposit`` in config.json or ``ATLAS_UNKNOWN_*``; docs/requester.md)."""

    def is_healthy(self, edge: str) -> bool:
        return self.health.get(edge, EdgeHealth(ok=True)).ok

    @asynccontextmanager
    async def client_for(self, site: str) -> AsyncIterator[AtlasClient]:
        """An SDK client for one request, paying through that request's limits."""
        client = self.new_client(site)
        try:
            yield client
        finally:
            self.client_done(site, client)

    def new_client(self, site: str) -> AtlasClient:
        """An SDK client for one request (:meth:`client_done` when the request ends)."""
        payer = None if self.manager is None else RequestPayer(self.manager, self.book, site)
        healthy = [e for e in self.edges if self.is_healthy(e)]
        return AtlasClient(healthy or self.edges, self.session, payer, window=self.window,
                           accounts=self.accounts, trust=self.trust,
                           finder=self.finder)  # fmt: skip

    def client_done(self, site: str, client: AtlasClient) -> None:
        for download in client.downloads:
            self.recent.append((site, download.provider_summary()))

    def hand_over(self, handoff: Handoff) -> str:
        """Keep a download the proxy port opened for the relay to stream; its token. One the
        relay never takes ends after HANDOFF_SECONDS (nothing of it was fetched or paid)."""
        token = secrets.token_urlsafe(16)
        handoff.timer = asyncio.get_running_loop().call_later(
            HANDOFF_SECONDS, self._drop_handoff, token
        )
        self.handoffs[token] = handoff
        return token

    def take_handoff(self, token: str) -> Handoff | None:
        handoff = self.handoffs.pop(token, None)
        if handoff is not None and handoff.timer is not None:
            handoff.timer.cancel()
        return handoff

    def _drop_handoff(self, token: str) -> None:
        handoff = self.handoffs.pop(token, None)
        if handoff is not None:
            self.active -= 1
            self.client_done(handoff.site, handoff.client)

    async def watch_edges(self) -> None:
        """Forever: check each edge, so requests go to edges that answer."""
        while True:
            if self.find_edges is not None:
                await add_found_edges(self)
            await self.check_edges()
            await asyncio.sleep(HEALTH_INTERVAL)

    async def check_edges(self) -> None:
        await asyncio.gather(*(self._check(edge) for edge in self.edges))

    async def _check(self, edge: str) -> None:
        """``/v1/info`` answers both questions: is it up, and where is its tunnel."""
        health = self.health.setdefault(edge, EdgeHealth())
        try:
            async with self.session.get(f"{edge}/v1/info", timeout=HEALTH_TIMEOUT) as resp:
                health.ok, health.detail = resp.status == 200, f"HTTP {resp.status}"
                info = await resp.json() if resp.status == 200 else {}
            tunnel = info.get("tunnel") if isinstance(info, dict) else None
            if isinstance(tunnel, str) and tunnel.startswith("http://"):
                self.tunnels[edge] = tunnel
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            health.ok, health.detail = False, f"{type(exc).__name__}: {exc}"
        health.checked_at = time.time()


async def add_found_edges(state: ProxyState) -> int:
    """Add the edges the DHT lists now after those known; how many are known then."""
    if state.find_edges is not None:
        try:
            found = await state.find_edges()
        except (SdkError, RuntimeError):  # none listed yet (NoEdgeFound), a libtorrent
            found = []  # error: the next look may find some
        state.edges += [edge for edge in found if edge not in state.edges]
    return len(state.edges)


STATE: web.AppKey[ProxyState] = web.AppKey("state", ProxyState)
"""The proxy's state on its HTTP service, for the relay routes and the pages alike."""


def load_or_create_token(path: Path) -> str:
    """The mobile API's bearer token: made at first start, kept (0600) in the data dir."""
    if path.exists():
        token = path.read_text().strip()
        if token:
            return token
    token = secrets.token_urlsafe(32)
    write_secret(path, (token + "\n").encode())  # 0600 from its creation, not after a chmod
    return token
