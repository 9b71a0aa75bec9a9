"""Every way a CONNECT is refused, and every way a tunnel is closed by the edge.

Refusals are HTTP/1.1 answers on the raw tunnel socket with a JSON problem
body and ``Connection: close``. The SSRF guard is checked on an edge started
without ``--allow-private-origins``.
"""

from __future__ import annotations

import asyncio
import secrets
import socket
from collections.abc import Iterator

import aiohttp
import pytest

from tests.edge.edge_client import metrics
from tests.edge.paying import open_channel, voucher_header
from tests.edge.tunnel_client import (
    connect,
    new_id,
    opened,
    send_head,
    target_of,
    tunnel_info,
    wait_status,
)
from tests.processes import Running, start, start_edge

VOUCHER = "A" * 251  # base64url of 188 bytes, not a valid voucher: parsing fails first


@pytest.fixture(scope="module")
def strict_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    """A paid edge with two tunnels per client and short pay and idle timeouts."""
    running = start_edge(
        tmp_path_factory.mktemp("strict-edge"), ledger.url, "--free-mib", "0",
        "--max-tunnels-per-client", "2", "--tunnel-pay-timeout", "1",
        "--tunnel-idle-timeout", "1.5",
    )  # fmt: skip
    yield running
    running.stop()


@pytest.fixture(scope="module")
def guarded_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    """An edge with the SSRF guard on (no --allow-private-origins)."""
    data_dir = str(tmp_path_factory.mktemp("guarded-edge"))
    running = start(["edge", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir",
                     data_dir, "--ledger", ledger.url, "--free-mib", "0"])  # fmt: skip
    yield running
    running.stop()


def _head(*lines: str) -> bytes:
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


GOOD_ID = "0123456789abcdef0123456789abcdef"
MALFORMED = {
    "not CONNECT": _head("GET / HTTP/1.1", "Host: x", f"Atlas-Tunnel: {GOOD_ID}"),
    "no tunnel id": _head("CONNECT 127.0.0.1:443 HTTP/1.1", "Host: x"),
    "uppercase id": _head("CONNECT 127.0.0.1:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID.upper()}"),
    "short id": _head("CONNECT 127.0.0.1:443 HTTP/1.1", "Atlas-Tunnel: abc"),
    "two ids": _head("CONNECT a.example:443 HTTP/1.1", *[f"Atlas-Tunnel: {GOOD_ID}"] * 2),
    "no port": _head("CONNECT 127.0.0.1 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}"),
    "port 0": _head("CONNECT 127.0.0.1:0 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}"),
    "URL target": _head("CONNECT http://a.example/ HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}"),
    "user info": _head("CONNECT u@a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}"),
    "bad voucher": _head(
        "CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", "Atlas-Voucher: !!"
    ),
    "version": _head("CONNECT a.example:443 HTTP/2.0", f"Atlas-Tunnel: {GOOD_ID}"),
    "no colon": _head("CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", "junk"),
    "folded": _head("CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", " more"),
    "body": _head(
        "CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", "Content-Length: 5"
    ),
    "bare LF": b"CONNECT a.example:443 HTTP/1.1\nAtlas-Tunnel: " + GOOD_ID.encode() + b"\r\n\r\n",
    "non-ASCII": _head("CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", "X: é"),
    "too big": _head(
        "CONNECT a.example:443 HTTP/1.1", f"Atlas-Tunnel: {GOOD_ID}", "X: " + "a" * 8200
    ),
}


@pytest.mark.parametrize("name", MALFORMED)
async def test_malformed_connect_gets_400(strict_edge: Running, name: str) -> None:
    async with aiohttp.ClientSession() as session:
        tunnel_url, _ = await tunnel_info(session, strict_edge.url)
    reply = await send_head(tunnel_url, MALFORMED[name])
    assert reply.status == 400 and reply.code() == "malformed_message", reply
    assert reply.problem()["detail"]


