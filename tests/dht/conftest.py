"""Real processes for discovery tests: an origin and a ledger with faucet."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.processes import Running, start_ledger, start_origin


@pytest.fixture(scope="module")
def origin() -> Iterator[Running]:
    running = start_origin()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_ledger(tmp_path_factory.mktemp("ledger"))
    yield running
    running.stop()
