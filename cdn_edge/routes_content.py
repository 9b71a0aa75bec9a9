"""Edge endpoints for asking for content and reading about the node.

``POST /v1/fetch`` answers as soon as the manifest head is signed; the chunks
follow through ``GET /v1/chunk/...`` (see ``routes_chunks``).
"""

from __future__ import annotations

import re
import time

from aiohttp import web

from cdn_edge.content.entry import ContentEntry
from cdn_edge.edge_state import EDGE, Edge
from cdn_edge.problems import read_json
from cdn_edge.routes_runs import RUNS_OFFERED
from cdn_edge.torrent import (
    MAX_TORRENT_FILE_BYTES,
    TorrentSpec,
    parse_peer,
    parse_source,
    parse_torrent_file,
)
from cdn_edge.tunnel.book import TUNNELS
from requester.errors import ServiceRefusal
from requester.protocol import (
    MalformedMessage,
    UrlSource,
    b64url_encode,
)

MAX_FORWARDED_HEADER = 1024
_FIELD_VALUE = re.compile(r"[\t\x20-\x7e]*")
"""What an HTTP field value may hold here: CR/LF and other controls would be an injection."""


class TorrentsOff(ServiceRefusal):
    status = 404
    code = "not_found"


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.post("/v1/fetch", fetch),
            web.post("/v1/torrent", upload_torrent),
            web.get("/v1/content/{content_id}", content),
            web.get("/v1/info", info),
            web.get("/healthz", healthz),
        ]
    )


def describe(entry: ContentEntry) -> dict[str, object]:
    """What a requester needs to start: the signed head, the seal if any, chunks ready."""
    return {
        "content_id": entry.content_id.hex(),
        "head": b64url_encode(entry.head_bytes),
        "seal": b64url_encode(entry.seal_bytes) if entry.seal_bytes else None,
        "chunks_available": len(entry.statements),
        "status": entry.head.status,
        "error": entry.error.problem() if entry.error else None,
    }


async def fetch(request: web.Request) -> web.Response:
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("url"), str):
        raise MalformedMessage('fetch body is {"url": "https://...", "headers": {...}}')
    if is_torrent(body["url"]):
        spec = parse_source(body["url"])
        return await _torrent(request, spec, body.get("file"), body.get("peers", []))
    if not body["url"].isascii():  # a lone surrogate would crash the core's UTF-8 length check
        raise MalformedMessage(
            f"URL must be absolute http(s) in printable ASCII: {body['url'][:80]!r}"
        )
    url = UrlSource(body["url"]).url
    headers = _request_headers(body.get("headers", {}))
    edge = request.app[EDGE]
    result = await edge.content.fetch(url, headers)
    edge.metrics.fetches.labels(result.cache).inc()
    _fetched(edge, result.entry)
    return web.json_response(
        {**describe(result.entry), "cache": result.cache}, headers={"Atlas-Cache": result.cache}
    )


async def upload_torrent(request: web.Request) -> web.Response:
    """``POST /v1/torrent?file=PATH[&peer=IP:PORT...]`` with a .torrent file as the body."""
    declared = request.content_length
    if declared is None or declared > MAX_TORRENT_FILE_BYTES:
        raise MalformedMessage(
            f"send the .torrent with a Content-Length of at most {MAX_TORRENT_FILE_BYTES} bytes"
        )
    spec = parse_torrent_file(await request.content.readexactly(declared))
    return await _torrent(
        request, spec, request.query.get("file"), request.query.getall("peer", [])
    )


async def _torrent(request: web.Request, spec: TorrentSpec, path: object,
                   peers: object) -> web.Response:  # fmt: skip
    """A file in a torrent as content (like a URL), or the torrent's file list."""
    edge = request.app[EDGE]
    if edge.torrents is None:
        raise TorrentsOff("this edge does not fetch torrents (started without a torrent listener)")
    if not isinstance(peers, list) or len(peers) > 16 or not all(isinstance(p, str) for p in peers):
        raise MalformedMessage('peers is a list of at most 16 "ip:port" strings')
    dial = [parse_peer(p) for p in peers]
    if path is None:
        return web.json_response({"files": await edge.torrents.files(spec, dial)})
    if not isinstance(path, str):
        raise MalformedMessage("file is the path of a file inside the torrent")
    result = await edge.torrents.fetch(spec, path, dial)
    edge.metrics.fetches.labels(result.cache).inc()
    _fetched(edge, result.entry)
    return web.json_response(
        {**describe(result.entry), "cache": result.cache}, headers={"Atlas-Cache": result.cache}
    )


def _fetched(edge: Edge, entry: ContentEntry) -> None:
    """Content this edge fetched is announced in the DHT (cdn_edge/dht) as if served: a
    requester looking for its providers finds it before anyone has asked it for a chunk."""
    if entry.error is None:
        edge.served[entry.content_id] = time.monotonic()


def is_torrent(url: str) -> bool:
    """A magnet link or a bare infohash (40 or 64 hex digits), not an HTTP URL."""
    hexdigits = set("0123456789abcdefABCDEF")
    return url.startswith("magnet:") or (len(url) in (40, 64) and set(url) <= hexdigits)


def _request_headers(headers: object) -> dict[str, str]:
    """The requester's headers, refused up front if they could not go out on the wire."""
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and len(v) <= MAX_FORWARDED_HEADER
        for k, v in headers.items()
    ):
        raise MalformedMessage("headers must be an object of short strings")
    for name, value in headers.items():
        if not _FIELD_VALUE.fullmatch(value):
            raise MalformedMessage(
                f"header {name[:40]!r}: value must be printable ASCII, without control characters"
            )
    return headers


async def content(request: web.Request) -> web.Response:
    entry = await request.app[EDGE].content.entry(content_id_from(request))
    if entry is None:
        raise web.HTTPNotFound(text="this edge does not hold that content")
    return web.json_response(describe(entry))


async def info(request: web.Request) -> web.Response:
    edge = request.app[EDGE]
    runs = {"runs": RUNS_OFFERED} if edge.selling is None else {}  # cdn_edge/routes_runs.py
    return web.json_response(
        {
            "node_id": edge.identity.node.node_id.hex(),
            "payee": str(edge.identity.payee.address),
            "ledger": edge.config.ledger,
            "chain_id": edge.domain.chain_id,
            "contract": edge.domain.contract.hex(),
            "price_per_mib": str(edge.price_per_mib),
            "price_per_chunk": str(edge.config.price_per_chunk),
            "free_bytes": edge.config.free_mib,
            "free_window": edge.config.free_window,
            "tunnel": request.app[TUNNELS].url,
            "market": edge.market.info() if edge.market is not None else None,
            "dht": edge.dht_address,
            "sibling_caches": edge.config.dht and not edge.config.no_sibling_caches,
            **runs,
        }
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def content_id_from(request: web.Request) -> bytes:
    raw = request.match_info["content_id"]
    try:
        cid = bytes.fromhex(raw)
    except ValueError:
        cid = b""
    if len(cid) != 32:
        raise MalformedMessage("content id is 64 hex digits")
    return cid