@pytest.mark.parametrize(
    ("target", "why"),
    [
        ("127.0.0.1:443", "loopback"),
        ("localhost:443", "loopback"),  # a name is resolved, and every address checked
        ("[::1]:443", "loopback"),
        ("10.1.2.3:443", "private"),
        ("169.254.169.254:80", "link-local"),
        ("[::ffff:127.0.0.1]:443", "loopback"),
        ("0.0.0.0:443", "unspecified"),
        ("127.0.0.1:8443", "loopback"),  # 8443 passes the port rule, not the address rule
        ("a.example:22", "tunnels only reach ports 80, 443, 8443"),  # no DNS needed
        ("a.example:8080", "tunnels only reach ports 80, 443, 8443"),
    ],
)
async def test_guard_refuses_blocked_targets_with_403(
    guarded_edge: Running, target: str, why: str
) -> None:
    async with aiohttp.ClientSession() as session:
        tunnel_url, _ = await tunnel_info(session, guarded_edge.url)
    reply = await connect(tunnel_url, target, new_id(), VOUCHER)
    assert reply.status == 403 and reply.code() == "blocked_address", reply
    assert why in reply.problem()["detail"]


async def test_guard_also_blocks_the_echo_port_on_loopback(
    guarded_edge: Running, echo: Running
) -> None:
    async with aiohttp.ClientSession() as session:
        tunnel_url, _ = await tunnel_info(session, guarded_edge.url)
        reply = await connect(tunnel_url, target_of(echo.url), new_id(), VOUCHER)
        samples = await metrics(session, guarded_edge.url)
    assert reply.status == 403 and "port" in reply.problem()["detail"]
    assert samples['atlas_edge_tunnels_refused_total{reason="blocked_address"}'] >= 1


async def test_id_in_use_409_unreachable_502_and_an_unreached_target_is_not_charged(
    ledger: Running, strict_edge: Running, echo: Running
) -> None:
    with socket.socket() as probe:  # a port with nothing listening
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, strict_edge.url)
        channel = await open_channel(session, ledger.url, strict_edge.url)
        tunnel_id = new_id()
        one_unit = voucher_header(channel, price)
        unreachable = await connect(tunnel_url, f"127.0.0.1:{closed_port}", tunnel_id, one_unit)
        assert unreachable.status == 502 and unreachable.code() == "target_unreachable"
        # Same voucher, same id: neither was used up by the refusal.
        async with opened(tunnel_url, target_of(echo.url), tunnel_id, one_unit):
            again = await connect(tunnel_url, target_of(echo.url), tunnel_id, one_unit)
    assert again.status == 409 and again.code() == "tunnel_in_use"


async def test_over_the_per_client_cap_gets_503_until_a_tunnel_closes(
    ledger: Running, strict_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, strict_edge.url)
        channel = await open_channel(session, ledger.url, strict_edge.url)
        first, second = new_id(), new_id()
        async with opened(tunnel_url, target, first, voucher_header(channel, price)):
            async with opened(tunnel_url, target, second, voucher_header(channel, price)):
                full = await connect(tunnel_url, target, new_id(), voucher_header(channel, price))
                assert full.status == 503 and full.code() == "too_many_tunnels"
                assert full.headers["retry-after"] == "1"
            await wait_status(session, strict_edge.url, second, "open", False)
            async with opened(tunnel_url, target, new_id(), voucher_header(channel, price)):
                pass


async def test_unpaid_and_idle_tunnels_are_closed_by_the_edge(
    ledger: Running, strict_edge: Running, echo: Running
) -> None:
    target = target_of(echo.url)
    async with aiohttp.ClientSession() as session:
        tunnel_url, price = await tunnel_info(session, strict_edge.url)
        channel = await open_channel(session, ledger.url, strict_edge.url)
        unpaid, idle = new_id(), new_id()
        async with (
            opened(tunnel_url, target, unpaid, voucher_header(channel, price)) as hungry,
            opened(tunnel_url, target, idle, voucher_header(channel, price)),
        ):
            hungry.writer.write(secrets.token_bytes(100_000))  # more than the unit paid
            paused = await wait_status(session, strict_edge.url, unpaid, "paused", True)
            closed = await wait_status(session, strict_edge.url, unpaid, "open", False, 3)
            idled = await wait_status(session, strict_edge.url, idle, "open", False, 4)
            async with asyncio.timeout(3):
                while await hungry.reader.read(1 << 16):
                    pass  # the echo of what was paid, then EOF
    assert paused["relayed"] == paused["paid_bytes"] == 64 * 1024
    assert closed["reason"] == "unpaid" and closed["relayed"] == 64 * 1024
    assert idled["reason"] == "idle" and idled["relayed"] == 0
