"""Fake providers for tests: one process, N listeners, each takes payment and delivers nothing.

Each fake has a fresh Ed25519 node key and a fresh payee address. A chunk
request without a voucher gets ``402`` with a valid quote for the content
asked, signed by the fake's node key, naming its payee on the ledger given.
A request with a voucher is answered by the fake's mode (``--modes`` is a
comma list cycled over the fakes):

- ``not-ready``: ``503 chunk_not_ready``, so a paying client keeps its payment
  there as credit and comes back (and the fake answers its credit with 402);
- ``garbage``: ``200`` with random bytes and a made-up chunk statement;
- ``again``: ``402`` again, as if the voucher did not pay enough.

``GET /stats`` on any listener: ``{url: {"requests": n, "vouchers": n,
"credit_spends": n}}`` for every fake. Prints ``{"listening": URL, "urls":
[...]}`` once all listen.

Run: ``python tests/fake_providers.py --count 20 --chain-id N --contract HEX``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from requester.protocol import (
    BTT_LOCAL,
    NodeKey,
    PayerKey,
    PaymentDomain,
    Quote,
    b64url_encode,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def fake(domain: PaymentDomain, mode: str, price_per_mib: int, chunk_size: int,
         stats: dict[str, int]) -> Handler:  # fmt: skip
    key, payee = NodeKey.generate(), PayerKey.generate().address

    async def chunk(request: web.Request) -> web.StreamResponse:
        stats["requests"] += 1
        paid = "Atlas-Voucher" in request.headers
        stats["vouchers"] += paid
        stats["credit_spends"] += "Atlas-Credit" in request.headers
        if paid and mode == "not-ready":
            return _problem(503, "chunk_not_ready", "not yet", {"Retry-After": "1"})
        if paid and mode == "garbage":
            statement = b64url_encode(b"ATC\x01" + os.urandom(136))
            return web.Response(body=os.urandom(chunk_size),
                                headers={"Atlas-Chunk": statement, "Atlas-Price": "0"})  # fmt: skip
        now = int(time.time())
        quote = Quote.create(
            key, payee=payee, asset=BTT_LOCAL, domain=domain,
            content_id=bytes.fromhex(request.match_info["content_id"]), price_per_chunk=0,
            price_per_mib=price_per_mib, interval=1, valid_from=now - 60, valid_until=now + 600,
        )  # fmt: skip
        return _problem(402, "payment_required", "pay first", {
            "Atlas-Quote": b64url_encode(quote.encode()),
            "Atlas-Price": str(quote.chunk_price(chunk_size)),
        })  # fmt: skip

    return chunk


def _problem(status: int, code: str, detail: str, headers: dict[str, str]) -> web.Response:
    body = {"type": f"https://atlas.invalid/problems/{code}", "title": code, "status": status,
            "detail": detail}  # fmt: skip
    return web.Response(status=status, text=json.dumps(body), headers=headers,
                        content_type="application/problem+json")  # fmt: skip


async def _main(ns: argparse.Namespace) -> None:
    domain = PaymentDomain(ns.chain_id, bytes.fromhex(ns.contract))
    modes = ns.modes.split(",")
    all_stats: dict[str, dict[str, int]] = {}

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(all_stats)

    urls = []
    for i in range(ns.count):
        counters = {"requests": 0, "vouchers": 0, "credit_spends": 0}
        app = web.Application()
        app.router.add_get("/v1/chunk/{content_id}/{index}",
                           fake(domain, modes[i % len(modes)], ns.price_per_mib, ns.chunk_size,
                                counters))  # fmt: skip
        app.router.add_get("/stats", stats)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        urls.append(url)
        all_stats[url] = counters
    print(json.dumps({"listening": urls[0], "urls": urls}), flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--chain-id", type=int, required=True)
    parser.add_argument("--contract", required=True, help="ledger contract, 40 hex digits")
    parser.add_argument("--modes", default="not-ready,garbage,again")
    parser.add_argument("--price-per-mib", type=int, default=10**15)
    parser.add_argument("--chunk-size", type=int, default=256 * 1024)
    try:
        asyncio.run(_main(parser.parse_args()))
    except KeyboardInterrupt:
        sys.exit(0)
