"""The proxy's own HTTP service: the relay mitmproxy routes browser requests to,
the mobile API, and the status, CA and PAC pages.

mitmproxy only streams server responses, so the browser's requests are
routed here (an internal path guarded by a per-process secret) and this
service streams the verified bytes back; mitmproxy never holds a body.
"""

from __future__ import annotations

import hmac
from urllib.parse import unquote, urlsplit

from aiohttp import web

from proxy import pages
from proxy.api_auth import token_auth
from proxy.failures import Failure, classify, html_page, problem
from proxy.own_listeners import listener_ports, loop_failure, url_target
from proxy.relay import relay
from proxy.state import STATE, ProxyState
from requester.discovery import NoEdgeFound

RELAY_PATH = "/_atlas/relay"
RELAY_SECRET_HEADER = "X-Atlas-Relay"  # noqa: S105 (a header name)
RELAY_URL_HEADER = "X-Atlas-Url"
OPENED_HEADER = "X-Atlas-Opened"
"""On a relayed request: the token of the download the proxy port already opened for it."""
TORRENT_HOST = "torrent.atlas"
"""Browsers reach a file in a torrent as ``http://torrent.atlas/<infohash>/<path>``."""


def create_app(state: ProxyState) -> web.Application:
    auth = token_auth(state.api_token, exempt=frozenset({RELAY_PATH}))  # relay: own secret
    app = web.Application(client_max_size=64 * 1024, middlewares=[auth])
    app[STATE] = state
    app.add_routes([
        web.route("*", RELAY_PATH, relay_route),
        web.get("/v1/fetch", mobile_fetch),
        web.get("/", pages.status_page),
        web.get("/status.json", pages.status_json),
        web.get("/ca", pages.ca_page),
        web.get("/ca.pem", pages.ca_pem),
        web.get("/proxy.pac", pages.pac_file),
        web.get("/healthz", healthz),
        web.get("/metrics", pages.metrics),
    ])  # fmt: skip
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def relay_route(request: web.Request) -> web.StreamResponse:
    """A browser request mitmproxy handed over; the original URL rides in a header."""
    state = request.app[STATE]
    secret = request.headers.get(RELAY_SECRET_HEADER, "")
    # compare_digest raises on non-ASCII text: such a secret is simply wrong.
    if not (secret.isascii() and hmac.compare_digest(secret, state.relay_secret)):
        return problem(Failure(403, "forbidden", "Not for you", "internal relay path"))
    url = request.headers.get(RELAY_URL_HEADER, "")
    if request.method not in ("GET", "HEAD"):
        detail = (f"Atlas carries GET and HEAD through paid edges; a {request.method} "
                  "cannot be cached, chunked or verified, so it is not sent.")  # fmt: skip
        return html_page(Failure(405, "method_not_carried", "Method not carried", detail), url)
    handoff = state.take_handoff(request.headers.get(OPENED_HEADER, ""))
    if handoff is None:
        return await _relay(request, url, html_page)
    try:  # admitted and opened by the proxy port's addon (proxy/in_place.py)
        return await relay(request, handoff.client, url, request.headers, html_page,
                           opened=handoff.download)  # fmt: skip
    finally:
        state.active -= 1
        state.client_done(handoff.site, handoff.client)


async def mobile_fetch(request: web.Request) -> web.StreamResponse:
    """``GET /v1/fetch?url=URL`` with ``Authorization: Bearer TOKEN``; Range supported."""
    state = request.app[STATE]
    auth = request.headers.get("Authorization", "")
    if not auth.isascii():  # a token is ASCII; compare_digest raises on anything else
        why = "the Authorization header must be ASCII: Bearer TOKEN"
        return problem(Failure(400, "bad_authorization", "Malformed Authorization", why))
    if not auth.startswith("Bearer ") or not hmac.compare_digest(
        auth.removeprefix("Bearer ").strip(), state.api_token
    ):
        why = "send Authorization: Bearer TOKEN (the token is in the data dir)"
        failure = Failure(401, "unauthorized", "Missing or wrong token", why)
        resp = problem(failure)
        resp.headers["WWW-Authenticate"] = 'Bearer realm="atlas"'
        return resp
    url = request.query.get("url", "")
    why = f"url must be an absolute http(s) URL or a magnet link, got {url[:200]!r}"
    try:
        parts = urlsplit(url)
    except ValueError:  # an unclosed IPv6 bracket, say
        return problem(Failure(400, "bad_url", "Bad URL", why))
    torrent = url.startswith("magnet:") or parts.hostname == TORRENT_HOST
    if not torrent and (parts.scheme not in ("http", "https") or not parts.netloc):
        return problem(Failure(400, "bad_url", "Bad URL", why))
    file = request.query.get("file")
    return await _relay(request, url, lambda failure, _url: problem(failure), file)


async def _relay(request: web.Request, url: str, render: pages.Render,
                 file: str | None = None) -> web.StreamResponse:  # fmt: skip
    state = request.app[STATE]
    admitted = await admit(state, url, render, file)
    if isinstance(admitted, web.StreamResponse):
        return admitted
    url, file, site = admitted
    state.requests += 1
    state.active += 1
    try:
        async with state.client_for(site) as client:
            return await relay(request, client, url, request.headers, render, file)
    finally:
        state.active -= 1


Admitted = tuple[str, str | None, str]
"""The URL to fetch, the file in a torrent it names, and the site it is booked to."""


async def admit(state: ProxyState, url: str, render: pages.Render,
                file: str | None = None) -> Admitted | web.StreamResponse:  # fmt: skip
    """What to fetch for ``url``, or the answer refusing it: a loop to this proxy, no edge
    known yet, or overload."""
    parts = urlsplit(url)
    site = parts.hostname or ("torrent" if url.startswith("magnet:") else "?")
    own = listener_ports(state.proxy_url, state.api_url)
    looped = await loop_failure(*url_target(url), own, url) if parts.scheme != "magnet" else None
    if looped is not None:
        return render(looped, url)
    if parts.hostname == TORRENT_HOST:  # http://torrent.atlas/<infohash>/<path in torrent>
        url, _, path = parts.path.lstrip("/").partition("/")
        file = unquote(path) or None
    if not state.edges:  # --bootstrap, and the DHT lists no edge yet
        found = NoEdgeFound("the DHT lists no Atlas edge with a valid advert yet; retry soon")
        resp = render(classify(found), url)
        resp.headers["Retry-After"] = "5"
        return resp
    if state.active >= state.max_active:  # overload: refuse at once, do not queue
        failure = Failure(503, "overloaded", "The Atlas proxy is busy",
                          f"{state.active} transfers in progress; retry in a second")  # fmt: skip
        resp = render(failure, url)
        resp.headers["Retry-After"] = "1"
        return resp
    return url, file, site
