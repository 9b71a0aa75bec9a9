"""A requester that cannot pay downloads through free lanes and never opens a channel.

Against edges without a market (capacity 0: a free allowance, then 402), an empty
wallet used to stop with "wallet balance is 0 BTT; opening a channel needs 10 BTT"
from inside the payment; now it is dropped as a provider that wants payment, with the
wallet's reason, before any call to the ledger, and the fetch says so. Where the edge
serves free (here a large free allowance stands in for a market edge's free lane), the
same wallet, or ``--max-price 0``, completes with every chunk on the free lane. The
``--json`` summary says per provider which lane served it and at what price.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from requester.protocol import BTT_LOCAL
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import Home, make_home, summary
from tests.sdk.test_fetch_cli import channel_rows, ledger_channels

CHUNK = 256 * 1024
PRICE = BTT_LOCAL.one // 1000
"""An edge's default price, 0.001 BTT per MiB, in base units."""


@pytest.fixture(scope="module")
def free_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    """An edge that serves every requester 64 MiB free per window: a free lane."""
    edge = start_edge(tmp_path_factory.mktemp("free-edge"), ledger.url, "--free-mib", "64")
    yield edge
    edge.stop()


def test_an_empty_wallet_is_told_the_provider_wants_payment_and_opens_nothing(
    edges: list[Running], ledger: Running, origin: Running, tmp_path: Path
) -> None:
    poor = make_home(tmp_path / "poor", [edges[0].url], ledger.url, funds=0)
    out = tmp_path / "poor.bin"
    broke = poor.atlas("fetch", f"{origin.url}/bytes/{4 * CHUNK}?t=free-poor", "-o", str(out))
    assert broke.returncode != 0
    assert "want payment, and this wallet cannot pay" in broke.stderr, broke.stderr
    assert "wants payment" in broke.stderr and "wallet balance is 0 BTT" in broke.stderr
    assert channel_rows(poor) == []
    assert asyncio.run(ledger_channels(ledger.url, poor)) == []


def test_max_price_0_pays_nobody_even_with_money(
    edges: list[Running], ledger: Running, origin: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "rich", [edges[0].url], ledger.url)
    result = home.atlas("fetch", f"{origin.url}/bytes/{2 * CHUNK}?t=free-zero", "-o",
                        str(tmp_path / "z.bin"), "--max-price", "0")  # fmt: skip
    assert result.returncode != 0
    assert "--max-price 0" in result.stderr and "wants payment" in result.stderr, result.stderr
    assert channel_rows(home) == []


def test_free_lanes_complete_a_download_for_an_empty_wallet(
    free_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    size = 12 * CHUNK + 7
    for funds, extra in ((0, ()), (50 * BTT_LOCAL.one, ("--max-price", "0"))):
        home = make_home(tmp_path / f"h{funds}", [free_edge.url], ledger.url, funds=funds)
        out = tmp_path / f"free{funds}.bin"
        doc = summary(home.atlas("fetch", f"{origin.url}/bytes/{size}?t=free-lane", "-o",
                                 str(out), "--json", *extra))  # fmt: skip
        assert out.read_bytes() == pattern(0, size)
        [(url, provider)] = doc["providers"].items()
        assert url == free_edge.url and provider["lane"] == "free"
        assert provider["free_bytes"] == provider["bytes"] > 0 and provider["paid_bytes"] == 0
        assert provider["price_per_mib_paid"] is None and provider["paid"] == "0"
        assert provider["rate"] > 0 and doc["paid"] == "0"
        assert channel_rows(home) == []


def test_the_summary_names_each_providers_lane_and_price(
    home: Home, origin: Running, tmp_path: Path
) -> None:
    result = home.atlas("fetch", f"{origin.url}/bytes/{12 * CHUNK}?t=lanes", "-o",
                        str(tmp_path / "l.bin"), "--json")  # fmt: skip
    doc = summary(result)
    served = {u: p for u, p in doc["providers"].items() if p["chunks"]}
    assert served
    for provider in served.values():
        assert provider["lane"] == "paid" and provider["free_bytes"] == 0
        # each chunk's price is rounded up to a base unit: at most one unit per chunk over
        price = int(provider["price_per_mib_paid"])
        assert PRICE <= price <= PRICE + provider["chunks"] * (1 << 20) // provider["bytes"] + 1
    text = home.atlas("fetch", f"{origin.url}/bytes/{3 * CHUNK}?t=lanes-text", "-o",
                      str(tmp_path / "t.bin"))  # fmt: skip
    assert text.returncode == 0, text.stderr
    # the per-provider lanes and prices are --json's; the closing line says what it paid
    assert ", paid 0.00" in text.stderr and " provider" in text.stderr, text.stderr


def test_json_is_parseable_with_no_providers_field_missing(
    free_edge: Running, ledger: Running, origin: Running, tmp_path: Path
) -> None:
    home = make_home(tmp_path / "keys", [free_edge.url], ledger.url, funds=0)
    doc = json.loads(home.atlas("fetch", f"{origin.url}/bytes/{CHUNK}?t=keys", "-o",
                                str(tmp_path / "k.bin"), "--json").stdout)  # fmt: skip
    [provider] = doc["providers"].values()
    assert set(provider) >= {"lane", "price_per_mib_paid", "bytes", "rate", "paid", "market"}
