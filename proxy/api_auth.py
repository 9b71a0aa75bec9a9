"""Who may read the proxy's API port: the holder of its API token, for all but a few pages.

The status page, ``/status.json`` and ``/metrics`` show the wallet, its balance,
what was spent where and the channel ids; the mobile API spends the wallet. So
every path needs the API token (``$ATLAS_HOME/api_token``) except liveness, the
PAC file and the CA pages, which a browser or a phone must read before it can
hold a token, and the relay path, which has its own per-process secret. A path
that does not exist is answered 404 (405 for a wrong method) with or without it.

An app sends ``Authorization: Bearer TOKEN``. A person opens the status URL that
``atlas up`` prints, ``/?token=TOKEN``, once: the answer is a redirect to the
same page without the token that sets a cookie (HttpOnly, SameSite=Strict) for
later visits. The cookie holds a value derived from the token, not the token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable

from aiohttp import web

from proxy.failures import Failure, problem

OPEN_PATHS = frozenset({"/healthz", "/proxy.pac", "/ca", "/ca.pem"})
COOKIE = "atlas_api"
COOKIE_MAX_AGE = 30 * 24 * 3600
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cookie_value(token: str) -> str:
    """What the status cookie holds: a MAC of the token, so the cookie does not reveal it."""
    return hmac.new(token.encode(), b"atlas proxy status cookie", hashlib.sha256).hexdigest()


def token_auth(token: str, exempt: frozenset[str]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware that admits requests holding ``token`` (bearer, cookie or ``?token=``)
    to every path but ``OPEN_PATHS`` and ``exempt``."""
    session = cookie_value(token)

    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        unguarded = request.path in OPEN_PATHS or request.path in exempt
        if unguarded or request.match_info.http_exception is not None:  # or no such page
            return await handler(request)
        auth = request.headers.get("Authorization")
        if auth is not None and not auth.isascii():
            why = "the Authorization header must be ASCII: Bearer TOKEN"
            return problem(Failure(400, "bad_authorization", "Malformed Authorization", why))
        if auth is not None and auth.startswith("Bearer ") and _same(auth[7:].strip(), token):
            return await handler(request)
        if _same(request.cookies.get(COOKIE, ""), session):
            return await handler(request)
        if request.method == "GET" and _same(request.query.get("token", ""), token):
            return _remember(request, session)
        return _unauthorized()

    return require_token


def _remember(request: web.Request, session: str) -> web.Response:
    """Set the cookie and send the browser to the same page without the token in its URL."""
    query = request.rel_url.query.copy()
    del query["token"]
    response = web.Response(status=303, headers={"Cache-Control": "no-store"})
    response.headers["Location"] = str(request.rel_url.with_query(query))
    response.set_cookie(COOKIE, session, max_age=COOKIE_MAX_AGE, path="/", httponly=True,
                        samesite="Strict")  # fmt: skip
    return response


def _unauthorized() -> web.Response:
    why = ("send Authorization: Bearer TOKEN, or open the status URL `atlas up` printed "
           "(it ends in ?token=TOKEN); the token is in $ATLAS_HOME/api_token")  # fmt: skip
    response = problem(Failure(401, "unauthorized", "Missing or wrong token", why))
    response.headers["WWW-Authenticate"] = 'Bearer realm="atlas"'
    return response


def _same(given: str, expected: str) -> bool:
    """Constant-time comparison of any text (compare_digest refuses non-ASCII str). Header
    text can hold lone surrogates (bytes that were not UTF-8): they encode back as those."""
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode())
