"""mitmproxy addon: carry each browser CONNECT through an edge's metered tunnel.

mitmproxy runs in ``upstream:`` mode; for every CONNECT this addon picks a
healthy edge, pays the first unit (a voucher on the wallet's channel to that
edge), points the flow at the edge's tunnel listener and adds the tunnel id
and voucher to the CONNECT it sends there. TLS is never opened (``ignore_hosts``
is ``.*``): the page stays end to end. A small task per tunnel pays ahead by
watching the edge's byte counter, so the edge never has to pause a tunnel
whose payer is within its limits. See "Tunnels" in docs/protocol.md.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import aiohttp
from mitmproxy import http

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


@dataclass
class TunnelPrice:
    quote: Quote
    unit: int
    price: int


class TunnelThroughEdges:
    def __init__(self, state: ProxyState) -> None:
        self._state = state
        self._turn = itertools.count()
        self._prices: dict[str, TunnelPrice] = {}
        self._payers: set[asyncio.Task[None]] = set()
        self._pending: dict[str, dict[str, str]] = {}

    async def http_connect(self, flow: http.HTTPFlow) -> None:
        state = self._state
        tunnels = [e for e in state.edges if state.tunnels.get(e) and state.is_healthy(e)]
        if not tunnels:
            flow.response = _refusal(502, "no Atlas edge offers a tunnel right now")
            return
        edge = tunnels[next(self._turn) % len(tunnels)]
        tunnel_id = secrets.token_hex(16)
        payer = None if state.manager is None else RequestPayer(
            state.manager, state.book, flow.request.host
        )  # fmt: skip
        headers = {"Atlas-Tunnel": tunnel_id}
        try:
            price = await self._price(edge)
            if payer is not None:
                voucher = await payer.pay(price.quote, price.price, int(time.time()))
                headers["Atlas-Voucher"] = voucher.to_header()
        except Exception as exc:  # a refusal the browser shows as a failed CONNECT
            log.info("cannot open a tunnel through %s: %s", edge, exc)
            flow.response = _refusal(502, f"cannot pay an Atlas edge for this tunnel: {exc}")
            return
        target = urlsplit(state.tunnels[edge])
        flow.server_conn.via = ("http", (target.hostname or "127.0.0.1", target.port or 80))
        self._pending[flow.client_conn.id] = headers
        if payer is not None:
            task = asyncio.create_task(self._pay_ahead(edge, tunnel_id, price, payer))
            self._payers.add(task)
            task.add_done_callback(self._payers.discard)
        state.tunnels_opened += 1

    def http_connect_upstream(self, flow: http.HTTPFlow) -> None:
        # mitmproxy makes a new flow for the CONNECT it sends upstream; the client
        # connection (one CONNECT each) ties it to the browser's.
        for name, value in self._pending.pop(flow.client_conn.id, {}).items():
            flow.request.headers[name] = value

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

    async def _pay_ahead(self, edge: str, tunnel_id: str, price: TunnelPrice,
                         payer: RequestPayer) -> None:  # fmt: skip
        """Until the tunnel closes: keep ``PAY_AHEAD_UNITS`` paid beyond what was relayed."""
        url = f"{edge}/v1/tunnels/{tunnel_id}"
        session = self._state.session
        await asyncio.sleep(POLL_INTERVAL)
        last_relayed = 0
        while True:
            try:
                async with session.get(url, timeout=CALL_TIMEOUT) as resp:
                    if resp.status == 404:
                        await asyncio.sleep(POLL_INTERVAL)  # not open at the edge yet
                        continue
                    status = await resp.json()
                if not status.get("open"):
                    return
                relayed = int(status["relayed"])
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
            await asyncio.sleep(POLL_INTERVAL)


def _refusal(status: int, detail: str) -> http.Response:
    return http.Response.make(status, detail + "\n", {"Content-Type": "text/plain"})
