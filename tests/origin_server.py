"""A test origin: an aiohttp server with fixed and generated content.

Run as its own process (``python tests/origin_server.py --port 0``); it prints
``{"listening": URL}`` when ready. Generated bodies are streamed from a
deterministic generator, so a 200 MiB response costs no memory, and tests
can recompute the expected bytes with :func:`pattern` without downloading.

Routes:
  /bytes/{n}            n deterministic bytes (application/octet-stream); with ?max-age=s,
                        cacheable for s seconds
  /text/{n}             n bytes of compressible HTML-ish text (text/html)
  /cached/{name}        max-age=3600, ETag and Last-Modified; counts hits
  /revalidate/{name}    no-cache + ETag: every use revalidates (304 when matching)
  /vary/{name}          Vary: Accept-Language; body names the language
  /private/{name}       Cache-Control: private (never stored by a shared cache)
  /slow/{n}?delay=s     n bytes in 16 KiB pieces with a pause between them
  /redirect/{k}         k redirects, then /text/100
  /status/{code}        that status with a small body
  /huge-headers         a response with a 64 KiB header
  /gzip/{n}             /text/{n} gzip-encoded
  /gzip-members/{n}     gzip(text(n)) + gzip(pattern(0, n)), as `cat a.gz b.gz` makes
  /short/{n}?pause=s    declares n bytes, sends half of them and closes the connection
                        (s seconds after the half, default 0.2)
  /reset/{n}            declares n bytes, sends half of them and resets the connection
  /bomb/{codings}?mib=m m MiB of zeros (default 5 GiB) coded with each of the comma-
                        separated codings in turn (gzip, deflate, br, zstd), streamed as made
  /hits                 JSON: hits per path so far
  /sent                 JSON: body bytes sent per path so far
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gzip
import hashlib
import json
import re
import socket
import ssl
import struct
import sys
import zlib
from collections import Counter
from collections.abc import Awaitable, Callable

import brotli  # type: ignore[import-untyped]
import zstandard
from aiohttp import web

PIECE = 64 * 1024
TEXT_UNIT = (
    b'<div class="row"><span>Atlas edge test content</span> <a href="/next">next page</a></div>\n'
)
HITS: Counter[str] = Counter()
SENT: Counter[str] = Counter()
"""Body bytes sent per path (as generated, before any transfer coding)."""
LAST_MODIFIED = "Mon, 02 Nov 2026 10:00:00 GMT"


def pattern(offset: int, length: int) -> bytes:
    """Bytes ``offset .. offset+length`` of the endless deterministic stream."""
    out = bytearray()
    block = offset // 32
    skip = offset % 32
    while len(out) < length + skip:
        out += hashlib.sha256(block.to_bytes(8, "big")).digest()
        block += 1
    return bytes(out[skip : skip + length])


def text(length: int) -> bytes:
    repeats = length // len(TEXT_UNIT) + 1
    return (TEXT_UNIT * repeats)[:length]


async def _stream(
    request: web.Request,
    total: int,
    make: Callable[[int, int], bytes],
    content_type: str,
    delay: float = 0.0,
    piece: int = PIECE,
    headers: dict[str, str] | None = None,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": content_type, **(headers or {})})
    resp.content_length = total
    await resp.prepare(request)
    sent = 0
    while sent < total:
        size = min(piece, total - sent)
        await resp.write(make(sent, size))
        sent += size
        if delay:
            await asyncio.sleep(delay)
    await resp.write_eof()
    return resp


def _n(request: web.Request) -> int:
    raw = request.match_info["n"]
    if not raw.isdigit():
        raise web.HTTPBadRequest(text="n must be an integer")
    return int(raw)


@web.middleware
async def count_hits(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    if request.path in ("/hits", "/sent"):
        return await handler(request)
    HITS[request.path] += 1
    response = await handler(request)
    if isinstance(response, web.Response):  # written after this returns: its body is known
        SENT[request.path] += len(response.body) if isinstance(response.body, bytes) else 0
    else:  # streamed by the handler: written already
        SENT[request.path] += response.body_length
    return response


async def bytes_route(request: web.Request) -> web.StreamResponse:
    age = request.query.get("max-age", "")
    cache = {"Cache-Control": f"max-age={age}"} if age.isascii() and age.isdigit() else None
    return await _stream(request, _n(request), pattern, "application/octet-stream",
                         headers=cache)  # fmt: skip


async def text_route(request: web.Request) -> web.StreamResponse:
    return await _stream(request, _n(request), lambda off, size: text(off + size)[off:],
                         "text/html; charset=utf-8")  # fmt: skip


async def slow_route(request: web.Request) -> web.StreamResponse:
    delay = float(request.query.get("delay", "0.05"))
    return await _stream(request, _n(request), pattern, "application/octet-stream", delay,
                         16 * 1024)  # fmt: skip


def _etag(name: str) -> str:
    return '"' + hashlib.sha256(name.encode()).hexdigest()[:16] + '"'


async def cached_route(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    return web.Response(
        body=text(5000) + name.encode(),
        content_type="text/html",
        headers={"Cache-Control": "max-age=3600", "ETag": _etag(name),
                 "Last-Modified": LAST_MODIFIED},
    )  # fmt: skip


async def revalidate_route(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    headers = {"Cache-Control": "no-cache", "ETag": _etag(name)}
    if request.headers.get("If-None-Match") == _etag(name):
        return web.Response(status=304, headers=headers)
    return web.Response(body=text(3000) + name.encode(), content_type="text/html", headers=headers)


async def vary_route(request: web.Request) -> web.Response:
    lang = request.headers.get("Accept-Language", "none")
    return web.Response(
        text=f"language={lang}",
        headers={"Cache-Control": "max-age=3600", "Vary": "Accept-Language"},
    )


async def private_route(request: web.Request) -> web.Response:
    return web.Response(text="for you only", headers={"Cache-Control": "private, max-age=3600"})


async def redirect_route(request: web.Request) -> web.Response:
    k = int(request.match_info["k"])
    target = f"/redirect/{k - 1}" if k > 1 else "/text/100"
    raise web.HTTPFound(target)


async def status_route(request: web.Request) -> web.Response:
    code = int(request.match_info["code"])
    return web.Response(status=code, text=f"origin said {code}\n")


async def huge_headers_route(request: web.Request) -> web.Response:
    return web.Response(text="big", headers={"X-Huge": "a" * 65536})


async def gzip_route(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(text(_n(request))),
        headers={"Content-Encoding": "gzip", "Content-Type": "text/html"},
    )


async def gzip_members_route(request: web.Request) -> web.Response:
    n = _n(request)
    return web.Response(
        body=gzip.compress(text(n)) + gzip.compress(pattern(0, n)),
        headers={"Content-Encoding": "gzip", "Content-Type": "application/octet-stream"},
    )


async def _half_then(request: web.Request, reset: bool) -> web.StreamResponse:
    """n declared, n // 2 sent, then the connection ends: closed (FIN) or reset (RST)."""
    n = _n(request)
    resp = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    resp.content_length = n
    await resp.prepare(request)
    await resp.write(pattern(0, n // 2))
    await asyncio.sleep(float(request.query.get("pause", "0.2")))  # the half goes out first
    transport = request.transport
    assert transport is not None
    if reset:  # SO_LINGER 0: close() sends RST instead of FIN
        linger = struct.pack("ii", 1, 0)
        transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
    transport.close()
    raise asyncio.CancelledError  # nothing more to write on this connection


async def short_route(request: web.Request) -> web.StreamResponse:
    return await _half_then(request, reset=False)


async def reset_route(request: web.Request) -> web.StreamResponse:
    return await _half_then(request, reset=True)


class _Coder:
    """One content coding applied as the bytes are made (a bomb's layers)."""

    def __init__(self, coding: str) -> None:
        self.coding = coding
        self._zlib = zlib.compressobj(6, zlib.DEFLATED, 31 if coding == "gzip" else 15)
        self._br = brotli.Compressor(quality=5)
        self._zstd = zstandard.ZstdCompressor(level=3).compressobj()

    def push(self, data: bytes, *, flush: bool = False, end: bool = False) -> bytes:
        if self.coding == "br":
            out: bytes = self._br.process(data)
            return out + (self._br.finish() if end else self._br.flush() if flush else b"")
        if self.coding == "zstd":
            out = self._zstd.compress(data)
            if end or flush:
                out += self._zstd.flush(0 if end else zstandard.COMPRESSOBJ_FLUSH_BLOCK)
            return out
        out = self._zlib.compress(data)
        return out + (self._zlib.flush() if end else self._zlib.flush(2) if flush else b"")


async def bomb_route(request: web.Request) -> web.StreamResponse:
    codings = request.match_info["codings"].split(",")
    total = int(request.query.get("mib", "5120"))
    coders = [_Coder(c) for c in codings]
    resp = web.StreamResponse(headers={"Content-Encoding": ", ".join(codings)})
    await resp.prepare(request)
    zeros = bytes(1 << 20)
    try:
        for mib in range(total + 1):
            data = zeros if mib < total else b""
            for coder in coders:  # flushed every 4 MiB: the bytes go out as they are made
                data = coder.push(data, flush=mib % 4 == 3, end=mib == total)
            await resp.write(data)
        await resp.write_eof()
    except (ConnectionError, RuntimeError):
        pass  # the edge hung up, as it should
    return resp


async def hits_route(request: web.Request) -> web.Response:
    return web.json_response(dict(HITS))


async def sent_route(request: web.Request) -> web.Response:
    return web.json_response(dict(SENT))


SITE_VIDEO_SIZE = 20 * 1024 * 1024
SITE_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Atlas test page</title>
<link rel="stylesheet" href="style.css"></head>
<body><h1 id="title">Hello through Atlas</h1>
<p id="styled">styled text</p><img id="img" src="pixel.svg" width="40" height="40">
<p id="js">js did not run</p><p id="range">range pending</p><p id="whole">whole pending</p>
<script src="app.js"></script></body></html>
"""
SITE_CSS = "body { background: #f4f0e8; } #styled { color: rgb(200, 30, 40); font-size: 40px; }\n"
SITE_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" width="40" height="40">'
    '<rect width="40" height="40" fill="#1060c0"/></svg>\n'
)
SITE_JS = """
async function hex(buf) {
  const d = await crypto.subtle.digest("SHA-256", buf);
  return Array.from(new Uint8Array(d)).map(b => b.toString(16).padStart(2, "0")).join("");
}
document.getElementById("js").textContent = "js ran; color " +
  getComputedStyle(document.getElementById("styled")).color;
window.addEventListener("load", () => {
  const img = document.getElementById("img");
  document.getElementById("js").dataset.img = img.naturalWidth + "x" + img.naturalHeight;
});
(async () => {
  const part = await fetch("video.bin", {headers: {Range: "bytes=1000000-1065535"}});
  const pbuf = await part.arrayBuffer();
  document.getElementById("range").textContent =
    "range " + part.status + " " + pbuf.byteLength + " " + await hex(pbuf);
  const all = await fetch("video.bin");
  const abuf = await all.arrayBuffer();
  document.getElementById("whole").textContent =
    "whole " + all.status + " " + abuf.byteLength + " " + await hex(abuf);
})();
"""
SITE = {
    "index.html": (SITE_PAGE.encode(), "text/html; charset=utf-8"),
    "style.css": (SITE_CSS.encode(), "text/css"),
    "pixel.svg": (SITE_SVG.encode(), "image/svg+xml"),
    "app.js": (SITE_JS.encode(), "application/javascript"),
}


async def site_route(request: web.Request) -> web.StreamResponse:
    """A page with CSS, JS, an image and a 20 MiB video-like file, for the browser test."""
    name = request.match_info["name"]
    if name == "video.bin":  # a video server answers single ranges
        match = re.fullmatch(r"bytes=(\d+)-(\d*)", request.headers.get("Range", ""))
        if match is None:
            return await _stream(request, SITE_VIDEO_SIZE, pattern, "video/mp4")
        first = int(match[1])
        last = min(int(match[2] or SITE_VIDEO_SIZE - 1), SITE_VIDEO_SIZE - 1)
        resp = web.Response(
            status=206,
            body=pattern(first, last - first + 1),
            headers={
                "Content-Type": "video/mp4",
                "Content-Range": f"bytes {first}-{last}/{SITE_VIDEO_SIZE}",
            },
        )
        return resp
    if name not in SITE:
        raise web.HTTPNotFound()
    body, content_type = SITE[name]
    return web.Response(body=body, headers={"Content-Type": content_type,
                                            "Cache-Control": "max-age=60"})  # fmt: skip


def create_app() -> web.Application:
    app = web.Application(middlewares=[count_hits])
    app.add_routes(
        [
            web.get("/bytes/{n}", bytes_route),
            web.get("/text/{n}", text_route),
            web.get("/slow/{n}", slow_route),
            web.get("/cached/{name}", cached_route),
            web.get("/revalidate/{name}", revalidate_route),
            web.get("/vary/{name}", vary_route),
            web.get("/private/{name}", private_route),
            web.get("/redirect/{k}", redirect_route),
            web.get("/status/{code}", status_route),
            web.get("/huge-headers", huge_headers_route),
            web.get("/gzip/{n}", gzip_route),
            web.get("/gzip-members/{n}", gzip_members_route),
            web.get("/bomb/{codings}", bomb_route),
            web.get("/short/{n}", short_route),
            web.get("/reset/{n}", reset_route),
            web.get("/hits", hits_route),
            web.get("/sent", sent_route),
            web.get("/site/{name}", site_route),
        ]
    )
    return app


async def _main(host: str, port: int, cert: str | None, key: str | None) -> None:
    runner = web.AppRunner(create_app(), max_field_size=128 * 1024, access_log=None)
    await runner.setup()
    context = None
    if cert and key:  # HTTPS origin for the proxy's tunnel and intercept tests
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)
    site = web.TCPSite(runner, host, port, ssl_context=context)
    await site.start()
    bound = runner.addresses[0]
    scheme = "https" if context else "http"
    sys.stdout.write(json.dumps({"listening": f"{scheme}://{bound[0]}:{bound[1]}"}) + "\n")
    sys.stdout.flush()
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS")
    parser.add_argument("--tls-key", help="PEM private key for --tls-cert")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.host, args.port, args.tls_cert, args.tls_key))
