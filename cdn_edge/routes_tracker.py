"""Tracker endpoints: providers announce signed records; requesters look them up."""

from __future__ import annotations

import time

from aiohttp import web

from cdn_edge.edge_state import EDGE
from cdn_edge.problems import read_json
from cdn_edge.routes_content import content_id_from
from requester.protocol import MalformedMessage, ProviderRecord, b64url_decode, b64url_encode
from requester.protocol.node_advert import Market
from requester.protocol.provider_record import MAX_RECORD_BYTES

MAX_RECORDS_PER_ANNOUNCE = 256


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [web.post("/v1/announce", announce), web.get("/v1/providers/{content_id}", providers)]
    )


async def announce(request: web.Request) -> web.Response:
    body = await read_json(request)
    records = body.get("records") if isinstance(body, dict) else None
    if not isinstance(records, list) or len(records) > MAX_RECORDS_PER_ANNOUNCE:
        raise MalformedMessage(
            f'announce body is {{"records": [...]}} with at most {MAX_RECORDS_PER_ANNOUNCE}'
        )
    tracker = request.app[EDGE].tracker
    now = int(time.time())
    accepted = 0
    for raw in records:
        if not isinstance(raw, str):
            raise MalformedMessage("each record is a base64url string")
        record = ProviderRecord.decode(b64url_decode(raw, MAX_RECORD_BYTES, "provider record"))
        accepted += tracker.add(record, now)
    return web.json_response({"accepted": accepted})


async def providers(request: web.Request) -> web.Response:
    cid = content_id_from(request)
    edge = request.app[EDGE]
    edge.metrics.provider_lookups.inc()
    found = edge.tracker.providers(cid, int(time.time()))
    return web.json_response(
        {
            "content_id": cid.hex(),
            "providers": [
                {"record": b64url_encode(r.encode()), "url": r.url, "node_id": r.node_id.hex(),
                 "expires_at": r.expires_at, "market": market_json(r.market)}
                for r in found
            ],
        }
    )  # fmt: skip


def market_json(terms: Market | None) -> dict[str, object] | None:
    """A record's signed terms with the keys of ``/v1/info``'s ``market`` (amounts as
    decimal strings); None for a version 1 record, which has none."""
    if terms is None:
        return None
    return {
        "capacity": terms.capacity, "slots": terms.slots, "free_slots": terms.free_slots,
        "reserve": str(terms.reserve), "clearing_price": str(terms.clearing_price),
        "round_seconds": terms.round_seconds,
    }  # fmt: skip
