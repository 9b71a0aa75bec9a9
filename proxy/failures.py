"""What went wrong, said so a person (HTML page) or an app (JSON problem) understands.

Every failure the proxy can meet before the first byte of a response maps
to one :class:`Failure`: an HTTP status, a stable code, a one-line title and
a detail that says what to do about it. The SDK's failures carry all four
(:mod:`requester.errors`); a wire-protocol refusal the SDK meets is a provider's
message or a payment it asks for; anything else is the proxy's own failure.
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from aiohttp import web

from requester.errors import AtlasError
from requester.listener_problems import problem_response
from requester.protocol import ProtocolError


@dataclass(frozen=True)
class Failure:
    status: int
    code: str
    title: str
    detail: str


def classify(exc: BaseException) -> Failure:
    """The failure a person should see for ``exc``."""
    if isinstance(exc, AtlasError):
        answer = exc.answer()
        if answer.title is not None:  # worded for people by the SDK
            return Failure(answer.status, answer.code, answer.title, answer.detail)
        if isinstance(exc, ProtocolError):  # a provider's message, as the SDK read it
            title = "Out of funds" if exc.status == 402 else "A provider sent something invalid"
            return Failure(exc.status if exc.status != 400 else 502, exc.code, title, exc.message)
    return Failure(502, "proxy_error", "The Atlas proxy failed", f"{type(exc).__name__}: {exc}")


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
    return problem_response(failure.status, failure.code, failure.detail, title=failure.title)
