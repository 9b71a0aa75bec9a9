"""HTTP side of tunnels: the price of a unit, opening a tunnel ahead of its CONNECT,
paying for more units, a tunnel's status.

The tunnels themselves run on the raw tunnel listener (:mod:`cdn_edge.tunnel.server`);
these endpoints on the ordinary HTTP port let a client keep one paid while it
runs, with the same voucher rules and refusals as chunk payments. Opening over
HTTP first (``POST /v1/tunnels/{id}/open``) gives a proxy the edge's verdict
(connected and paid, or why not) before it answers its own client's CONNECT.
"""

from __future__ import annotations

from aiohttp import web

from cdn_edge.edge_state import EDGE
from cdn_edge.problems import problem_response
from cdn_edge.tunnel.book import TUNNELS, TunnelBook
from cdn_edge.tunnel.connect_request import TunnelClosed, open_request, parse_tunnel_id
from cdn_edge.tunnel.dial import open_target
from requester.errors import Refusal
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
            web.post("/v1/tunnels/{tunnel_id}/open", open_tunnel),
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


async def open_tunnel(request: web.Request) -> web.Response:
    """Connect to ``?target=HOST:PORT`` and charge the first unit, as a CONNECT would; the
    client's CONNECT with the same id then attaches (within ``ATTACH_TIMEOUT``)."""
    book = _book(request)
    header = request.headers.get(VOUCHER_HEADER)
    voucher = b64url_decode(header, VOUCHER_SIZE, VOUCHER_HEADER) if header is not None else None
    client = request.remote or "unknown"
    try:
        wanted = open_request(request.query.get("target", ""), request.match_info["tunnel_id"],
                              voucher)  # fmt: skip
        book.reserve(wanted.tunnel_id, client)
        try:
            target = await open_target(book, book.config, wanted, client)
        except BaseException:
            book.release(wanted.tunnel_id, client)
            raise
    except Refusal as exc:
        request.app[EDGE].metrics.tunnels_refused.labels(exc.code).inc()
        response = problem_response(exc.status, exc.code, exc.message)
        response.headers.update(book.refusal_headers(exc))
        return response
    tunnel = book.prepare(wanted.tunnel_id, wanted.target, client, target)
    return web.json_response(tunnel.status())


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
