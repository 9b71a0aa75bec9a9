"""Credit a process leaves with an edge (paid ahead, not charged: a last chunk shorter than
the full size it was paid at) is kept in the wallet and spent by the next ``atlas fetch``,
rather than stranded at the edge while every fetch pays again."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.edge.paying import earnings
from tests.origin_server import pattern
from tests.processes import Running, start_edge, start_proxy
from tests.proxy.conftest import bearer, curl
from tests.proxy.test_mobile_api import fetch_url
from tests.sdk.conftest import PASSPHRASE, Home, make_home, summary

CHUNK = 256 * 1024


def _edge_credit(edge_dir: Path, home: Home) -> int:
    """What the edge holds as paid and not served on the wallet's channel."""
    [row] = [c for c in asyncio.run(earnings(edge_dir))["channels"]
             if c["payer"] == str(home.address)]  # fmt: skip
    return int(row["paid"]) - int(row["served"])


def _wallet_credit(home: Home) -> int:
    [channel] = summary(home.atlas("channel", "list", "--json"))
    return int(channel["credit_units"])


def test_the_next_fetch_spends_the_credit_the_last_one_left(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    size = 12 * CHUNK + 1000  # the last chunk is paid ahead at full size, charged at 1000 B
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        home = make_home(tmp_path / "home", [edge.url], ledger.url)
        signed, charged, left = [], [], []
        for n in range(3):
            url = f"{origin.url}/bytes/{size}?t=credit-{n}"
            out = tmp_path / f"{n}.bin"
            doc = summary(home.atlas("fetch", url, "-o", str(out), "--json"))
            assert out.read_bytes() == pattern(0, size)
            [provider] = doc["providers"].values()
            signed.append(int(provider["paid"]))
            charged.append(int(provider["charged"]))
            left.append(_edge_credit(tmp_path / "edge", home))
            assert _wallet_credit(home) == left[-1] > 0  # the wallet knows what is there
    finally:
        edge.stop()
    assert signed[0] > charged[0]  # the first fetch left credit...
    assert left[0] == left[1] == left[2]  # ...which does not pile up at the edge:
    assert signed[1] == charged[1] and signed[2] == charged[2]  # the next fetches spent it


def test_the_proxy_leaves_its_credit_to_the_wallet_when_it_stops(
    ledger: Running, origin: Running, tmp_path: Path
) -> None:
    edge = start_edge(tmp_path / "edge", ledger.url, "--free-mib", "0")
    try:
        home = make_home(tmp_path / "home", [edge.url], ledger.url)
        proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
        try:
            for n in range(2):
                size = 6 * CHUNK + 1000 + n
                url = f"{origin.url}/bytes/{size}?t=proxy-credit-{n}"
                got = curl(*bearer(home), fetch_url(proxy, url))
                assert got.stdout == pattern(0, size), got.stdout[:300]
        finally:
            assert proxy.stop() == 0
        left = _edge_credit(tmp_path / "edge", home)
        assert _wallet_credit(home) == left > 0  # the proxy's credit, handed back as it stopped
        out = tmp_path / "after.bin"
        summary(home.atlas("fetch", f"{origin.url}/bytes/{size}?t=after", "-o", str(out), "--json"))
        assert _edge_credit(tmp_path / "edge", home) == _wallet_credit(home) <= left  # spent
    finally:
        edge.stop()
