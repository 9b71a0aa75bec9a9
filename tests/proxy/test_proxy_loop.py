"""A request addressed to the proxy itself is refused at once, never relayed.

Fetching the proxy's own address through it used to loop: the edge fetched the
URL from the proxy, which handed it to the edge again (one request became 45
relays and a 502 after 90 s). The edge is reached through a logging reverse
proxy, so the test sees that it was never asked.
"""

from __future__ import annotations

import json
from urllib.parse import quote, urlsplit

import aiohttp

from tests.processes import Running
from tests.proxy.conftest import curl, logged, send_connect, token
from tests.sdk.conftest import Home


def aliases(url: str) -> list[str]:
    """``url`` and the other ways of writing its host that reach a 127.0.0.1 listener."""
    port = urlsplit(url).port
    return [url, *(f"http://{host}:{port}/" for host in ("localhost", "0.0.0.0", "127.1"))]


async def test_the_proxys_own_addresses_are_refused_and_never_reach_an_edge(
    logged_proxy: tuple[Running, Running, Home],
) -> None:
    proxy, log, home = logged_proxy
    ipv6 = f"http://[::1]:{urlsplit(proxy.url).port}/x"
    own = [*aliases(proxy.url), *aliases(str(proxy.ready["api"])), ipv6]
    for url in own:
        got = curl("-x", proxy.url, "-m", "10", "-w", "\n%{http_code}", url)
        assert got.returncode == 0, (url, got.returncode, got.stderr)
        page, _, status = got.stdout.rpartition(b"\n")
        assert status == b"403", (url, status, page[:300])
        assert b"This address is the Atlas proxy itself" in page and b"proxy_loop" in page
    api = str(proxy.ready["api"])
    mobile = curl("-m", "10", "-H", f"Authorization: Bearer {token(home)}", "-w", "\n%{http_code}",
                  f"{api}/v1/fetch?url={quote(api + '/status.json', safe='')}")  # fmt: skip
    body, _, status = mobile.stdout.rpartition(b"\n")
    assert status == b"403" and json.loads(body)["type"].endswith("/proxy_loop"), body
    head, _, writer = await send_connect(proxy, proxy.url.removeprefix("http://"))
    writer.close()
    assert head.startswith(b"HTTP/1.1 403"), head
    async with aiohttp.ClientSession() as session:
        assert await logged(session, log, "/v1/fetch") == 0
        assert await logged(session, log, "/v1/tunnels/") == 0


def test_an_ordinary_address_on_another_port_still_goes_through(
    logged_proxy: tuple[Running, Running, Home], origin: Running
) -> None:
    proxy, _, _ = logged_proxy
    got = curl("-x", proxy.url, "-m", "60", "-w", "\n%{http_code}", f"{origin.url}/bytes/10?t=nl")
    assert got.stdout.endswith(b"\n200"), got.stdout[-300:]
