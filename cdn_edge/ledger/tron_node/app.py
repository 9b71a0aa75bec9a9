"""The node's aiohttp app: java-tron's endpoints, and the test controls under ``/atlas/``.

The controls answer loopback clients only, with JSON problems for bad input:
``GET /atlas/time`` reads the clock, ``POST /atlas/time`` moves it (``{"advance":
SECONDS}`` or ``{"set": UNIX}``; never behind the head block), ``POST /atlas/fund``
(``{"address", "trx", "btt", "token"?}``, whole or decimal units) is a faucet, and
``GET /atlas/info`` repeats the ready line. Every handler runs to the end without
awaiting while it changes the chain, so transactions apply one at a time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from aiohttp import web
from prometheus_client import generate_latest

from cdn_edge.ledger.faucet import is_local_request
from cdn_edge.ledger.refusals import LedgerRefusal, bad_request
from cdn_edge.ledger.tron_node.genesis import TEST_BTT, DeployerFailed
from cdn_edge.ledger.tron_node.node import Node
from cdn_edge.ledger.tron_node.settings import BTT_UNITS, SUN_PER_TRX, whole_units
from cdn_edge.ledger.tron_node.wallet_api import MAX_BODY, NODE, add_wallet_routes
from cdn_edge.problems import problem_middleware, read_json
from requester.protocol import MalformedMessage, TronAddress

URL = web.AppKey("url", str)


def create_app(node: Node) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=MAX_BODY)
    app[NODE] = node
    app[URL] = ""
    add_wallet_routes(app)
    app.add_routes([
        web.get("/healthz", _healthz), web.get("/metrics", _metrics),
        web.get("/atlas/info", _info), web.get("/atlas/time", _time),
        web.post("/atlas/time", _move_time), web.post("/atlas/fund", _fund),
    ])  # fmt: skip
    return app


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True, "head": request.app[NODE].chain.blocks.head.number})


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[NODE].registry),
                        content_type="text/plain")  # fmt: skip


def _local_only(request: web.Request) -> None:
    if not is_local_request(request.remote, request.headers):
        raise LedgerRefusal(403, "forbidden", "the node's test controls answer this machine only")


async def _info(request: web.Request) -> web.Response:
    _local_only(request)
    return web.json_response(request.app[NODE].ready(request.app[URL]))


async def _time(request: web.Request) -> web.Response:
    _local_only(request)
    return web.json_response(request.app[NODE].time())


async def _move_time(request: web.Request) -> web.Response:
    _local_only(request)
    body = await read_json(request)
    node = request.app[NODE]
    if not isinstance(body, Mapping) or len(body.keys() & {"advance", "set"}) != 1:
        raise bad_request('send {"advance": SECONDS} or {"set": UNIX_SECONDS}')
    key = "advance" if "advance" in body else "set"
    value = body[key]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise bad_request(f"{key} must be a number of seconds")
    clock, head = node.chain.clock, node.chain.blocks.head
    target = clock.now() + value if key == "advance" else float(value)
    if target * 1000 < head.timestamp or (key == "advance" and value < 0):
        raise bad_request(f"the clock cannot go back before the head block ({head.timestamp} ms)")
    if target > 2**40:
        raise bad_request("that is too far in the future")
    clock.advance(value) if key == "advance" else clock.set(value)
    return web.json_response(node.time())


async def _fund(request: web.Request) -> web.Response:
    _local_only(request)
    body = await read_json(request)
    if not isinstance(body, Mapping) or not isinstance(body.get("address"), str):
        raise bad_request('send {"address": T..., "trx": AMOUNT, "btt": AMOUNT}')
    try:
        who = TronAddress.parse(body["address"])
        sun = whole_units(str(body.get("trx", 0)), SUN_PER_TRX, "TRX")
        btt = whole_units(str(body.get("btt", 0)), BTT_UNITS, "BTT")
        token = str(body.get("token", TEST_BTT))
        node = request.app[NODE]
        node.fund(who.raw, sun, btt, token)
    except MalformedMessage as exc:
        raise bad_request(exc.message) from None
    except DeployerFailed as exc:  # e.g. TRX sent to the deployer itself
        raise LedgerRefusal(409, "faucet_refused", str(exc)) from None
    except ValueError as exc:
        raise bad_request(str(exc)) from None
    return web.json_response({"address": str(who), "balance": node.chain.balance(who.raw),
                              "trx": sun, "btt": btt, "token": token})  # fmt: skip
