"""A small object the origin marks fresh (max-age) is opened from the head the proxy
verified before, without a /v1/fetch (proxy/fresh_heads.py); its chunk is still fetched
from the edge on every request. Without max-age every request asks the edge again. The
edge sits behind a logging reverse proxy, so the test sees each request the proxy sends."""

from __future__ import annotations

import aiohttp
import pytest
from mitmproxy import http

from proxy.fresh_heads import origin_fresh_until, reusable_request
from requester.protocol import ManifestHead, NodeKey
from requester.protocol.source import UrlSource
from tests.origin_server import pattern
from tests.processes import Running
from tests.proxy.conftest import curl, logged
from tests.sdk.conftest import Home

SIZE = 3000
REQUESTS = 5


async def counts(log: Running) -> tuple[int, int]:
    """(/v1/fetch requests, chunk requests) the edge has been sent so far."""
    async with aiohttp.ClientSession() as session:
        fetches = await logged(session, log, "/v1/fetch")
        chunks = await logged(session, log, "/v1/chunk/") + await logged(session, log, "/v1/run/")
    return fetches, chunks


def get(proxy: Running, url: str, *options: str) -> None:
    got = curl("-x", proxy.url, "-D", "-", *options, url)
    head, _, body = got.stdout.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"via: 1.1 atlas" in head.lower(), head
    assert body == pattern(0, SIZE)


async def test_a_fresh_small_object_skips_the_fetch_but_not_its_chunk(
    logged_proxy: tuple[Running, Running, Home], origin: Running
) -> None:
    proxy, log, _ = logged_proxy
    fresh = f"{origin.url}/bytes/{SIZE}?max-age=600&t=fresh-heads"
    before = await counts(log)
    for _ in range(REQUESTS):
        get(proxy, fresh)
    after = await counts(log)
    # The first request may be a MISS (no seal yet, relayed); the next is a sealed HIT,
    # answered in place and remembered; the rest reuse its head.
    assert after[0] - before[0] <= 2
    assert after[1] - before[1] >= REQUESTS  # every request still bought its chunk

    unmarked = f"{origin.url}/bytes/{SIZE}?t=fresh-heads-none"  # no max-age: never reused
    for _ in range(REQUESTS):
        get(proxy, unmarked)
    final = await counts(log)
    assert final[0] - after[0] == REQUESTS
    assert final[1] - after[1] >= REQUESTS

    # a reload, or a request with credentials, asks the edge even while the head is fresh
    for options in (
        ("-H", "Cache-Control: no-cache"),
        ("-H", "Pragma: no-cache"),
        ("-H", "Cache-Control: max-age=0"),
        ("-H", "Authorization: Basic eDp5"),
    ):
        get(proxy, fresh, *options)  # fmt: skip
    reloaded = await counts(log)
    assert reloaded[0] - final[0] == 4


@pytest.mark.parametrize(
    ("status", "headers", "until"),
    [
        (200, [("cache-control", "public, max-age=60")], 1060.0),
        (200, [("cache-control", 'max-age=60, s-maxage="5"')], 1005.0),  # shared caches: s-
        (200, [], 0.0),  # no explicit freshness: the edge revalidates or refetches
        (200, [("cache-control", "max-age=60, no-cache")], 0.0),
        (200, [("cache-control", "no-store, max-age=60")], 0.0),
        (200, [("cache-control", "private, max-age=60")], 0.0),
        (200, [("cache-control", "max-age=60"), ("vary", "accept-language")], 0.0),
        (200, [("cache-control", "max-age=-1")], 0.0),
        (404, [("cache-control", "max-age=60")], 0.0),
    ],
)
def test_only_an_explicitly_fresh_200_without_vary_is_reused(
    status: int, headers: list[tuple[str, str]], until: float
) -> None:
    head = ManifestHead.create(NodeKey.generate(), source=UrlSource("http://example.test/x"),
                               status=status, headers=headers, created_at=1000)  # fmt: skip
    assert origin_fresh_until(head) == until


@pytest.mark.parametrize(
    ("headers", "reusable"),
    [
        ({}, True),
        ({"Cache-Control": "max-age=600"}, True),
        ({"Cache-Control": "no-cache"}, False),
        ({"cache-control": "max-age = 0"}, False),
        ({"Pragma": "no-cache"}, False),
        ({"Cache-Control": "public, no-store"}, False),
        ({"Authorization": "Bearer x"}, False),
        ({"authorization": "Basic eDp5"}, False),
        ({"Cache-Control": "max-age=600", "Pragma": "NO-CACHE"}, False),
    ],
)
def test_a_reload_or_credentials_ask_the_edge(headers: dict[str, str], reusable: bool) -> None:
    fields = http.Headers([(k.encode(), v.encode()) for k, v in headers.items()]).fields
    assert reusable_request(fields) is reusable
