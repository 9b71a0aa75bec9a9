"""Running the proxy: the relay/API service and mitmproxy in one event loop.

Startup prints one JSON line, ``{"listening": PROXY_URL, "api": API_URL, ...}``,
once both listen; SIGTERM/SIGINT stop both cleanly.
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
from contextlib import AsyncExitStack

import aiohttp
from aiohttp import web
from mitmproxy import options
from mitmproxy.addons import block, core, disable_h2c, errorcheck, next_layer, tlsconfig
from mitmproxy.addons.proxyserver import Proxyserver
from mitmproxy.master import Master

from proxy.backend import create_app
from proxy.config import ProxyConfig
from proxy.dht_edges import join_dht
from proxy.listener_guard import ListenerGuard
from proxy.route_addon import RouteToRelay
from proxy.spending import SpendBook
from proxy.state import ProxyState, load_or_create_token
from proxy.tunnel_addon import TunnelThroughEdges
from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_payer import leave_credit
from requester.guarded_server import GuardedSite
from requester.ledger_api import open_ledger
from requester.payer_store import PayerStore
from requester.stop_orders import StopOrders

KEEPALIVE_TIMEOUT = 75.0
EDGE_SESSION_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)


async def run(config: ProxyConfig) -> None:
    config.home.mkdir(parents=True, exist_ok=True)
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(
            aiohttp.ClientSession(timeout=EDGE_SESSION_TIMEOUT)
        )
        state = _state(config, session, stack)
        if config.bootstrap:
            await join_dht(state, config.bootstrap, session, stack)
        runner = web.AppRunner(create_app(state), keepalive_timeout=KEEPALIVE_TIMEOUT,
                               handle_signals=False, access_log=None)  # fmt: skip
        await runner.setup()
        stack.push_async_callback(runner.cleanup)
        site = GuardedSite(runner, config.host, config.api_port, config.listener,
                           keepalive_timeout=KEEPALIVE_TIMEOUT, access_log=None)  # fmt: skip
        await site.start()
        api_port = runner.addresses[0][1]
        state.api_url = f"http://{config.host}:{api_port}"
        await state.check_edges()
        ready = asyncio.Event()
        master = _mitmproxy(config, state, api_port, ready.set)
        orders = StopOrders()  # SIGTERM/SIGINT, or atlas up's order
        mitm = asyncio.create_task(master.run())
        watcher = asyncio.create_task(state.watch_edges())
        await asyncio.wait([mitm, asyncio.create_task(ready.wait())],
                           return_when=asyncio.FIRST_COMPLETED)  # fmt: skip
        if mitm.done():
            mitm.result()  # raises what stopped mitmproxy (port in use...)
        server = master.addons.get("proxyserver")  # type: ignore[no-untyped-call]
        port = server.listen_addrs()[0][1]
        state.proxy_url = f"http://{config.host}:{port}"
        # Everything loaded so far (mitmproxy, aiohttp, the crypto bindings: most of the heap)
        # lives as long as the process: left out of the collector's full passes, which walked
        # it every few dozen requests (about 7 % of the proxy's CPU under load).
        gc.collect()
        gc.freeze()
        print(json.dumps({
            "listening": state.proxy_url, "api": state.api_url,
            "ca_cert": str(state.ca_cert) if state.ca_cert else None,
            "status": f"{state.api_url}/?token={state.api_token}",
        }), flush=True)  # fmt: skip
        await orders.wait()
        watcher.cancel()
        master.shutdown()  # type: ignore[no-untyped-call]
        await mitm


def _state(
    config: ProxyConfig, session: aiohttp.ClientSession, stack: AsyncExitStack
) -> ProxyState:
    book = SpendBook(config.home / "proxy-spending.sqlite3", config.limits)
    stack.callback(book.close)
    manager = ledger = address = store = None
    wallet = config.home / "wallet.json"
    if config.ledger and wallet.exists():
        passphrase = keystore.stored_passphrase(config.home)
        if passphrase is None:
            raise SystemExit(f"set {keystore.PASSPHRASE_ENV} to unlock {wallet}")
        keys = keystore.load(wallet, passphrase)
        store = PayerStore(config.home / "state.sqlite3")
        stack.callback(store.close)
        ledger = open_ledger(config.ledger, session, key=keys.payer, data_dir=config.home)
        stack.push_async_callback(ledger.close)
        manager = ChannelManager(keys.payer, store, ledger, config.deposit)
        address = keys.payer.address
    else:
        print(f"atlas proxy: no wallet/ledger in {config.home}: free allowance only",
              file=sys.stderr)  # fmt: skip
    confdir = config.home / "mitmproxy"
    state = ProxyState(
        edges=[e.rstrip("/") for e in config.edges], session=session, manager=manager,
        ledger=ledger, address=address, book=book,
        api_token=load_or_create_token(config.home / "api_token"),
        ca_cert=confdir / "mitmproxy-ca-cert.pem" if config.intercept else None,
        intercept=config.intercept, max_active=config.max_transfers, trust=config.trust,
        store=store,
    )  # fmt: skip
    # runs before the store closes: the credit left with edges is the next payer's to spend
    stack.callback(leave_credit, manager, state.accounts.values())
    return state


def _mitmproxy(config: ProxyConfig, state: ProxyState, api_port: int,
               on_running: object) -> Master:  # fmt: skip
    """mitmproxy with only the addons the proxy uses. Every hook event (several per request)
    visits every addon, so mitmdump's ~35 default addons (playback, saving, scripts, map and
    modify rules...) cost about 0.5 ms of CPU per request here (docs/proxy.md)."""
    opts = options.Options(
        listen_host=config.host, listen_port=config.port,
        confdir=str(config.home / "mitmproxy"), mode=[_mode(config, state)],
    )  # fmt: skip
    master = Master(opts)
    master.addons.add(BuiltIns())  # type: ignore[no-untyped-call]
    master.options.update(  # type: ignore[no-untyped-call]
        stream_large_bodies="64k", connection_strategy="lazy", upstream_cert=False,
        ignore_hosts=[] if config.intercept else [".*"],
    )  # fmt: skip
    assert callable(on_running)
    master.addons.add(ListenerGuard(config.listener))  # type: ignore[no-untyped-call]
    route = RouteToRelay(state, api_port, on_running)
    master.addons.add(route)  # type: ignore[no-untyped-call]
    if not config.intercept:
        master.addons.add(TunnelThroughEdges(state))  # type: ignore[no-untyped-call]
    return master


class BuiltIns:
    """The mitmproxy addons the proxy uses, loaded as sub-addons of this one (mitmproxy's
    ``addons`` attribute, as a script's). mitmproxy visits each addon of its chain for every
    hook event, four events per request each followed by an update event, in a guarded
    coroutine of its own: about 3 us per addon and event here. Its sub-addons are visited in
    one such call, so the seven cost about what two did (docs/proxy.md). The proxy's own
    addons stay in the chain, each in its own guarded call: one that raises cannot skip
    another's hook (the route to the relay above all)."""

    def __init__(self) -> None:
        self.addons = [
            core.Core(), block.Block(), disable_h2c.DisableH2C(), Proxyserver(),  # type: ignore[no-untyped-call]
            next_layer.NextLayer(), tlsconfig.TlsConfig(), errorcheck.ErrorCheck(),
        ]  # fmt: skip


def _mode(config: ProxyConfig, state: ProxyState) -> str:
    """``regular`` to open HTTPS here (--intercept); else ``upstream`` so that each CONNECT
    can be sent to an edge's tunnel (the addon picks the edge per flow)."""
    if config.intercept:
        return "regular"
    first = next(iter(state.tunnels.values()), "http://127.0.0.1:9")
    return f"upstream:{first}"
