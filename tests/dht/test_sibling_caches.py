"""Sibling caches (issue 17): an edge asked for a URL it lacks serves a sibling's fresh,
signed copy found through the DHT, and goes to the origin only when no sibling has one.

Edges in a private DHT on 127.0.0.31-35: A fetches from the origin (which counts its
hits per path), B has sibling caches on, C runs ``--no-sibling-caches``, D gives no
free allowance, M is a market edge without one. Nothing is on a tracker or in an
``--edge`` list of another edge. Times are printed (``-s``).
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import json
import os
import secrets
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import libtorrent as lt
import pytest

from cdn_edge.content.sibling_fetch import FIND_TIMEOUT
from requester.dht_nodes import parse_nodes
from requester.discovery import Discovery
from requester.ledger_client import LedgerClient
from requester.protocol import ContentVerifier, NodeId, TronAddress, b64url_decode
from requester.protocol.dht import url_target
from tests.dht.dht_edges import PRIVATE, dht_of, edge_args, start_edges
from tests.dht.private_dht import dht_session
from tests.edge.edge_client import Fetched, fetch, get_chunk, wait_for_seal
from tests.edge.paying import FUNDS
from tests.origin_server import pattern, text
from tests.processes import Running

CHUNK = 256 * 1024
MARKET = ("--upload-capacity", "8MiB/s", "--slots", "4", "--free-slots", "1", "--reserve",
          "0.001", "--round-seconds", "1", "--free-mib", "0")  # fmt: skip
FINDER = "127.0.0.97:0"
"""The test's own read-only DHT node, on an address of its own."""


@dataclass
class Siblings:
    a: Running
    b: Running
    c: Running
    """Started with ``--no-sibling-caches``."""
    d: Running
    """No free allowance: every chunk from it is paid."""
    m: Running
    """A market edge without free allowance: its free lane serves anyone, slowly."""
    a_dir: Path


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Siblings]:
    root = tmp_path_factory.mktemp("siblings")
    a = start_edges([edge_args(31, root / "a", ledger.url, "")])[0]
    try:
        b, c, d, m = start_edges([
            edge_args(32, root / "b", ledger.url, dht_of(a)),
            edge_args(33, root / "c", ledger.url, dht_of(a), (*PRIVATE, "--no-sibling-caches")),
            edge_args(34, root / "d", ledger.url, dht_of(a), (*PRIVATE, "--free-mib", "0")),
            edge_args(35, root / "m", ledger.url, dht_of(a), (*PRIVATE, *MARKET)),
        ])  # fmt: skip
    except BaseException:
        a.stop()
        raise
    yield Siblings(a, b, c, d, m, root / "a")
    for edge in (m, d, c, b, a):
        edge.stop()


@pytest.fixture
async def finder(edges: Siblings) -> AsyncIterator[Discovery]:
    async with (
        aiohttp.ClientSession() as http,
        Discovery(parse_nodes(dht_of(edges.a)), http, allow_private=True, listen=FINDER) as dht,
    ):  # fmt: skip
        yield dht


async def hits(http: aiohttp.ClientSession, origin: Running, path: str) -> int:
    async with http.get(f"{origin.url}/hits") as r:
        return int((await r.json()).get(path, 0))


async def info(http: aiohttp.ClientSession, edge: Running) -> dict[str, object]:
    async with http.get(f"{edge.url}/v1/info") as r:
        answer: dict[str, object] = await r.json()
        return answer


async def within(seconds: float, probe: Callable[[], Awaitable[bool | None]]) -> float:
    """Seconds until ``probe()`` says True; fails past ``seconds``."""
    start = time.monotonic()
    while (took := time.monotonic() - start) < seconds:
        if await probe():
            return took
        await asyncio.sleep(0.25)
    raise AssertionError(f"not found within {seconds} s")


def address(edge: Running) -> tuple[str, int]:
    host, port = edge.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def announced(finder: Discovery, url: str, edge: Running) -> float:
    """Seconds until ``edge`` is listed under the URL's target (fails after 10 s)."""

    async def listed() -> bool | None:
        return address(edge) in await finder.peers(url_target(url), wait=2) or None

    return await within(10, listed)


