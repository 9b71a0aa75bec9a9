"""A large body through the real proxy is asked of the edges in runs (docs/protocol.md 13):
fewer requests than chunks, each paid ahead by one voucher, and the bytes arrive whole.
Here the second download of 80 chunks took 41 and 46 requests (53 before the runs reached
32 MiB whatever the window: tests/sdk/test_download_reach.py); edges that replicate what
they are asked for answer some runs with nothing, and those chunks come one by one."""

from __future__ import annotations

import hashlib
import json

from tests.origin_server import pattern
from tests.processes import Running
from tests.proxy.conftest import api, bearer, curl
from tests.sdk.conftest import Home

MIB = 1024 * 1024
SIZE = 80 * MIB
"""Cut in 1 MiB chunks (a body of 64 MiB or more): the proxy's window is 2 of them."""


def expected_digest() -> str:
    digest = hashlib.sha256()
    for offset in range(0, SIZE, 4 * MIB):
        digest.update(pattern(offset, min(4 * MIB, SIZE - offset)))
    return digest.hexdigest()


def test_a_large_body_is_asked_in_runs_and_arrives_whole(
    proxy: Running, proxy_home: Home, origin: Running
) -> None:
    url = f"{origin.url}/bytes/{SIZE}?t=bulk-runs"
    for _ in range(2):  # a first fetch, then the same content again from the edges' stores
        got = curl("-x", proxy.url, url)
        assert got.returncode == 0, got.stderr
        assert len(got.stdout) == SIZE
        assert hashlib.sha256(got.stdout).hexdigest() == expected_digest()
    status = json.loads(curl(*bearer(proxy_home), f"{api(proxy)}/status.json").stdout)
    assert len(status["recent"]) == 2
    again = status["recent"][-1]["providers"].values()
    chunks = sum(p["chunks"] - p["raced"] for p in again)
    requests = sum(p["requests"] for p in again)
    assert chunks == SIZE // MIB
    assert requests * 4 <= chunks * 3, f"{requests} requests for {chunks} chunks"
