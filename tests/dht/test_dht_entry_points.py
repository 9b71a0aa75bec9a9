"""The DHT beyond the edge list (issue 17): what fetched content announces, the origin
edge found from a head's node id, providers the DHT names joining a download, and
``atlas proxy --bootstrap`` with no edge configured.

Three edges on 127.0.0.41-43 with a private DHT: B (.42) is the DHT's bootstrap node
and the tracker of A (.41, a market edge: free lane 1 MiB/s) and C (.43), so what A and
C hold is on B's tracker only; neither A's nor C's tracker lists the other. A requester
told only A, or only B's DHT address, can learn of C through the DHT alone.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

from requester.dht_nodes import parse_nodes
from requester.discovery import Discovery
from requester.protocol import NodeId
from tests.dht.dht_edges import PRIVATE, dht_of, edge_args, start_edges
from tests.dht.test_edge_discovery import REQUESTER, within
from tests.edge.edge_client import fetch, get_chunk
from tests.origin_server import pattern
from tests.processes import Running, start_proxy

CHUNK = 256 * 1024
SLOW = ("--upload-capacity", "2MiB/s", "--slots", "4", "--free-slots", "2")
"""A's market: a free lane of 1 MiB/s, so a download from A alone lasts long enough for
the DHT's providers to join it (on loopback an unlimited edge is done in milliseconds)."""


@dataclass
class Trio:
    a: Running
    b: Running
    c: Running

    @property
    def bootstrap(self) -> str:
        return dht_of(self.b)


@pytest.fixture(scope="module")
def trio(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Trio]:
    root = tmp_path_factory.mktemp("dht-trio")
    (b,) = start_edges([edge_args(42, root / "b", ledger.url, "")])
    tracked = (*PRIVATE, "--tracker", b.url)
    try:
        a, c = start_edges([
            edge_args(41, root / "a", ledger.url, dht_of(b), (*tracked, *SLOW)),
            edge_args(43, root / "c", ledger.url, dht_of(b), tracked),
        ])  # fmt: skip
    except BaseException:
        b.stop()
        raise
    yield Trio(a, b, c)
    for edge in (a, b, c):
        edge.stop()


@pytest.fixture
async def finder(trio: Trio) -> AsyncIterator[Discovery]:
    async with (
        aiohttp.ClientSession() as http,
        Discovery(parse_nodes(trio.bootstrap), http, allow_private=True,
                  listen=REQUESTER) as found,
    ):  # fmt: skip
        yield found


async def test_an_edge_announces_content_it_fetched_before_serving_a_chunk(
    origin: Running, trio: Trio, finder: Discovery
) -> None:
    """POST /v1/fetch alone (no chunk asked for) makes the edge a provider in the DHT."""
    async with aiohttp.ClientSession() as http:
        fetched = await fetch(http, trio.a.url, f"{origin.url}/bytes/200000?seed=fetch-only")

    async def listed() -> list[str] | None:
        return await finder.providers(fetched.head.content_id, wait=2) or None

    urls, took = await within(10, listed)
    assert urls == [trio.a.url]
    print(f"\nan edge that only fetched is found as a provider in {took:.2f} s")


async def test_the_origin_edge_is_found_from_the_node_id_in_a_head(
    origin: Running, trio: Trio, finder: Discovery
) -> None:
    """The edge that signed a head is found from the head alone: its advert's URL."""
    async with aiohttp.ClientSession() as http:
        fetched = await fetch(http, trio.c.url, f"{origin.url}/bytes/1000?seed=origin-of")
    head = fetched.head
    assert await finder.origin(head.edge_id) == trio.c.url
    assert (await finder.providers_for(head))[0] == trio.c.url
    assert await finder.origin(NodeId(bytes(32)), wait=2) is None


async def test_atlas_fetch_adds_the_providers_the_dht_names(
    origin: Running, trio: Trio, finder: Discovery, tmp_path: Path
) -> None:
    """C replicates A's content; `atlas fetch --edge A --bootstrap B` downloads it with C
    among its providers, found through the DHT only (A's tracker does not list C)."""
    size = 4 * CHUNK
    url = f"{origin.url}/bytes/{size}?seed=dht-providers&max-age=600"  # A's cache answers
    async with aiohttp.ClientSession() as http:
        cid = (await fetch(http, trio.a.url, url)).head.content_id
        for index in range(4):  # C pulls each chunk from A, found on its tracker B
            status, _, _ = await get_chunk(http, trio.c.url, cid.hex(), index)
            assert status == 200
        async with http.get(f"{trio.a.url}/v1/providers/{cid.hex()}") as r:
            tracked = [p["url"] for p in (await r.json()).get("providers", [])]
        assert trio.c.url not in tracked  # A's tracker: only the DHT can name C

    async def both() -> list[str] | None:
        found = await finder.providers(cid, wait=2)
        return found if trio.c.url in found else None

    await within(10, both)
    out = tmp_path / "out.bin"
    argv = [sys.executable, "-m", "requester.cli", "fetch", url, "--edge", trio.a.url,
            "--bootstrap", trio.bootstrap, "-o", str(out), "--json"]  # fmt: skip
    env = {**os.environ, "ATLAS_HOME": str(tmp_path / "home")}
    done = await asyncio.to_thread(subprocess.run, argv, env=env, capture_output=True,
                                   text=True, timeout=60, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert hashlib.sha256(out.read_bytes()).digest() == hashlib.sha256(pattern(0, size)).digest()
    providers = json.loads(done.stdout)["providers"]
    assert trio.c.url in providers, done.stdout
    print(f"\nproviders: { {p: s['chunks'] for p, s in providers.items()} }")


def test_atlas_proxy_with_only_a_bootstrap_serves_through_an_edge_the_dht_lists(
    origin: Running, trio: Trio, tmp_path: Path
) -> None:
    """No --edge, no config.json, no wallet: the proxy lists the edges through the DHT
    and curl -x gets the origin's bytes through them."""
    home = tmp_path / "home"
    proxy = start_proxy(home, "--bootstrap", trio.bootstrap)
    try:
        size = 300_000
        curl = shutil.which("curl")
        assert curl, "curl is needed (Debian package curl)"
        done = subprocess.run(
            [curl, "-sS", "-x", proxy.url, "-o", str(tmp_path / "got"), "-w", "%{http_code}",
             f"{origin.url}/bytes/{size}?seed=dht-proxy"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.stdout == "200", (done.stdout, done.stderr)
        assert (tmp_path / "got").read_bytes() == pattern(0, size)
    finally:
        proxy.stop()
