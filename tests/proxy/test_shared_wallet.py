"""The proxy and ``atlas fetch`` pay from one wallet at the same time.

The README's own workflow: ``atlas up`` runs the proxy on a data dir, and
``ATLAS_HOME=DIR atlas fetch`` pays from the same wallet and the same channels in
another process. Each process kept its own count of what it had signed on a
channel, so after the CLI had paid, the proxy's next voucher was not above what the
store recorded and every proxied fetch failed (502, "voucher amount ... is not above
what was already issued") until the proxy restarted.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.origin_server import pattern
from tests.processes import Running, start_proxy
from tests.proxy.conftest import bearer, curl
from tests.proxy.test_mobile_api import fetch_url
from tests.sdk.conftest import PASSPHRASE, make_home

CHUNK = 256 * 1024


def test_the_proxy_keeps_paying_after_atlas_fetch_paid_from_the_same_wallet(
    origin: Running, ledger: Running, edges: list[Running], tmp_path: Path
) -> None:
    home = make_home(tmp_path / "home", [edges[0].url], ledger.url)
    proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    try:
        for round_ in range(2):
            size = 6 * CHUNK + round_
            got = curl(
                *bearer(home), fetch_url(proxy, f"{origin.url}/bytes/{size}?t=shared-p{round_}")
            )
            assert got.stdout == pattern(0, size), got.stdout[:300]
            out = tmp_path / f"cli{round_}.bin"
            cli = home.atlas(
                "fetch", f"{origin.url}/bytes/{size}?t=shared-c{round_}", "-o", str(out)
            )
            assert cli.returncode == 0, cli.stderr
            assert out.read_bytes() == pattern(0, size)
        last = curl(*bearer(home), fetch_url(proxy, f"{origin.url}/bytes/{5 * CHUNK}?t=shared-end"))
        assert last.stdout == pattern(0, 5 * CHUNK), last.stdout[:300]
    finally:
        proxy.stop()
    listed = home.atlas("channel", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1, listed.stdout  # both paid on one channel
