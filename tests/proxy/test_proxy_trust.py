"""The proxy obeys the download trust settings (``unknown_channels``, ``unknown_deposit``
in config.json, docs/requester.md), as ``atlas fetch`` does.

Before, the proxy built its SDK client with the built-in limits whatever the config
said. Here 20 fake providers (tests/fake_providers.py) are announced for a cached
file on the proxy's one edge, and the mobile API fetches it through a proxy whose
config allows one channel of 0.05 BTT to unknown payees per download: at most one
such channel is opened, with that deposit, and the file arrives whole from the edge.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.origin_server import pattern
from tests.processes import ATLAS, Running, start_program, start_proxy
from tests.proxy.conftest import api, bearer, curl
from tests.proxy.test_mobile_api import fetch_url
from tests.sdk.conftest import PASSPHRASE, make_home
from tests.sdk.test_untrusted_providers import (
    EDGE_PRICE_PER_MIB,
    FAKES,
    announce,
    cache,
    facts,
    fake_stats,
)

CHUNK = 256 * 1024


def test_the_proxy_takes_its_unknown_provider_limits_from_the_config(
    origin: Running, ledger: Running, edges: list[Running], tmp_path: Path
) -> None:
    size = 48 * CHUNK
    url = f"{origin.url}/bytes/{size}?max-age=3600&t=proxy-fakes"
    known = edges[0].url  # it holds the file: it does not replicate from the fakes itself
    content_id = asyncio.run(cache(known, url))
    home = make_home(tmp_path / "home", [known], ledger.url)
    domain, edge_payees, _ = asyncio.run(facts(ledger.url, [known], home))
    config = home.path / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "unknown_channels": 1,
                                  "unknown_deposit": "0.05", "max_spend": "0.000001"}))  # fmt: skip
    fakes = start_program([
        sys.executable, str(FAKES), "--count", "20", "--chain-id", str(domain.chain_id),
        "--contract", domain.contract.hex(), "--price-per-mib", str(EDGE_PRICE_PER_MIB),
    ])  # fmt: skip
    try:
        asyncio.run(announce([known], content_id, list(fakes.ready["urls"])))  # type: ignore[call-overload]
        proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
        try:
            got = curl(*bearer(home), fetch_url(proxy, url))
            status = json.loads(curl(*bearer(home), f"{api(proxy)}/status.json").stdout)
        finally:
            proxy.stop()
        stats = asyncio.run(fake_stats(fakes))
    finally:
        fakes.stop()

    # Whole, from the edge; the fakes were in the download (so the limits were tested), and
    # atlas fetch's max_spend (here far below the file's price) does not apply to the proxy.
    assert got.stdout == pattern(0, size)
    assert sum(1 for s in stats.values() if s["requests"]) >= 3, stats
    to_fakes = [c for c in status["channels"] if c["payee"] not in edge_payees]
    assert len(to_fakes) == 1, status["channels"]  # default: 2, of 0.1 BTT each
    assert all(c["deposit"] == "0.05 BTT" for c in to_fakes), to_fakes


@pytest.mark.parametrize(("setting", "value", "said"), [
    ("unknown_channels", "many", "unknown_channels (ATLAS_UNKNOWN_CHANNELS) must be a whole"),
    ("unknown_deposit", "0", "unknown_deposit (ATLAS_UNKNOWN_DEPOSIT) must be more than 0"),
    ("deposit", "lots", "config.json deposit:"),
])  # fmt: skip
def test_an_unusable_setting_stops_the_proxy_with_its_name(
    setting: str, value: str, said: str, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.json").write_text(json.dumps({"edges": ["http://127.0.0.1:9"],
                                                  setting: value}))  # fmt: skip
    done = subprocess.run([ATLAS, "proxy", "--port", "0", "--api-port", "0"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "ATLAS_HOME": str(home)},
                          check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert said in done.stderr and "Traceback" not in done.stderr, done.stderr
