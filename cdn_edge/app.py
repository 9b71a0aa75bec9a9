"""The edge node's aiohttp application, built by :func:`create_app`.

Shared state hangs on typed app keys; everything that must be opened and
closed (databases, the origin client, the ledger client, background tasks)
is opened and closed in one cleanup context, in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import AsyncExitStack, closing

import aiohttp
from aiohttp import web

from cdn_edge import dashboard, routes_chunks, routes_content, routes_runs, routes_tracker
from cdn_edge.announcer import Announcer
from cdn_edge.config import EdgeConfig
from cdn_edge.content.chunk_store import ChunkStore
from cdn_edge.content.index import ContentIndex
from cdn_edge.content.origin_fetch import OriginFetcher
from cdn_edge.content.replica_trust import ReplicaTrust
from cdn_edge.content.replication import Replicator
from cdn_edge.content.service import ContentService
from cdn_edge.dht import dht_jobs, dht_settings, dht_state_opener
from cdn_edge.dht.terms import market_terms
from cdn_edge.edge_identity import load_or_create
from cdn_edge.edge_state import CONFIG, EDGE, Edge
from cdn_edge.free_allowance import FreeAllowance
from cdn_edge.kept_vouchers import kept_vouchers
from cdn_edge.market import Market
from cdn_edge.metrics import EdgeMetrics
from cdn_edge.payments import PaymentBook
from cdn_edge.problems import problem_middleware
from cdn_edge.settlement import settle_forever, settle_once
from cdn_edge.torrent import TorrentSession
from cdn_edge.torrent.content import TorrentContent
from cdn_edge.tracker import Tracker
from cdn_edge.tunnel import routes as routes_tunnel
from cdn_edge.tunnel.book import TUNNELS, TunnelBook
from cdn_edge.tunnel.server import TunnelServer
from requester.channel_manager import ChannelManager
from requester.chunk_client import ChunkClient
from requester.ledger_api import Ledger, open_ledger
from requester.payer_store import PayerStore
from requester.protocol import PaymentDomain


def create_app(config: EdgeConfig) -> web.Application:
    app = web.Application(
        middlewares=[kept_vouchers, problem_middleware], client_max_size=64 * 1024
    )
    app[CONFIG] = config
    app.cleanup_ctx.append(_edge_ctx)
    routes_content.add_routes(app)
    routes_chunks.add_routes(app)
    routes_runs.add_routes(app)
    routes_tracker.add_routes(app)
    routes_tunnel.add_routes(app)
    dashboard.add_routes(app)
    return app


async def _edge_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    identity = load_or_create(config.data_dir)
    db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="content-db")
    loop = asyncio.get_running_loop()
    index = await loop.run_in_executor(
        db,
        lambda: ContentIndex(
            config.data_dir / "content.sqlite3", ChunkStore(config.data_dir), config.store_cap_gib
        ),
    )
    timeout = aiohttp.ClientTimeout(total=30, connect=5)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        OriginFetcher(
            allow_private=config.allow_private_origins,
            max_body=config.max_response_bytes,
            total_timeout=config.origin_timeout,
        ) as origin,
        asyncio.TaskGroup() as tasks,
        AsyncExitStack() as stack,
    ):
        ledger = open_ledger(config.ledger, session, key=identity.payee, data_dir=config.data_dir)
        stack.push_async_callback(ledger.close)
        domain = await _ledger_domain(ledger)
        payments = PaymentBook(
            config.data_dir / "payments.sqlite3", identity.payee.address, domain, ledger
        )
        await payments.open()
        tracker = Tracker()
        payer_store = stack.enter_context(closing(PayerStore(config.data_dir / "payer.sqlite3")))
        spending = ChannelManager(identity.payee, payer_store, ledger)
        trust = ReplicaTrust.for_edge(config)
        replicator = Replicator(
            identity.node.node_id, config.trackers, tracker, session,
            ChunkClient(session, trust.payer(spending), max_price_per_mib=config.price,
                        max_price_per_chunk=config.price_per_chunk), trust,
        )  # fmt: skip
        content = ContentService(
            identity.node,
            index,
            origin,
            db,
            tasks,
            chunk_size=config.chunk_size,
            large_chunks=not config.upload_capacity,  # a market paces its lanes chunk by chunk
            on_new_content=lambda cid: announcer.provide(cid),  # noqa: PLW0108 (made below)
            replicator=replicator,
        )
        announcer = Announcer(identity.node, config.trackers, tracker, session, content.held_ids,
                              terms=lambda: market_terms(edge))  # fmt: skip
        announcer.public_url = config.public_url
        market = Market(config, metrics := EdgeMetrics())
        edge = Edge(
            config, identity, domain, content, payments, ledger,
            FreeAllowance(config.free_mib, config.free_window), metrics, tracker,
            announcer, asset=await ledger.asset(), market=market,
        )  # fmt: skip
        if config.torrent_interfaces is not None or config.dht:  # the DHT is libtorrent's
            torrents = await stack.enter_async_context(_torrent_session(config))
            edge.torrents = None if config.no_torrents else TorrentContent(
                torrents, content, max_size=config.torrent_cap_gib,
                metadata_timeout=config.torrent_metadata_timeout,
            )  # fmt: skip
        app[EDGE] = edge
        app[TUNNELS] = tunnels = TunnelBook(edge)
        tunneling: asyncio.Task[None] | None = None
        if not config.no_tunnel:
            tunnel_server = TunnelServer(tunnels, config, edge.metrics)
            tunnels.url = await tunnel_server.bind()
            tunneling = tasks.create_task(tunnel_server.run())
            await tunnel_server.serving.wait()  # listening before the edge says it is ready
        jobs = (
            *await dashboard.start(app, edge, stack),  # before settling: it holds the clock
            settle_forever(edge.payments, ledger, config, app[dashboard.DASHBOARD].settling),
            announcer.run(),
            market.run(edge.torrents),
            *await dht_jobs(edge, torrents if config.dht else None, lambda: tunnels.url),
        )
        background = [tasks.create_task(job) for job in jobs]
        try:
            yield
        finally:
            if tunneling is not None:  # tunnels close before the books do
                tunneling.cancel()
                await asyncio.wait({tunneling})
            for task in background:
                task.cancel()
            content.cancel_fetches()
            await settle_once(payments, ledger, time.time(), config, everything=True)
            await payments.close()
            replicator.leave_credit()  # what siblings hold paid ahead: spent after a restart
    await loop.run_in_executor(db, index.close)
    db.shutdown()


def _torrent_session(config: EdgeConfig) -> TorrentSession:
    discover = config.torrent_discovery
    # Seeding is free traffic: with a market, it may take the free slots' share at most.
    limit = config.upload_capacity * config.free_slots // config.slots
    return TorrentSession(
        config.data_dir / "torrents", listen_interfaces=config.torrent_listen or f"{config.host}:0",
        enable_dht=discover, enable_lsd=discover, enable_upnp=discover, enable_natpmp=discover,
        seed=config.torrent_seed, allow_private_peers=config.allow_private_origins,
        settings=dht_settings(config, {"upload_rate_limit": limit} if limit else {}),
        open_session=dht_state_opener(config),
    )  # fmt: skip


async def _ledger_domain(ledger: Ledger, attempts: int = 30) -> PaymentDomain:
    """The ledger's payment domain; the edge cannot quote prices without it."""
    for attempt in range(attempts):
        try:
            return await ledger.domain()
        except Exception:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(1)
    raise AssertionError("unreachable")
