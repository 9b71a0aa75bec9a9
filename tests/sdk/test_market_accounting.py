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

from requester.protocol import BTT_LOCAL
from tests.edge.paying import earnings
from tests.origin_server import pattern
from tests.processes import Running
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
