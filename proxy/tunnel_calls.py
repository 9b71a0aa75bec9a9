"""An edge's tunnel endpoints as the proxy calls them: the price of a unit, opening a
tunnel before answering the browser, and paying ahead while it carries bytes.

See "Tunnels" in docs/protocol.md. Every call has a timeout; a refusal comes back
as the edge's problem (code and detail), never as its raw body.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

import aiohttp

from proxy.failures import Failure
from proxy.spending import RequestPayer
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


@dataclass
class TunnelPrice:
    quote: Quote
    unit: int
    price: int


async def tunnel_price(session: aiohttp.ClientSession, edge: str) -> TunnelPrice:
    async with session.get(f"{edge}/v1/tunnel/quote", timeout=CALL_TIMEOUT) as r:
        body = await r.json()
    quote = Quote.decode(b64url_decode(str(body["quote"]), QUOTE_SIZE, "tunnel quote"))
    return TunnelPrice(quote, int(body["unit"]), int(body["price"]))


async def open_tunnel(
    session: aiohttp.ClientSession, edge: str, tunnel_id: str, target: str,
    price: TunnelPrice, payer: RequestPayer | None,
) -> Failure | None:  # fmt: skip
    """Open the tunnel at the edge, first unit paid; None, or why the edge refused."""
    headers = {}
    if payer is not None:
        voucher = await payer.pay(price.quote, price.price, int(time.time()))
        headers["Atlas-Voucher"] = voucher.to_header()
    async with session.post(
        f"{edge}/v1/tunnels/{tunnel_id}/open", params={"target": target}, headers=headers,
        timeout=OPEN_TIMEOUT,
    ) as resp:  # fmt: skip
        if resp.status == 200:
            return None
        problem = _problem(await resp.read())
    code = str(problem.get("type", "")).rsplit("/", 1)[-1] or f"http_{resp.status}"
    detail = str(problem.get("detail") or f"the edge answered {resp.status}")
    return Failure(502, code, "The edge could not open this tunnel", f"{edge}: {detail}")


async def pay_ahead(session: aiohttp.ClientSession, edge: str, tunnel_id: str,
                    price: TunnelPrice, payer: RequestPayer) -> None:  # fmt: skip
    """While the tunnel is open and bytes move: keep ``PAY_AHEAD_UNITS`` paid beyond what
    was relayed. A tunnel that never moves a byte costs only its first unit. Returns when
    the edge reports it closed or gone; its owner cancels it when the browser leaves."""
    url = f"{edge}/v1/tunnels/{tunnel_id}"
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


def _problem(raw: bytes) -> dict[str, Any]:
    try:
        doc = json.loads(raw)
    except ValueError:
        return {}
    return doc if isinstance(doc, dict) else {}
