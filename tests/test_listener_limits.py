"""Slow clients and connection floods against every listener (issue 13, defect 10).

Each listener (an edge, the ledger, the proxy's mitmproxy port and its mobile API) runs
as a real process with a 2 s header timeout and a cap of 100 connections per address.
150 clients on 127.0.0.1 each send a request head a byte at a time: 100 are admitted and
closed by the server once the header timeout passes, the 50 over the cap are closed at
once, and a normal request from another address (127.0.0.2) is answered during the
attack. Afterwards 127.0.0.1 is served again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from functools import partial

import aiohttp
import pytest
from yarl import URL

from requester.listener_limits import AddressCounter, address_key
from tests.processes import Running, start_edge_env, start_ledger, start_proxy
from tests.raw_http import exchange, problem_of

HEADER_TIMEOUT = 2.0
CAP = 100
ATTACKERS = 150
LIMITS_ENV = {
    "ATLAS_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
    "ATLAS_MAX_CONNECTIONS_PER_ADDRESS": str(CAP),
}
TRICKLE = 0.25
"""Seconds between two bytes of a slow client's request head."""
GIVE_UP = HEADER_TIMEOUT + 6.0
"""A slow client still open after this was never closed by the server."""
REFUSED_WITHIN = 1.0
OTHER_ADDRESS = "127.0.0.2"


@dataclass(frozen=True)
class Listener:
    attack: str
    """URL of the port under attack."""
    normal: Callable[[str], Awaitable[int]]
    """A normal request from a source address, and the status it gets."""
    expect: int = 200


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_ledger(tmp_path_factory.mktemp("ledger"), env=LIMITS_ENV)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """An edge with a ledger of its own: its connections do not count at the one attacked."""
    its_ledger = start_ledger(tmp_path_factory.mktemp("edge-ledger"))
    try:
        running = start_edge_env(tmp_path_factory.mktemp("edge"), its_ledger.url, LIMITS_ENV)
        yield running
        running.stop()
    finally:
        its_ledger.stop()


@pytest.fixture(scope="module")
def proxy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A proxy with no wallet; its edge is a closed port (its own pages need none)."""
    home = tmp_path_factory.mktemp("proxy-home")
    running = start_proxy(home, "--edge", "http://127.0.0.1:9", env=LIMITS_ENV)
    yield running
    running.stop()


async def _slow_client(url: str) -> float | None:
    """Trickle a request head; seconds from connecting until the server closed, or None."""
    target = URL(url)
    assert target.host is not None and target.port is not None
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(target.host, target.port)
    start = loop.time()
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        while loop.time() - start < GIVE_UP:
            try:
                data = await asyncio.wait_for(reader.read(4096), TRICKLE)
            except TimeoutError:
                writer.write(b"x")
                await writer.drain()
                continue
            assert not data.startswith(b"HTTP/1.1 200"), data[:200]
            if not data:
                return loop.time() - start
        return None
    except (ConnectionResetError, BrokenPipeError):
        return loop.time() - start
    finally:
        writer.close()


async def _attack(url: str) -> list[float | None]:
    """Open the slow clients in small batches (no accept queue overflow), then wait."""
    clients: list[asyncio.Task[float | None]] = []
    async with asyncio.TaskGroup() as group:
        for i in range(ATTACKERS):
            clients.append(group.create_task(_slow_client(url)))
            if i % 25 == 24:
                await asyncio.sleep(0.02)
    return [c.result() for c in clients]


async def _get(url: str, proxy: str | None, source: str) -> int:
    """GET ``url`` (through ``proxy``) from the address ``source``."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), force_close=True)
    timeout = aiohttp.ClientTimeout(total=5)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        session.get(url, proxy=proxy) as resp,
    ):
        await resp.read()
        return resp.status


async def _connect(tunnel: str, source: str) -> int:
    """A CONNECT without a tunnel id: the tunnel port answers 400 at once."""
    target = URL(tunnel)
    assert target.host is not None and target.port is not None
    reader, writer = await asyncio.open_connection(target.host, target.port,
                                                   local_addr=(source, 0))  # fmt: skip
    try:
        writer.write(b"CONNECT 127.0.0.1:9 HTTP/1.1\r\nHost: 127.0.0.1:9\r\n\r\n")
        async with asyncio.timeout(5):
            return int((await reader.readline()).split()[1])
    finally:
        writer.close()


async def _listener(name: str, request: pytest.FixtureRequest) -> Listener:
    """The listener called ``name``; only the processes it needs are started."""
    if name == "proxy-port":
        proxy: Running = request.getfixturevalue("proxy")
        return Listener(proxy.url, partial(_get, "http://atlas.proxy/healthz", proxy.url))
    if name == "mobile-api":
        api = str(request.getfixturevalue("proxy").ready["api"])
        return Listener(api, partial(_get, f"{api}/healthz", None))
    if name == "edge-tunnel":
        edge: Running = request.getfixturevalue("edge")
        async with aiohttp.ClientSession() as session, session.get(f"{edge.url}/v1/info") as resp:
            tunnel = str((await resp.json())["tunnel"])
        return Listener(tunnel, partial(_connect, tunnel), expect=400)
    server: Running = request.getfixturevalue(name)
    return Listener(server.url, partial(_get, f"{server.url}/healthz", None))


