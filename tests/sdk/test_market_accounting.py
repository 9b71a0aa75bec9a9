"""``atlas fetch --json`` per provider against what a real market edge charged (issue 16):
``paid_bytes`` x ``price_per_mib_paid`` is what the edge recorded as served on the
wallet's channel (``atlas edge earnings``), within one chunk's price, and ``charged`` is
exactly that, when its paying requests are served by both lanes (tests/sdk/market_load.py).
``paid`` (the vouchers signed) is more: a voucher sent with a request the edge served
free stays credit there.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from loadtest.harness.network import edge_fetch, wait_sealed
from requester.chunk_client import ChunkClient
from requester.protocol import BTT_LOCAL, ContentVerifier, ManifestHead, b64url_decode
from requester.protocol.manifest import MAX_HEAD_BYTES
from tests.edge.paying import earnings
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import make_home, summary
from tests.sdk.market_load import CHUNK, contended, market_edge

MIB = 1 << 20
BTT = BTT_LOCAL.one
SIZE = 12 * MIB


def test_paid_bytes_times_the_price_paid_is_what_the_edge_charged(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    url = f"{origin.url}/bytes/{SIZE}?t=accounting"
    home = make_home(tmp_path / "home", [], ledger.url, funds=100 * BTT)
    out = tmp_path / "out.bin"
    with market_edge(tmp_path / "edge", ledger.url) as edge:
        with contended(edge.url, url, SIZE, seconds=15):
            doc = summary(home.atlas("fetch", url, "-o", str(out), "--json", "--edge", edge.url,
                                     "--max-price", "2", "--max-spend", "50"))  # fmt: skip
        report = asyncio.run(earnings(tmp_path / "edge"))
    assert out.read_bytes() == pattern(0, SIZE)
    [provider] = doc["providers"].values()
    [row] = [c for c in report["channels"] if c["payer"] == str(home.address)]
    served, price = int(row["served"]), int(provider["price_per_mib_paid"] or 0)
    assert provider["paid_bytes"] > 0 and provider["free_bytes"] > 0, provider  # both lanes
    assert provider["paid_bytes"] + provider["free_bytes"] == provider["bytes"]
    assert BTT <= price <= BTT + 1, provider  # the reserve (the only bidder), rounded up
    chunk_price = CHUNK * price // MIB
    assert abs(provider["paid_bytes"] * price // MIB - served) <= chunk_price, (provider, row)
    assert int(provider["charged"]) == served, (provider, row)  # the same sum, both sides
    # the vouchers it signed cover that, and what they add beyond it stays credit there
    assert int(provider["paid"]) >= served and int(row["paid"]) >= served


def test_a_chunk_served_free_costs_nothing_whatever_its_atlas_price_says(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    """An edge without a market serving from its free allowance answers ``Atlas-Paid-By:
    free`` with the chunk's price in ``Atlas-Price``: nothing was charged, so the SDK takes
    it as free (its price in the provider's score was that price)."""
    edge = start_edge(tmp_path / "toll", ledger.url, "--free-mib", "2")

    async def first_chunk() -> tuple[int, str, str]:
        async with aiohttp.ClientSession() as http:
            info = await edge_fetch(http, edge.url, f"{origin.url}/bytes/{MIB}?t=free-price")
            await wait_sealed(http, edge.url, info["content_id"])
            head = ManifestHead.decode(b64url_decode(info["head"], MAX_HEAD_BYTES, "head"))
            got = await ChunkClient(http, None).get(edge.url, ContentVerifier(head), 0)
            async with http.get(f"{edge.url}/v1/chunk/{info['content_id']}/1") as answer:
                return got.price, got.paid_by, answer.headers["Atlas-Price"]

    try:
        price, paid_by, header = asyncio.run(first_chunk())
    finally:
        edge.stop()
    assert paid_by == "free" and int(header) > 0  # what the edge says
    assert price == 0  # what it charged