async def timed_fetch(
    http: aiohttp.ClientSession, edge: Running, url: str
) -> tuple[Fetched, float]:
    start = time.monotonic()
    fetched = await fetch(http, edge.url, url)
    return fetched, time.monotonic() - start


async def chunks_from(http: aiohttp.ClientSession, edge: Running, fetched: Fetched) -> bytes:
    """Every chunk of the fetched content from ``edge`` alone, each verified, in order."""
    verifier = ContentVerifier(fetched.head)
    cid, out = fetched.info["content_id"], bytearray()
    for index in itertools.count():
        status, body, headers = await get_chunk(http, edge.url, cid, index)
        if status == 416:
            break
        assert status == 200, (index, status, body[:300])
        verifier.verify_chunk(b64url_decode(headers["Atlas-Chunk"], 400, "chunk"), body)
        out += body
    return bytes(out)


async def test_b_serves_a_siblings_copy_without_an_origin_hit(
    origin: Running, edges: Siblings, finder: Discovery, tmp_path: Path
) -> None:
    size = 600_001  # three chunks; a size no other test fetches
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=600"
    async with aiohttp.ClientSession() as http:
        assert (await info(http, edges.b))["sibling_caches"] is True
        start = time.monotonic()
        first = await fetch(http, edges.a.url, url)
        assert await chunks_from(http, edges.a, first) == pattern(0, size)
        from_origin = time.monotonic() - start
        took = await announced(finder, url, edges.a)
        start = time.monotonic()
        ask = {"url": url, "headers": {"Cache-Control": "only-if-cached"}}
        async with http.post(f"{edges.a.url}/v1/fetch", json=ask) as r:
            assert r.status == 200
        asked = time.monotonic() - start

        start = time.monotonic()
        copied = await fetch(http, edges.b.url, url)
        assert copied.info["cache"] == "SIBLING"
        assert await chunks_from(http, edges.b, copied) == pattern(0, size)
        from_sibling = time.monotonic() - start
        a_node = NodeId(bytes.fromhex(str((await info(http, edges.a))["node_id"])))
        assert copied.head.edge_id == a_node  # A's signed head, served by B
        assert copied.head.content_id == first.head.content_id

        out = tmp_path / "copy.bin"
        argv = [sys.executable, "-m", "requester.cli", "fetch", url, "--edge", edges.b.url,
                "-o", str(out), "--json"]  # fmt: skip
        env = {**os.environ, "ATLAS_HOME": str(tmp_path / "home")}
        done = await asyncio.to_thread(
            subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60, check=False
        )
        assert done.returncode == 0, done.stderr
        assert (
            hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(pattern(0, size)).digest()
        )
        assert json.loads(done.stdout)["content_id"] == first.head.content_id.hex()
        assert await hits(http, origin, path) == 1
    print(
        f"\nA's URL announce listed after {took:.2f} s; fetch from the origin (A) "
        f"{from_origin * 1000:.0f} ms, from sibling A (B) {from_sibling * 1000:.0f} ms; "
        f"A answering only-if-cached: {asked * 1000:.0f} ms"
    )


async def test_with_the_switch_off_an_edge_goes_to_the_origin_and_announces_nothing(
    origin: Running, edges: Siblings, finder: Discovery
) -> None:
    size = 300_002
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=600"
    async with aiohttp.ClientSession() as http:
        assert (await info(http, edges.c))["sibling_caches"] is False
        first = await fetch(http, edges.a.url, url)
        await wait_for_seal(http, edges.a.url, first.info["content_id"])
        await announced(finder, url, edges.a)
        fetched = await fetch(http, edges.c.url, url)
        assert fetched.info["cache"] == "MISS"
        assert await hits(http, origin, path) == 2
        await wait_for_seal(http, edges.c.url, fetched.info["content_id"])
        await asyncio.sleep(3)  # an edge announcing would have by now (one URL per 2 s)
        assert address(edges.c) not in await finder.peers(url_target(url), wait=2)


