"""Real ledger processes (``atlas ledger serve --faucet``), each on its own data dir."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from requester.ledger_client import LedgerClient
from tests.processes import Running, start_ledger, start_program

CLOCKED_LEDGER = Path(__file__).with_name("clocked_ledger.py")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Running]:
    running = start_ledger(tmp_path / "ledger")
    yield running
    running.stop()


@pytest.fixture
def clocked_ledger(tmp_path: Path) -> Iterator[Running]:
    """The same ledger app with a clock the test moves (tests/ledger/clocked_ledger.py), for
    tests that cross a channel's expiry: nothing depends on how fast the machine is."""
    running = start_program(
        [sys.executable, str(CLOCKED_LEDGER), "--data-dir", str(tmp_path / "ledger")]
    )
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


@pytest.fixture
def clocked_client(clocked_ledger: Running, session: aiohttp.ClientSession) -> LedgerClient:
    return LedgerClient(clocked_ledger.url, session)
