"""What went wrong, said so a person (HTML page) or an app (JSON problem) understands.

Every failure the proxy can meet before the first byte of a response maps
to one :class:`Failure`: an HTTP status, a stable code, a one-line title and
a detail that says what to do about it.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass

from aiohttp import web

from requester.channel_manager import SpendLimitReached
from requester.client import EdgeUnavailable, FetchRefused, TorrentListing
from requester.downloader import ContentFailedAtOrigin, NoProvidersLeft
from requester.ledger_client import LedgerError
from requester.protocol import ProtocolError


@dataclass(frozen=True)
class Failure:
    status: int
    code: str
    title: str
    detail: str


ORIGIN_TITLES = {
    "origin_tls_invalid": "The site's TLS certificate could not be verified",
    "origin_unreachable": "The site could not be reached",
    "origin_timeout": "The site did not answer in time",
    "origin_too_large": "The site's response is too large",
    "origin_truncated": "The site broke off its response",
    "origin_reset": "The site reset the connection in the middle of its response",
    "too_many_redirects": "The site redirects too many times",
    "bad_content_encoding": "The site sent a corrupt response",
}
"""Edge problems that are the origin's fault, and how a person reads them."""


def classify(exc: BaseException) -> Failure:  # noqa: PLR0911 (one answer per kind)
    """The failure a person should see for ``exc``."""
    if isinstance(exc, TorrentListing):
        names = ", ".join(str(f.get("path")) for f in exc.files[:50])
        return Failure(300, "torrent_listing", "Choose a file in this torrent", names)
    if isinstance(exc, SpendLimitReached):
        return Failure(402, "spend_limit", "Spending limit reached", exc.message)
    if isinstance(exc, FetchRefused):
        code = str(exc.problem.get("type", "")).rsplit("/", 1)[-1] or "refused"
        detail = str(exc.problem.get("detail") or exc)
        if exc.status == 403:
            return Failure(403, code, "This address is blocked", detail)
        if exc.status == 400:
            return Failure(400, code, "This address cannot be fetched", detail)
        return Failure(exc.status if 400 <= exc.status < 600 else 502, code,
                       "The edge refused the request", detail)  # fmt: skip
    if isinstance(exc, EdgeUnavailable):
        return _origin_failure(exc) or Failure(
            502, "edge_unreachable", "No Atlas edge could be reached", str(exc)
        )
    if isinstance(exc, ContentFailedAtOrigin):
        return _content_failure(exc)
    if isinstance(exc, NoProvidersLeft):
        return Failure(504, "no_providers", "No provider could deliver this page", str(exc))
    if isinstance(exc, LedgerError):
        if exc.code == "insufficient_funds":
            return Failure(402, exc.code, "Out of funds", exc.detail)
        return Failure(502, "ledger_unavailable", "The payment ledger refused", str(exc))
    if isinstance(exc, ProtocolError):
        title = "Out of funds" if exc.status == 402 else "A provider sent something invalid"
        return Failure(exc.status if exc.status != 400 else 502, exc.code, title, exc.message)
    return Failure(502, "proxy_error", "The Atlas proxy failed", f"{type(exc).__name__}: {exc}")


def _origin_failure(exc: EdgeUnavailable) -> Failure | None:
    """An edge was reached and says the site is at fault: its problem, as it said it."""
    for edge, doc in exc.problems:
        code = str(doc.get("type", "")).rsplit("/", 1)[-1]
        if code in ORIGIN_TITLES:
            status = doc.get("status")
            status = status if isinstance(status, int) and 500 <= status < 600 else 502
            detail = f"{doc.get('detail') or code}; reported by the Atlas edge {edge}"
            return Failure(status, code, ORIGIN_TITLES[code], detail)
    return None


def _content_failure(exc: ContentFailedAtOrigin) -> Failure:
    """The edge fetching the page says its fetch failed (the site broke off the body, sent a
    bomb...): its problem, as it said it, not "no provider"."""
    status = exc.status if 500 <= exc.status < 600 else 502
    code = exc.code if re.fullmatch(r"[a-z0-9_]{1,60}", exc.code) else "content_failed"
    title = ORIGIN_TITLES.get(code, "The site's response failed at the Atlas edge")
    detail = f"{exc.detail or code}; reported by the Atlas edge {exc.edge}"
    return Failure(status, code, title, detail)


def html_page(failure: Failure, url: str) -> web.Response:
    body = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>Atlas: {html.escape(failure.title)}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40em;margin:4em auto;color:#222}}
code{{background:#eee;padding:0 .2em}}</style></head>
<body><h1>{html.escape(failure.title)}</h1>
<p>{html.escape(failure.detail)}</p>
<p>Address: <code>{html.escape(url)}</code></p>
<p><small>Atlas proxy &middot; {failure.status} {html.escape(failure.code)} &middot;
<a href="http://atlas.proxy/">status</a></small></p></body></html>
"""
    return web.Response(status=failure.status, text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store"})  # fmt: skip


def problem(failure: Failure) -> web.Response:
    body = {
        "type": f"https://atlas.invalid/problems/{failure.code}",
        "title": failure.title,
        "status": failure.status,
        "detail": failure.detail,
    }
    return web.Response(status=failure.status, text=json.dumps(body),
                        content_type="application/problem+json")  # fmt: skip