async def test_an_edge_never_pays_a_stranger_sibling_for_a_fetch_nobody_paid_for(
    origin: Running, ledger: Running, edges: Siblings, finder: Discovery
) -> None:
    """D sells every chunk (no free allowance) and is no --tracker peer of B: B, with money,
    does not buy D's first chunk for an unpaid POST /v1/fetch; it fetches the origin."""
    size = 100_008
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=600"
    async with aiohttp.ClientSession() as http:
        b_payee = TronAddress.parse(str((await info(http, edges.b))["payee"]))
        await LedgerClient(ledger.url, http).faucet(b_payee, FUNDS)
        first = await fetch(http, edges.d.url, url)
        await wait_for_seal(http, edges.d.url, first.info["content_id"])
        await announced(finder, url, edges.d)
        fetched = await fetch(http, edges.b.url, url)
        assert fetched.info["cache"] == "MISS"
        assert await hits(http, origin, path) == 2
        opened = await LedgerClient(ledger.url, http).channels(b_payee)
        assert [c for c in opened if c["payer"] == str(b_payee)] == []


async def test_a_market_siblings_copy_comes_through_its_free_lane(
    origin: Running, ledger: Running, edges: Siblings, finder: Discovery
) -> None:
    """M sells chunks and gives no free allowance, but runs a market: its free lane serves
    B the first chunk unpaid, so B takes M's copy without paying anyone."""
    size = 100_009
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=600"
    async with aiohttp.ClientSession() as http:
        first = await fetch(http, edges.m.url, url)
        await wait_for_seal(http, edges.m.url, first.info["content_id"])
        await announced(finder, url, edges.m)
        copied = await fetch(http, edges.b.url, url)
        assert copied.info["cache"] == "SIBLING"
        assert copied.head.content_id == first.head.content_id
        assert await hits(http, origin, path) == 1
        b_payee = str((await info(http, edges.b))["payee"])
        opened = await LedgerClient(ledger.url, http).channels(TronAddress.parse(b_payee))
        assert [c for c in opened if c["payer"] == b_payee] == []


async def test_a_copy_about_to_go_stale_is_not_taken(
    origin: Running, edges: Siblings, finder: Discovery
) -> None:
    """Fresh for 6 s at A: a second later it has under the 5 s margin left, so B goes to
    the origin rather than copy what it would have to revalidate at once."""
    size = 100_007
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=6"
    async with aiohttp.ClientSession() as http:
        first = await fetch(http, edges.a.url, url)
        await wait_for_seal(http, edges.a.url, first.info["content_id"])
        await announced(finder, url, edges.a)
        await asyncio.sleep(max(0.0, first.head.created_at + 1.5 - time.time()))
        fetched = await fetch(http, edges.b.url, url)
        assert fetched.info["cache"] == "MISS"
        assert await hits(http, origin, path) == 2


async def test_a_sibling_whose_copy_does_not_verify_is_refused(
    origin: Running, edges: Siblings, finder: Discovery
) -> None:
    """A's chunk file is changed on its disk: A serves wrong bytes under its statement."""
    name = f"liar-{secrets.token_hex(4)}"
    path, url = f"/cached/{name}", f"{origin.url}/cached/{name}"
    body = text(5000) + name.encode()
    async with aiohttp.ClientSession() as http:
        first = await fetch(http, edges.a.url, url)
        await wait_for_seal(http, edges.a.url, first.info["content_id"])
        await announced(finder, url, edges.a)
        digest = hashlib.sha256(body).hexdigest()
        stored = edges.a_dir / "chunks" / digest[:2] / digest
        stored.write_bytes(body.replace(b"Atlas", b"Atlaz"))

        fetched = await fetch(http, edges.b.url, url)
        assert fetched.info["cache"] == "MISS"
        b_node = NodeId(bytes.fromhex(str((await info(http, edges.b))["node_id"])))
        assert fetched.head.edge_id == b_node  # B's own fetch, not A's copy
        assert await hits(http, origin, path) == 2
        await wait_for_seal(http, edges.b.url, fetched.info["content_id"])
        fetched = await fetch(http, edges.b.url, url)
        assert await chunks_from(http, edges.b, fetched) == body


