"""HTTP side of tunnels: the price of a unit, paying for more units, a tunnel's status.

The tunnels themselves run on the raw tunnel listener (:mod:`cdn_edge.tunnel_server`);
these endpoints on the ordinary HTTP port let a client keep one paid while it
runs, with the same voucher rules and refusals as chunk payments.
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.connect_request import TunnelClosed, parse_tunnel_id
from cdn_edge.problems import problem_response
from cdn_edge.tunnel_book import TUNNELS, TunnelBook
from requester.protocol import (
    VOUCHER_HEADER,
    MalformedMessage,
    PaymentRequired,
    b64url_decode,
    b64url_encode,
)
from requester.protocol.voucher import VOUCHER_SIZE

MAX_UNITS_PER_PAYMENT = 1024


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/v1/tunnel/quote", quote),
            web.post("/v1/tunnels/{tunnel_id}/pay", pay),
            web.get("/v1/tunnels/{tunnel_id}", status),
        ]
    )


def _book(request: web.Request) -> TunnelBook:
    book = request.app[TUNNELS]
    if book.url is None:
        raise web.HTTPNotFound(text="this edge does not run a tunnel listener")
    return book


async def quote(request: web.Request) -> web.Response:
    book = _book(request)
    return web.json_response(
        {
            "quote": b64url_encode(book.quote().encode()),
            "unit": book.unit,
            "price": str(book.unit_price),
        }
    )


async def pay(request: web.Request) -> web.Response:
    book = _book(request)
    tunnel_id = parse_tunnel_id(request.match_info["tunnel_id"])
    units = _units(request.query.get("units", "1"))
    tunnel = book.get(tunnel_id)
    if not tunnel.open:
        raise TunnelClosed(f"tunnel {tunnel.id} is closed ({tunnel.reason}); open a new one")
    header = request.headers.get(VOUCHER_HEADER)
    voucher = b64url_decode(header, VOUCHER_SIZE, VOUCHER_HEADER) if header is not None else None
    try:
        await book.charge(voucher, request.remote or "unknown", units)
    except PaymentRequired as exc:
        response = problem_response(402, exc.code, exc.message)
        response.headers["Atlas-Quote"] = b64url_encode(book.quote().encode())
        response.headers["Atlas-Price"] = str(units * book.unit_price)
        return response
    tunnel.credit(units)
    return web.json_response(tunnel.status())


async def status(request: web.Request) -> web.Response:
    book = _book(request)
    return web.json_response(book.get(parse_tunnel_id(request.match_info["tunnel_id"])).status())


def _units(raw: str) -> int:
    # isdigit() alone admits digits int() refuses ("²"): ASCII only.
    if not (raw.isascii() and raw.isdigit() and len(raw) <= 5) or not (
        1 <= int(raw) <= MAX_UNITS_PER_PAYMENT
    ):
        raise MalformedMessage(f"units must be an integer from 1 to {MAX_UNITS_PER_PAYMENT}")
    return int(raw)
