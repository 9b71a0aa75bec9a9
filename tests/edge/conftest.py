"""Real processes for edge tests: origins, a ledger with faucet, and edges."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.processes import Running, start_edge, start_program


@dataclass
class Pair:
    """Two paid edges (no free allowance) on one ledger."""

    a: Running
    """The origin edge: fetches from the origin, sells its chunks."""
    b: Running
    """The replica edge: its tracker is A; paid like A, at A's price."""
    a_dir: Path
    b_dir: Path


@pytest.fixture
def edges(tmp_path: Path, ledger: Running) -> Iterator[tuple[Path, list[Running]]]:
    """A test's directory and a list it appends the edges it starts to: each is stopped
    at the end, the last started first."""
    started: list[Running] = []
    yield tmp_path, started
    for running in reversed(started):
        running.stop()


@pytest.fixture
def pair(tmp_path: Path, ledger: Running) -> Iterator[Pair]:
    """Paid edges A and B; B's tracker is A."""
    a = start_edge(tmp_path / "a", ledger.url, "--free-mib", "0")
    try:
        b = start_edge(tmp_path / "b", ledger.url, "--free-mib", "0", "--tracker", a.url)
    except BaseException:
        a.stop()
        raise
    yield Pair(a, b, tmp_path / "a", tmp_path / "b")
    b.stop()
    a.stop()


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