async def test_a_copy_whose_later_chunk_fails_is_dropped_for_the_origin(
    origin: Running, edges: Siblings, finder: Discovery
) -> None:
    """A's copy has a good first chunk and a bad second one (its file changed on A's disk):
    B serves the copy, fails it at the second chunk, and fetches the origin next time."""
    size = CHUNK + 1009  # the second chunk's bytes are this content's alone
    path, url = f"/bytes/{size}", f"{origin.url}/bytes/{size}?max-age=600"
    async with aiohttp.ClientSession() as http:
        first = await fetch(http, edges.a.url, url)
        await wait_for_seal(http, edges.a.url, first.info["content_id"])
        await announced(finder, url, edges.a)
        digest = hashlib.sha256(pattern(CHUNK, 1009)).hexdigest()
        (edges.a_dir / "chunks" / digest[:2] / digest).write_bytes(bytes(1009))

        copied = await fetch(http, edges.b.url, url)
        assert copied.info["cache"] == "SIBLING"
        cid = copied.info["content_id"]
        status, body, _ = await get_chunk(http, edges.b.url, cid, 1)
        assert status == 503, body[:300]
        status, body, headers = await get_chunk(http, edges.b.url, cid, 0)
        assert (status, headers.get("Atlas-Content-State")) == (502, "failed"), body[:300]

        fetched = await fetch(http, edges.b.url, url)
        assert fetched.info["cache"] == "MISS"
        assert await hits(http, origin, path) == 2
        assert await chunks_from(http, edges.b, fetched) == pattern(0, size)


async def test_only_if_cached_gets_a_fresh_copy_or_504_never_the_origin(
    origin: Running, edges: Siblings
) -> None:
    """How siblings ask (RFC 9111 only-if-cached): nothing held, nothing fetched."""
    path = "/bytes/100005"
    url = f"{origin.url}{path}?max-age=600"
    ask = {"url": url, "headers": {"Cache-Control": "only-if-cached"}}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{edges.b.url}/v1/fetch", json=ask) as r:
            assert r.status == 504
            assert r.content_type == "application/problem+json"
            assert (await r.json())["type"] == "https://atlas.invalid/problems/not_cached"
        assert await hits(http, origin, path) == 0
        held = await fetch(http, edges.b.url, url)
        await wait_for_seal(http, edges.b.url, held.info["content_id"])
        async with http.post(f"{edges.b.url}/v1/fetch", json=ask) as r:
            assert r.status == 200
            assert (await r.json())["cache"] == "HIT"
        assert await hits(http, origin, path) == 1


async def test_a_miss_costs_at_most_the_lookup_timeout(
    origin: Running, edges: Siblings, finder: Discovery
) -> None:
    """A URL nobody announces, then one announced by a sibling that never answers."""
    async with aiohttp.ClientSession() as http:
        nobody = f"{origin.url}/bytes/100003?max-age=600"
        fetched, alone = await timed_fetch(http, edges.b, nobody)
        assert fetched.info["cache"] == "MISS"
        assert alone < FIND_TIMEOUT
        _, direct = await timed_fetch(http, edges.c, f"{origin.url}/bytes/100006?max-age=600")
        start = time.monotonic()
        assert await finder.peers(url_target(f"{nobody}&never={secrets.token_hex(4)}")) == []
        lookup = time.monotonic() - start
        mute = await asyncio.start_server(lambda _r, _w: asyncio.sleep(60), "127.0.0.1", 0)
        async with mute:
            port = mute.sockets[0].getsockname()[1]
            silent = f"{origin.url}/bytes/100004?max-age=600"
            node = dht_session()
            node.add_dht_node(parse_nodes(dht_of(edges.a))[0])
            target = url_target(silent)

            async def listed() -> bool | None:
                node.dht_announce(lt.sha1_hash(target), port, 0)
                return ("127.0.0.1", port) in await finder.peers(target, wait=2) or None

            await within(10, listed)
            fetched, waited = await timed_fetch(http, edges.b, silent)
            node.pause()
        assert fetched.info["cache"] == "MISS"
        assert waited < FIND_TIMEOUT + 2  # the lookup's bound, and the origin fetch after it
        assert await hits(http, origin, "/bytes/100004") == 1
    print(
        f"\na miss nobody announced: {alone * 1000:.0f} ms (C, without sibling caches: "
        f"{direct * 1000:.0f} ms; a lookup finding no one: {lookup * 1000:.0f} ms); one whose "
        "sibling never "
        f"answers: {waited * 1000:.0f} ms (bound {FIND_TIMEOUT:.0f} s)"
    )
