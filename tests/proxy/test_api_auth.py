"""The proxy's API port needs the API token for all but liveness, the PAC file and the CA.

``/status.json`` and ``/metrics`` show the wallet, its balance and channel ids,
and ``/v1/fetch`` spends the wallet: without the token each answers 401 with a
JSON problem and ``WWW-Authenticate: Bearer``. An app sends the token as a
bearer; a person opens the status URL the proxy prints (``/?token=``) once and
is remembered by a cookie.
"""

from __future__ import annotations

import json

import aiohttp
from yarl import URL

from tests.processes import Running
from tests.proxy.conftest import api, token
from tests.sdk.conftest import Home

LOCKED = ("/", "/status.json", "/metrics", "/v1/fetch?url=http%3A%2F%2Fexample.org%2F")
OPEN = ("/healthz", "/proxy.pac", "/ca")


async def test_without_the_token_only_liveness_pac_and_ca_answer(
    proxy: Running, proxy_home: Home
) -> None:
    base = api(proxy)
    tries: tuple[dict[str, str], ...] = (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": "Basic x"},
        {"Cookie": "atlas_api=" + token(proxy_home)},
    )  # the cookie never holds the token
    async with aiohttp.ClientSession() as session:
        for path in LOCKED:
            for headers in tries:
                async with session.get(base + path, headers=headers) as r:
                    body = await r.read()
                    assert r.status == 401, (path, headers, r.status, body[:200])
                    assert r.headers["Content-Type"].startswith("application/problem+json")
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
                    assert json.loads(body)["type"].endswith("/unauthorized")
                    assert str(proxy_home.address).encode() not in body  # nothing leaks
        for path in OPEN:
            async with session.get(base + path) as r:
                assert r.status == 200, (path, r.status)
        async with session.get(base + "/status.json",
                               headers={"Authorization": "Bearer t\u00f6ken"}) as r:  # fmt: skip
            assert r.status == 400  # not a 500
        bearer = {"Authorization": f"Bearer {token(proxy_home)}"}
        async with session.get(base + "/status.json", headers=bearer) as r:
            assert r.status == 200 and (await r.json())["wallet"] == str(proxy_home.address)
        async with session.get(base + "/metrics", headers=bearer) as r:
            assert r.status == 200 and "atlas_proxy_requests" in await r.text()


async def test_the_printed_status_url_opens_the_page_and_a_cookie_keeps_it_open(
    proxy: Running, proxy_home: Home
) -> None:
    printed = str(proxy.ready["status"])
    assert printed == f"{api(proxy)}/?token={token(proxy_home)}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(printed, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/"
            cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert token(proxy_home) not in cookie
        async with session.get(URL(api(proxy)) / "") as r:  # the cookie, no token
            assert r.status == 200 and "Atlas proxy" in await r.text()
        async with session.get(f"{api(proxy)}/status.json") as r:
            assert r.status == 200 and (await r.json())["wallet"]
