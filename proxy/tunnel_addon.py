"""mitmproxy addon: carry each browser CONNECT through an edge's metered tunnel.

mitmproxy runs in ``upstream:`` mode, where it answers ``200`` to the browser
before it has even dialled the upstream, so the edge's verdict must come
first: for every CONNECT this addon picks a healthy edge and opens the tunnel
there over HTTP (``POST /v1/tunnels/{id}/open``, paying the first unit with a
voucher on the wallet's channel to that edge). The edge connects to the target
and charges, or says why not, and a refusal reaches the browser as ``502``
with the edge's problem. Then the flow is pointed at the edge's tunnel
listener and the CONNECT mitmproxy sends there names the tunnel id, which
attaches to the connected target. TLS is never opened (``ignore_hosts`` is
``.*``): the page stays end to end.

A task per tunnel pays ahead once bytes move, by watching the edge's byte
counter. It belongs to the browser's connection: it ends when the edge
reports the tunnel closed or gone, and is cancelled when that connection
ends (``client_disconnected``) or the proxy stops (``done``). The calls to the
edge are in :mod:`proxy.tunnel_calls`; see "Tunnels" in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import aiohttp
from mitmproxy import connection, http

from proxy.failures import Failure, classify
from proxy.own_listeners import listener_ports, loop_failure
from proxy.spending import RequestPayer
from proxy.state import ProxyState
from proxy.tunnel_calls import TunnelPrice, open_tunnel, pay_ahead, tunnel_price
from requester.errors import PROBLEM_JSON, Problem

log = logging.getLogger(__name__)
REOPEN_AFTER = 5.0
"""An edge closes an opened tunnel no CONNECT attached to within 10 s; a browser that
first speaks on a preconnected socket later than this gets a freshly opened one."""


@dataclass
class Opened:
    """A tunnel opened at an edge for a browser's CONNECT, until mitmproxy attaches to it."""

    edge: str
    target: str
    price: TunnelPrice
    payer: RequestPayer | None
    tunnel_id: str
    at: float
    """When it was opened (monotonic seconds)."""


class TunnelThroughEdges:
    def __init__(self, state: ProxyState) -> None:
        self._state = state
        self._turn = itertools.count()
        self._prices: dict[str, TunnelPrice] = {}
        self._payers: dict[str, asyncio.Task[None]] = {}
        """The pay-ahead task of each browser connection's tunnel, by client connection id."""
        self._pending: dict[str, Opened] = {}
        """Tunnels opened for a CONNECT whose upstream CONNECT is not sent yet."""

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        state = self._state
        host, port = flow.request.host, flow.request.port
        own = listener_ports(state.proxy_url, state.api_url)
        looped = await loop_failure(host, port, own, _authority(host, port))
        if looped is not None:
            flow.response = refusal(looped)
            return
        tunnels = [e for e in state.edges if state.tunnels.get(e) and state.is_healthy(e)]
        if not tunnels:
            why = "no Atlas edge offers a tunnel right now"
            flow.response = refusal(Failure(502, "no_tunnel_edge", "No tunnel", why))
            return
        edge = tunnels[next(self._turn) % len(tunnels)]
        tunnel_id = secrets.token_hex(16)
        payer = None if state.manager is None else RequestPayer(
            state.manager, state.book, flow.request.host
        )  # fmt: skip
        target = _authority(flow.request.host, flow.request.port)
        try:
            price = await self._price(edge)
            answer = await open_tunnel(state.session, edge, tunnel_id, target, price, payer)
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            log.info("edge %s did not answer for a tunnel: %r", edge, exc)
            why = f"{edge} did not answer ({type(exc).__name__})"
            flow.response = refusal(Failure(502, "edge_unreachable", "No edge answered", why))
            return
        except Exception as exc:  # payment refused, limit reached: the CONNECT fails with why
            log.info("cannot open a tunnel to %s through %s: %s", target, edge, exc)
            failure = classify(exc)
            flow.response = refusal(Failure(502, failure.code, failure.title, failure.detail))
            return
        if answer is not None:
            flow.response = refusal(answer)
            return
        if not flow.client_conn.connected:
            return  # gone while the edge opened it: the edge closes it unattached in 10 s
        listener = urlsplit(state.tunnels[edge])
        flow.server_conn.via = ("http", (listener.hostname or "127.0.0.1", listener.port or 80))
        opened = Opened(edge, target, price, payer, tunnel_id, time.monotonic())
        self._pending[flow.client_conn.id] = opened
        self._pay_for(flow.client_conn.id, opened)
        state.tunnels_opened += 1

    async def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        """Name the opened tunnel in the CONNECT mitmproxy sends the edge (when the browser
        first speaks); open a fresh one if the edge may have closed it unattached."""
        # mitmproxy makes a new flow for the CONNECT it sends upstream; the client
        # connection (one CONNECT each) ties it to the browser's.
        opened = self._pending.pop(flow.client_conn.id, None)
        if opened is None:
            return
        if time.monotonic() - opened.at > REOPEN_AFTER:
            fresh = secrets.token_hex(16)
            try:
                failure = await open_tunnel(self._state.session, opened.edge, fresh,
                                            opened.target, opened.price, opened.payer)  # fmt: skip
            except Exception as exc:  # the edge refuses the stale id: the browser sees a close
                failure = classify(exc)
            if failure is None:
                opened = replace(opened, tunnel_id=fresh, at=time.monotonic())
                self._pay_for(flow.client_conn.id, opened)
            else:
                log.info("cannot reopen a tunnel to %s: %s", opened.target, failure.detail)
        flow.request.headers["Atlas-Tunnel"] = opened.tunnel_id

    def client_disconnected(self, client: connection.Client) -> None:
        """The browser's connection ended: so did its tunnel, and paying for it."""
        self._pending.pop(client.id, None)
        task = self._payers.get(client.id)
        if task is not None:
            task.cancel()

    async def done(self) -> None:
        tasks = list(self._payers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _pay_for(self, client_id: str, opened: Opened) -> None:
        """Start paying ahead for ``opened`` as the task of this client connection (in place
        of any earlier one), counted while it runs."""
        if opened.payer is None:
            return  # the edge's free allowance pays, or nothing does
        earlier = self._payers.get(client_id)
        if earlier is not None:
            earlier.cancel()
        paying = pay_ahead(self._state.session, opened.edge, opened.tunnel_id, opened.price,
                           opened.payer)  # fmt: skip
        task = asyncio.create_task(paying)
        self._payers[client_id] = task
        self._state.tunnels_paying = len(self._payers)

        def finished(_: asyncio.Task[None]) -> None:
            if self._payers.get(client_id) is task:
                del self._payers[client_id]
            self._state.tunnels_paying = len(self._payers)

        task.add_done_callback(finished)

    async def _price(self, edge: str) -> TunnelPrice:
        known = self._prices.get(edge)
        if known is None or known.quote.valid_until <= time.time() + 60:
            known = self._prices[edge] = await tunnel_price(self._state.session, edge)
        return known


def refusal(failure: Failure) -> http.Response:
    """A CONNECT answered with a problem: status, code and reason, never a 200."""
    body = Problem(failure.status, failure.code, failure.detail, failure.title).json()
    return http.Response.make(failure.status, body, {"Content-Type": PROBLEM_JSON})


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