@pytest.mark.parametrize("name", ["edge", "edge-tunnel", "ledger", "mobile-api", "proxy-port"])
async def test_slow_clients_are_closed_and_capped_while_others_are_served(
    name: str, request: pytest.FixtureRequest, capfd: pytest.CaptureFixture[str]
) -> None:
    listener = await _listener(name, request)
    attack = asyncio.create_task(_attack(listener.attack))
    await asyncio.sleep(HEADER_TIMEOUT / 2)  # every slow client is connected by now
    during = await listener.normal(OTHER_ADDRESS)
    closed = await attack
    after = await listener.normal("127.0.0.1")

    assert during == listener.expect and after == listener.expect
    assert None not in closed, f"{closed.count(None)} slow clients were never closed"
    seconds = [c for c in closed if c is not None]
    refused = [s for s in seconds if s < REFUSED_WITHIN]
    # The tunnel port drains a refused client for 2 s (LINGER) before it closes.
    timed_out = [s for s in seconds if HEADER_TIMEOUT - 0.5 <= s <= HEADER_TIMEOUT + 4.5]
    assert len(refused) == ATTACKERS - CAP, sorted(seconds)
    assert len(timed_out) == CAP, sorted(seconds)
    assert "Traceback" not in capfd.readouterr().err


def test_an_address_is_an_ipv4_address_or_an_ipv6_64() -> None:
    assert address_key("127.0.0.1") == "127.0.0.1"
    assert address_key("::ffff:10.1.2.3") == "10.1.2.3"
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff::9")
    assert address_key("2001:db8:1:2::1") == "2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("/run/atlas.sock") == "/run/atlas.sock"


def test_the_counter_admits_up_to_the_cap_per_address_and_forgets_closed_ones() -> None:
    counter = AddressCounter(2)
    keys = [counter.admit("2001:db8::1"), counter.admit("2001:db8::2")]
    assert None not in keys
    assert counter.admit("2001:db8::3") is None  # same /64
    assert counter.admit("2001:db9::1") is not None  # another /64
    counter.release(keys[0] or "")
    assert counter.admit("2001:db8::4") is not None
    for key in ("2001:db8::/64", "2001:db8::/64", "2001:db9::/64"):
        counter.release(key)
    assert counter.open_from("2001:db8::1") == 0 and counter.open_from("2001:db9::1") == 0


async def test_the_proxy_port_refuses_a_request_head_over_64_kib(proxy: Running) -> None:
    """mitmproxy buffers a head of any size (300 MiB in 2.4 s); the proxy port stops at 64 KiB."""
    head = b"GET http://atlas.proxy/healthz HTTP/1.1\r\nHost: atlas.proxy\r\nX-Big: "
    reply = await exchange(proxy.url, head + b"a" * 70_000 + b"\r\nConnection: close\r\n\r\n")
    status, document = problem_of(reply)
    assert (status, document["type"].rsplit("/", 1)[-1]) == (431, "request_head_too_large")

    target = URL(proxy.url)
    assert target.host is not None and target.port is not None
    _, writer = await asyncio.open_connection(target.host, target.port)
    sent = 0
    try:
        writer.write(head)
        while sent < 64 << 20:
            writer.write(b"a" * (1 << 20))
            await asyncio.wait_for(writer.drain(), 10)
            sent += 1 << 20
    except (ConnectionResetError, BrokenPipeError):
        pass
    finally:
        writer.close()
    assert sent < 64 << 20, "the proxy read a 64 MiB request head"


async def _answer(reader: asyncio.StreamReader) -> bytes:
    """One response's status line, its body read and dropped."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))  # fmt: skip
    await reader.readexactly(length)
    return head.split(b"\r\n")[0]


@pytest.mark.parametrize("name", ["ledger", "proxy-port"])
async def test_a_kept_alive_connection_may_idle_but_its_next_head_is_timed(
    name: str, request: pytest.FixtureRequest
) -> None:
    """An aiohttp port and the mitmproxy port: idling past the header timeout between
    requests is fine; trickling the next head is not."""
    server: Running = request.getfixturevalue("proxy" if name == "proxy-port" else name)
    target = URL(server.url)
    assert target.host is not None and target.port is not None
    via_proxy = b"GET http://atlas.proxy/healthz HTTP/1.1\r\nHost: atlas.proxy\r\n\r\n"
    direct = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    get = via_proxy if name == "proxy-port" else direct
    loop = asyncio.get_running_loop()
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        writer.write(get)
        assert await _answer(reader) == b"HTTP/1.1 200 OK"
        await asyncio.sleep(HEADER_TIMEOUT + 1)
        writer.write(get)
        assert await _answer(reader) == b"HTTP/1.1 200 OK"
        writer.write(get.removesuffix(b"\r\n") + b"X-Slow: ")  # a header value, then...
        started, closed_after = loop.time(), None
        while closed_after is None and loop.time() - started < GIVE_UP:
            try:
                data = await asyncio.wait_for(reader.read(100), TRICKLE)
            except TimeoutError:
                writer.write(b"x")  # a byte at a time: not idle, never a whole head
                continue
            if not data:
                closed_after = loop.time() - started
        assert closed_after is not None, "a trickled second head kept the connection"
        assert closed_after <= HEADER_TIMEOUT + 3.0
    finally:
        writer.close()
