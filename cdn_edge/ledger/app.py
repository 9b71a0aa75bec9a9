"""The embedded ledger's HTTP API (``docs/ledger.md``), built by :func:`create_app`."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, generate_latest

from cdn_edge.ledger.faucet import FaucetLimited, FaucetLimits, FaucetMeter, is_local_request
from cdn_edge.ledger.refusals import LedgerRefusal, bad_request
from cdn_edge.ledger.store import CrashHook, LedgerStore, Result
from cdn_edge.problems import problem_middleware, problem_response, read_json
from requester.errors import Refusal
from requester.protocol import (
    BTT_LOCAL,
    LOCAL_CHAIN_ID,
    LOCAL_LEDGER_CONTRACT,
    PaymentDomain,
    SignedOp,
    TronAddress,
    Voucher,
    parse_amount,
)

MAX_BODY = 16 * 1024
T = TypeVar("T")


@dataclass(frozen=True)
class LedgerConfig:
    data_dir: Path
    faucet: bool = False
    faucet_limits: FaucetLimits = field(default_factory=FaucetLimits)
    """Largest grant, and what one address and everyone may get per minute."""
    domain: PaymentDomain = field(
        default_factory=lambda: PaymentDomain(LOCAL_CHAIN_ID, LOCAL_LEDGER_CONTRACT)
    )
    clock: Callable[[], float] = time.time
    crash: CrashHook | None = None


STORE = web.AppKey("store", LedgerStore)
CONFIG = web.AppKey("config", LedgerConfig)
DB_THREAD = web.AppKey("db_thread", ThreadPoolExecutor)
REGISTRY = web.AppKey("registry", CollectorRegistry)
CALLS = web.AppKey("calls", Counter)
FAUCET = web.AppKey("faucet", FaucetMeter)


def create_app(config: LedgerConfig) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=MAX_BODY)
    app[CONFIG] = config
    app[FAUCET] = FaucetMeter(config.faucet_limits)
    registry = CollectorRegistry()
    app[REGISTRY] = registry
    app[CALLS] = Counter(
        "atlas_ledger_calls", "Ledger calls by kind and outcome", ["kind", "outcome"],
        registry=registry,
    )  # fmt: skip
    app.cleanup_ctx.append(_store_ctx)
    app.add_routes(
        [
            web.get("/healthz", _healthz),
            web.get("/metrics", _metrics),
            web.get("/v1/info", _info),
            web.post("/v1/faucet", _faucet),
            web.post("/v1/calls", _call),
            web.post("/v1/redeem", _redeem),
            web.get("/v1/accounts/{address}", _account),
            web.get("/v1/accounts/{address}/channels", _account_channels),
            web.get("/v1/accounts/{address}/history", _history),
            web.get("/v1/channels/{channel_id}", _channel),
        ]
    )
    return app


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    config.data_dir.mkdir(parents=True, exist_ok=True)
    # One thread owns the SQLite connection: calls are serialised, the loop never blocks.
    thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ledger-db")
    kwargs = {"crash": config.crash} if config.crash else {}
    store = await asyncio.get_running_loop().run_in_executor(
        thread, partial(LedgerStore, config.data_dir / "ledger.sqlite3", config.domain, **kwargs)
    )
    app[STORE], app[DB_THREAD] = store, thread
    yield
    await asyncio.get_running_loop().run_in_executor(thread, store.close)
    thread.shutdown()


async def _db(request: web.Request, fn: Callable[..., T], *args: object) -> T:
    return await asyncio.get_running_loop().run_in_executor(
        request.app[DB_THREAD], partial(fn, *args)
    )


def _now(request: web.Request) -> int:
    return int(request.app[CONFIG].clock())


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _metrics(request: web.Request) -> web.Response:
    return web.Response(body=generate_latest(request.app[REGISTRY]), content_type="text/plain")


async def _info(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    totals = await _db(request, request.app[STORE].totals)
    return web.json_response(
        {
            "chain_id": config.domain.chain_id,
            "contract": config.domain.contract.hex(),
            "asset": BTT_LOCAL.uri,
            "faucet": config.faucet,
            "time": _now(request),
            "totals": totals,
        }
    )


async def _faucet(request: web.Request) -> web.Response:
    config = request.app[CONFIG]
    if not config.faucet:
        raise LedgerRefusal(
            403, "faucet_disabled", "this ledger has no faucet (start it with --faucet)"
        )
    if not is_local_request(request.remote, request.headers):
        why = "the faucet serves only clients on the ledger's own machine (loopback)"
        raise LedgerRefusal(403, "faucet_local_only", why)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("address"), str):
        raise bad_request('faucet body is {"address": "T...", "amount": "100"}')
    address = TronAddress.parse(body["address"])
    amount = parse_amount(str(body.get("amount", "100")), BTT_LOCAL)
    largest = config.faucet_limits.per_grant
    if not 0 < amount <= largest:
        raise bad_request(f"faucet amount must be above 0 and at most {largest} base units")
    request_id = body.get("request_id")
    if request_id is not None and (
        not isinstance(request_id, str) or not 0 < len(request_id) <= 64
    ):
        raise bad_request("request_id, when given, is a string of 1 to 64 characters")
    try:
        request.app[FAUCET].take(str(address), amount, time.monotonic())
    except FaucetLimited as exc:
        request.app[CALLS].labels("faucet", exc.code).inc()
        retry = {"Retry-After": str(exc.retry_after)}
        return problem_response(exc.status, exc.code, exc.message, retry)
    result = await _db(
        request, request.app[STORE].mint, address, BTT_LOCAL, amount, _now(request), request_id
    )
    request.app[CALLS].labels("faucet", "ok").inc()
    return web.json_response(result)


async def _call(request: web.Request) -> web.Response:
    kind = "call"
    try:
        call = SignedOp.from_json(await read_json(request))
        kind = call.op.TYPE
        result = await _db(request, request.app[STORE].apply, call, _now(request))
    except Refusal as exc:
        request.app[CALLS].labels(kind, exc.code).inc()
        raise
    request.app[CALLS].labels(kind, "ok").inc()
    return web.json_response(result)


async def _redeem(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("voucher"), str):
        raise bad_request('redeem body is {"voucher": "<base64url voucher>"}')
    try:
        voucher = Voucher.from_header(body["voucher"])
        result: Result = await _db(request, request.app[STORE].redeem, voucher, _now(request))
    except Refusal as exc:
        request.app[CALLS].labels("redeem", exc.code).inc()
        raise
    request.app[CALLS].labels("redeem", "ok").inc()
    return web.json_response(result)


async def _account(request: web.Request) -> web.Response:
    address = TronAddress.parse(request.match_info["address"])
    return web.json_response(await _db(request, request.app[STORE].account, address))


async def _account_channels(request: web.Request) -> web.Response:
    address = TronAddress.parse(request.match_info["address"])
    return web.json_response({"channels": await _db(request, request.app[STORE].channels, address)})


async def _history(request: web.Request) -> web.Response:
    address = TronAddress.parse(request.match_info["address"])
    raw_limit = request.query.get("limit", "100")
    # Length first: int() of thousands of digits raises (and would cost CPU).
    if not (raw_limit.isascii() and raw_limit.isdigit() and len(raw_limit) <= 4) or not (
        1 <= int(raw_limit) <= 1000
    ):
        raise bad_request("limit must be an integer from 1 to 1000")
    events = await _db(request, request.app[STORE].history, address, int(raw_limit))
    return web.json_response({"events": events})


async def _channel(request: web.Request) -> web.Response:
    raw = request.match_info["channel_id"]
    try:
        cid = bytes.fromhex(raw)
    except ValueError:
        cid = b""
    if len(cid) != 32:
        raise bad_request("channel id is 64 hex digits")
    return web.json_response(await _db(request, request.app[STORE].channel, cid))


__all__ = ["LedgerConfig", "create_app"]
