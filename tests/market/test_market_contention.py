"""Seeding and tunnels draw from a market edge's one capacity, on real processes (issue 16:
"Tunnels (CONNECT) and torrent seeding draw from the same capacity; seeding counts as free
traffic").

One edge of 2 MiB/s, 4 slots (1 free), 1 s rounds, and two free HTTP requesters on
loopback addresses of their own (loadtest/market/driver.py, 4 chunk requests in flight
each) beside (a) a real libtorrent leecher downloading a torrent the edge seeds, or (b) a
CONNECT tunnel through the edge to an echo server. Rates are measured over a window after
a warm-up; the bounds are the capacity's, with a chunk or two of slack, not timings.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import libtorrent as lt
import pytest

from loadtest.market.driver import Requester, drive
from tests.edge.edge_client import metrics, wait_for_seal
from tests.edge.tunnel_client import new_id, opened, target_of, tunnel_info
from tests.processes import Running, start_edge, start_program
from tests.torrent.conftest import start_seeder, torrent

MIB = 1 << 20
CHUNK = 256 << 10
CAPACITY = 2 * MIB
MARKET = ["--upload-capacity", "2MiB/s", "--slots", "4", "--free-slots", "1",
          "--round-seconds", "1", "--free-mib", "0"]  # fmt: skip
SECONDS, SETTLE = 9.0, 2.0
"""Each run; the window is its last ``SECONDS - SETTLE`` seconds."""
TORRENT_SIZE = 24 * MIB
"""More than the capacity carries in the window: an unlimited seeder would show."""


@pytest.fixture(scope="module")
def echo() -> Iterator[Running]:
    """A TCP echo server (tests/edge/echo_server.py), the tunnel's target."""
    server = Path(__file__).parents[1] / "edge" / "echo_server.py"
    running = start_program([sys.executable, str(server)])
    yield running
    running.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def seeding_edge(tmp_path: Path, ledger: Running) -> Iterator[tuple[Running, int, Any]]:
    """The edge (seeding what it fetches, libtorrent on a known port), its torrent port,
    and the seeder's record of a 24 MiB torrent the edge then holds."""
    seeder = start_seeder(tmp_path / "seeder", "--make", f"single:v1:{TORRENT_SIZE}")
    port = free_port()
    try:
        edge = start_edge(tmp_path / "edge", ledger.url, *MARKET, "--torrent-seed",
                          "--torrent-listen", f"127.0.0.1:{port}")  # fmt: skip
    except BaseException:
        seeder.stop()
        raise
    try:
        yield edge, port, torrent(seeder, "single")
    finally:
        edge.stop()
        seeder.stop()


def leecher(directory: Path, record: dict[str, Any], port: int) -> tuple[lt.session, Any]:
    """A libtorrent session on 127.0.0.1 (no DHT, LSD, UPnP or NAT-PMP) downloading the
    torrent from the edge alone."""
    ses = lt.session({
        "listen_interfaces": "127.0.0.1:0", "enable_dht": False, "enable_lsd": False,
        "enable_upnp": False, "enable_natpmp": False, "dht_bootstrap_nodes": "",
        "enable_outgoing_utp": False, "alert_mask": 0,
    })  # fmt: skip
    params = lt.add_torrent_params()
    params.ti = lt.torrent_info(record["torrent_file"])
    params.save_path = str(directory)
    handle = ses.add_torrent(params)
    handle.connect_peer(("127.0.0.1", port))
    return ses, handle


async def window_of(count: Any) -> int:
    """What ``count()`` grew by over the window (read at ``SETTLE`` and ``SECONDS``)."""
    start = time.monotonic()
    await asyncio.sleep(SETTLE)
    first = count()
    await asyncio.sleep(SECONDS - (time.monotonic() - start))
    return int(count()) - int(first)


