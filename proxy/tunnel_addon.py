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
ends (``client_disconnected``) or the proxy stops (``done``). See "Tunnels"
in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import secrets
import time
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from mitmproxy import connection, http

from proxy.failures import Failure, classify
from proxy.own_listeners import listener_ports, loop_failure
from proxy.spending import RequestPayer
from proxy.state import ProxyState
from requester.protocol import Quote, b64url_decode
from requester.protocol.quote import QUOTE_SIZE

log = logging.getLogger(__name__)
PAY_AHEAD_UNITS = 4
"""Units kept paid ahead of the bytes relayed: enough that a busy tunnel never pauses."""
MAX_UNITS_PER_PAYMENT = 1024
POLL_INTERVAL = 0.1
CALL_TIMEOUT = aiohttp.ClientTimeout(total=10)
OPEN_TIMEOUT = aiohttp.ClientTimeout(total=20)
"""Opening waits for the edge's own connect to the target (10 s at most)."""
REOPEN_AFTER = 5.0
"""An edge closes an opened tunnel no CONNECT attached to within 10 s; a browser that
first speaks on a preconnected socket later than this gets a freshly opened one."""


@dataclass
class TunnelPrice:
    quote: Quote
    unit: int
    price: int


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
            answer = await self._open(edge, tunnel_id, target, price, payer)
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
                failure = await self._open(opened.edge, fresh, opened.target, opened.price,
                                           opened.payer)  # fmt: skip
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
        task = asyncio.create_task(
            self._pay_ahead(opened.edge, opened.tunnel_id, opened.price, opened.payer)
        )
        self._payers[client_id] = task
        self._state.tunnels_paying = len(self._payers)

        def finished(_: asyncio.Task[None]) -> None:
            if self._payers.get(client_id) is task:
                del self._payers[client_id]
            self._state.tunnels_paying = len(self._payers)

        task.add_done_callback(finished)

    async def _price(self, edge: str) -> TunnelPrice:
        known = self._prices.get(edge)
        if known is not None and known.quote.valid_until > time.time() + 60:
            return known
        async with self._state.session.get(f"{edge}/v1/tunnel/quote", timeout=CALL_TIMEOUT) as r:
            body = await r.json()
        quote = Quote.decode(b64url_decode(str(body["quote"]), QUOTE_SIZE, "tunnel quote"))
        price = TunnelPrice(quote, int(body["unit"]), int(body["price"]))
        self._prices[edge] = price
        return price

    async def _open(self, edge: str, tunnel_id: str, target: str, price: TunnelPrice,
                    payer: RequestPayer | None) -> Failure | None:  # fmt: skip
        """Open the tunnel at the edge, first unit paid; None, or why the edge refused."""
        headers = {}
        if payer is not None:
            voucher = await payer.pay(price.quote, price.price, int(time.time()))
            headers["Atlas-Voucher"] = voucher.to_header()
        async with self._state.session.post(
            f"{edge}/v1/tunnels/{tunnel_id}/open", params={"target": target}, headers=headers,
            timeout=OPEN_TIMEOUT,
        ) as resp:  # fmt: skip
            if resp.status == 200:
                return None
            problem = _problem(await resp.read())
        code = str(problem.get("type", "")).rsplit("/", 1)[-1] or f"http_{resp.status}"
        detail = str(problem.get("detail") or f"the edge answered {resp.status}")
        return Failure(502, code, "The edge could not open this tunnel", f"{edge}: {detail}")

    async def _pay_ahead(self, edge: str, tunnel_id: str, price: TunnelPrice,
                         payer: RequestPayer) -> None:  # fmt: skip
        """While the tunnel is open and bytes move: keep ``PAY_AHEAD_UNITS`` paid beyond what
        was relayed. A tunnel that never moves a byte costs only its first unit."""
        url = f"{edge}/v1/tunnels/{tunnel_id}"
        session = self._state.session
        last_relayed = 0
        while True:
            await asyncio.sleep(POLL_INTERVAL)
            try:
                async with session.get(url, timeout=CALL_TIMEOUT) as resp:
                    status = await resp.json() if resp.status == 200 else {}
                if not status.get("open"):
                    return  # closed, or gone from the edge
                relayed = int(status["relayed"])
                if relayed == 0:
                    continue
                ahead = int(status["paid_bytes"]) - relayed
                # keep two polls' worth of the current rate paid ahead (at least a few units)
                wanted = max(PAY_AHEAD_UNITS * price.unit, 2 * (relayed - last_relayed))
                last_relayed = relayed
                if ahead < wanted:
                    units = min(MAX_UNITS_PER_PAYMENT, -(-(wanted - ahead) // price.unit))
                    voucher = await payer.pay(price.quote, units * price.price, int(time.time()))
                    async with session.post(
                        f"{url}/pay", params={"units": str(units)},
                        headers={"Atlas-Voucher": voucher.to_header()}, timeout=CALL_TIMEOUT,
                    ) as paid:  # fmt: skip
                        if paid.status != 200:
                            log.warning("edge refused tunnel payment: %s", await paid.text())
                            return
            except Exception as exc:  # limit reached, edge gone: the edge closes it unpaid
                log.info("stopped paying tunnel %s: %s", tunnel_id, exc)
                return


def refusal(failure: Failure) -> http.Response:
    """A CONNECT answered with a problem: status, code and reason, never a 200."""
    body = {
        "type": f"https://atlas.invalid/problems/{failure.code}",
        "title": failure.title,
        "status": failure.status,
        "detail": failure.detail,
    }
    return http.Response.make(failure.status, json.dumps(body),
                              {"Content-Type": "application/problem+json"})  # fmt: skip


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _problem(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
