"""Real processes for edge tests: origins, a ledger with faucet, and edges."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Running, start_edge, start_program


@pytest.fixture(scope="module")
def odd_origin() -> Iterator[Running]:
    """Redirects to any location, and answers as a hostile provider (tests/edge/odd_origin.py)."""
    running = start_program([sys.executable, str(Path(__file__).with_name("odd_origin.py"))])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def echo() -> Iterator[Running]:
    """A TCP echo server (tests/edge/echo_server.py), the target of tunnel tests."""
    running = start_program([sys.executable, str(Path(__file__).with_name("echo_server.py"))])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def free_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    """An edge whose free allowance covers everything the tests fetch."""
    running = start_edge(tmp_path_factory.mktemp("free-edge"), ledger.url, "--free-mib", "4096")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def paid_edge(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Running]:
    """An edge with no free allowance: every chunk must be paid."""
    running = start_edge(tmp_path_factory.mktemp("paid-edge"), ledger.url, "--free-mib", "0")
    yield running
    running.stop()


@pytest.fixture
def edge_dir(tmp_path: Path) -> Path:
    return tmp_path / "edge"
