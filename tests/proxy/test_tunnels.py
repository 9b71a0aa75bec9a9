"""HTTPS CONNECT tunnels through ``atlas proxy``: what a dropped or refused CONNECT costs.

Browsers open speculative connections and drop them, often right after the
proxy's ``200``. The proxy's pay-ahead task for such a tunnel must end with the
browser's connection: the edge is reached through a logging reverse proxy
(tests/proxy/request_log.py), so the test sees every status poll the proxy sends.
A CONNECT the edge cannot open (nothing listens on the target port) must be
answered 502 with the edge's reason, not ``200`` and a close.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.edge.edge_client import metrics
from tests.processes import Running, start_program
from tests.proxy.conftest import logged, send_connect, token
from tests.sdk.conftest import Home

TESTS = Path(__file__).parent.parent
UNITS = 'atlas_edge_tunnel_units_total{paid_by="voucher"}'


@pytest.fixture(scope="module")
def echo() -> Iterator[Running]:
    running = start_program([sys.executable, str(TESTS / "edge" / "echo_server.py")])
    yield running
    running.stop()


async def proxy_status(session: aiohttp.ClientSession, proxy: Running, home: Home) -> Any:
    headers = {"Authorization": f"Bearer {token(home)}"}
    async with session.get(f"{proxy.ready['api']}/status.json", headers=headers) as r:
        return await r.json()


@pytest.mark.parametrize("moved", [False, True], ids=["silent", "after-bytes"])
async def test_a_connect_dropped_after_200_stops_polling_and_paying(
    logged_proxy: tuple[Running, Running, Home], edges: list[Running], echo: Running,
    moved: bool,
) -> None:  # fmt: skip
    proxy, log, home = logged_proxy
    async with aiohttp.ClientSession() as session:
        head, reader, writer = await send_connect(proxy, echo.url.removeprefix("tcp://"))
        assert head.startswith(b"HTTP/1.1 200"), head
        if moved:  # the tunnel carries bytes (and gets paid ahead) before the drop
            writer.write(b"hello through the tunnel")
            async with asyncio.timeout(10):
                assert await reader.readexactly(24) == b"hello through the tunnel"
            await asyncio.sleep(0.5)
        writer.transport.abort()  # dropped, as a browser drops a speculative connection
        await asyncio.sleep(1.5)
        polls, units = (
            await logged(session, log, "/v1/tunnels/"),
            await metrics(session, edges[0].url),
        )
        await asyncio.sleep(3)
        polls_later = await logged(session, log, "/v1/tunnels/")
        units_later = await metrics(session, edges[0].url)
        status = await proxy_status(session, proxy, home)
    assert polls_later == polls, f"{polls_later - polls} status polls in the 3 s after the drop"
    assert units_later.get(UNITS) == units.get(UNITS)
    assert status["tunnels"]["paying"] == 0


async def test_connect_to_a_closed_port_is_502_with_the_edges_reason(proxy: Running) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    head, reader, writer = await send_connect(proxy, f"127.0.0.1:{closed}")
    assert head.startswith(b"HTTP/1.1 502"), head
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    async with asyncio.timeout(10):
        body = await reader.readexactly(length)
    writer.close()
    assert b"application/problem+json" in head.lower()
    problem = json.loads(body)
    assert problem["type"].endswith("/target_unreachable") and problem["status"] == 502
    assert f"port {closed}" in problem["detail"] and "127.0.0.1" in problem["detail"]


async def test_a_client_that_first_speaks_after_the_attach_window_still_gets_its_tunnel(
    proxy: Running, echo: Running
) -> None:
    """A preconnected socket may stay silent past the 10 s an edge holds an opened tunnel
    for its CONNECT; the proxy then opens a fresh one when the client speaks."""
    head, reader, writer = await send_connect(proxy, echo.url.removeprefix("tcp://"))
    assert head.startswith(b"HTTP/1.1 200"), head
    await asyncio.sleep(11)
    writer.write(b"late hello")
    async with asyncio.timeout(10):
        assert await reader.readexactly(10) == b"late hello"
    writer.close()
