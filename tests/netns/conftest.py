"""The namespace network of tests/netns: built once per module, deleted even on failure."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from loadtest.harness.netns import Network, sweep_stale, unavailable
from tests.netns.lab import HOSTS, Lab


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """Ledger on host 10, origin on host 11, edges 1-4 in a private DHT through edge 1."""
    reason = unavailable()
    if reason is not None:
        pytest.skip(f"no namespace network: {reason}")
    sweep_stale()
    running = Lab(Network(HOSTS), tmp_path_factory.mktemp("netns"))
    try:
        running.up()
        yield running
    finally:
        running.stop()
        running.net.remove()