async def test_seeding_and_two_free_requesters_share_the_capacity_and_seeding_is_free(
    seeding_edge: tuple[Running, int, Any], tmp_path: Path
) -> None:
    edge, port, record = seeding_edge
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{edge.url}/v1/fetch", json={
            "url": record["magnet"], "file": record["files"][0]["path"]}) as r:  # fmt: skip
            info = await r.json()
            assert r.status == 200, info
        cid = info["content_id"]
        await wait_for_seal(session, edge.url, cid)
        before = await metrics(session, edge.url)
        ses, handle = leecher(tmp_path / "leecher", record, port)
        free = [Requester("127.0.3.1"), Requester("127.0.3.2")]
        chunks = TORRENT_SIZE // CHUNK
        try:
            seeded, _ = await asyncio.gather(
                window_of(lambda: handle.status().total_payload_download),
                drive(edge.url, "", cid, chunks, free, seconds=SECONDS, settle=SETTLE),
            )
        finally:
            ses.remove_torrent(handle)
        after = await metrics(session, edge.url)
    span = SECONDS - SETTLE
    http = sum(sum(r.window.values()) for r in free)
    print(f"seeded {seeded / span / 1024:.0f} KiB/s, http {http / span / 1024:.0f} KiB/s")
    assert seeded > 0 and all(r.window["free"] > 0 for r in free), (seeded, free)
    assert all(set(r.statuses) == {200} for r in free), [r.statuses for r in free]
    assert seeded + http <= CAPACITY * span + 2 * CHUNK, (seeded, http)
    lane = 'atlas_edge_lane_bytes_total{lane="%s"}'
    assert after.get(lane % "paid", 0) == before.get(lane % "paid", 0) == 0
    # Seeding is counted as free traffic: the free lane counted more than HTTP sent.
    assert after[lane % "free"] - before[lane % "free"] >= http + seeded - 2 * CHUNK


async def test_a_tunnel_gets_no_more_than_its_free_lane_share_beside_two_requesters(
    tmp_path: Path, ledger: Running, origin: Running, echo: Running
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, *MARKET[:-2], "--free-mib", "1024")
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(
                f"{edge.url}/v1/fetch", json={"url": f"{origin.url}/bytes/{16 * CHUNK}"}
            ) as r:
                cid = (await r.json())["content_id"]
            await wait_for_seal(session, edge.url, cid)
            tunnel_url, _ = await tunnel_info(session, edge.url)
            free = [Requester("127.0.3.3"), Requester("127.0.3.4")]
            async with opened(tunnel_url, target_of(echo.url), new_id()) as tunnel:
                moved = [0]
                pump = asyncio.create_task(echo_forever(tunnel, moved))
                try:
                    tunneled, _ = await asyncio.gather(
                        window_of(lambda: moved[0]),
                        drive(edge.url, "", cid, 16, free, seconds=SECONDS, settle=SETTLE),
                    )
                finally:
                    pump.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await pump
    finally:
        edge.stop()
    span = SECONDS - SETTLE
    http = [sum(r.window.values()) / span for r in free]
    print(f"tunnel {tunneled / span / 1024:.0f} KiB/s, http {[f'{h / 1024:.0f}' for h in http]}")
    assert 0 < tunneled / span <= 0.6 * CAPACITY
    floor = CAPACITY / 4 / 3  # free_slots / slots x capacity / 3 active addresses
    assert all(h >= floor for h in http), http
    assert tunneled + sum(http) * span <= CAPACITY * span + 2 * CHUNK


async def echo_forever(tunnel: Any, moved: list[int]) -> None:
    """Keep 256 KiB going through the tunnel and back; ``moved[0]``: bytes both ways."""
    block = b"x" * (64 << 10)

    async def send() -> None:
        while True:
            tunnel.writer.write(block)
            await tunnel.writer.drain()

    async def receive() -> None:
        while True:
            piece = await tunnel.reader.read(1 << 16)
            if not piece:
                return
            moved[0] += 2 * len(piece)  # it went up, then came back down

    async with asyncio.TaskGroup() as tasks:
        tasks.create_task(send())
        tasks.create_task(receive())
