"""Real ledger processes (``atlas ledger serve --faucet``), each on its own data dir."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from tests.processes import Running, start_ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Running]:
    running = start_ledger(tmp_path / "ledger")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def shared_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """One ledger for a module's refusal tests: none of them may change its state."""
    running = start_ledger(tmp_path_factory.mktemp("shared-ledger"))
    yield running
    running.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as http:
        yield http


@pytest.fixture
def client(ledger: Running, session: aiohttp.ClientSession) -> LedgerClient:
    return LedgerClient(ledger.url, session)
