"""Faults between ``atlas fetch`` and an edge: the requester reaches the edge only through
the fault proxy (its config names the proxy as its one edge, and the edge gives the
proxy's address as its own public URL, so its tracker lists no other way in), and pays
per chunk. Answers are broken mid-stream; requests mid-send."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import CHUNK, FaultProxy, Outcome, completed, fetch, start_fault_proxy
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import Home, make_home

SIZE = 6 * CHUNK + 1000


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[FaultProxy]:
    """The fault proxy, and behind it a paid edge that calls the proxy its public URL."""
    proxy = start_fault_proxy()
    edge = start_edge(tmp_path_factory.mktemp("edge"), ledger.url, "--free-mib", "0",
                      "--public-url", proxy.url)  # fmt: skip
    proxy.point_at(edge.url)
    yield proxy
    edge.stop()
    proxy.running.stop()


@pytest.fixture
def proxy(link: FaultProxy) -> Iterator[FaultProxy]:
    yield link
    link.clear()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, link: FaultProxy, ledger: Running) -> Home:
    return make_home(tmp_path_factory.mktemp("home"), [link.url], ledger.url)


def _run(home: Home, origin: Running, tmp_path: Path, name: str) -> tuple[Outcome, Path]:
    out = tmp_path / "out.bin"
    return fetch(home, f"{origin.url}/bytes/{SIZE}?t=re-{name}", out), out


def test_delay_on_every_answer_completes(
    proxy: FaultProxy, home: Home, origin: Running, tmp_path: Path
) -> None:
    proxy.arm("delay", delay=0.01, count=0)
    outcome, out = _run(home, origin, tmp_path, "delay")
    completed(outcome)
    assert out.read_bytes() == pattern(0, SIZE)


@pytest.mark.parametrize("mode", ["reset", "truncate", "stall"])
def test_answer_cut_mid_chunk_ends_in_a_clear_error_or_completes(
    mode: str, proxy: FaultProxy, home: Home, origin: Running, tmp_path: Path
) -> None:
    proxy.arm(mode, after=3 * CHUNK // 2, count=1)
    outcome, out = _run(home, origin, tmp_path, mode)
    assert proxy.stats()["faulted"] >= 1
    if outcome.code == 0:  # another request took the chunk over (a straggler, a new connection)
        assert out.read_bytes() == pattern(0, SIZE)
    else:  # the one provider is dropped: the error says why
        assert "no provider could serve it" in outcome.stderr
        assert "unreachable" in outcome.stderr
        assert not out.exists()


def test_corrupted_answers_are_never_accepted(
    proxy: FaultProxy, home: Home, origin: Running, tmp_path: Path
) -> None:
    proxy.arm("corrupt", after=CHUNK, every=CHUNK // 2, count=0)
    outcome, out = _run(home, origin, tmp_path, "corrupt")
    assert outcome.code != 0
    # Nearly always "bad chunk N: ... does not match its stated SHA-256"; a flip that lands
    # in a response head is an unreadable answer instead. Either way nothing is kept.
    assert "no provider could serve it" in outcome.stderr
    assert not out.exists()


def test_corrupted_requests_are_refused(
    proxy: FaultProxy, home: Home, origin: Running, tmp_path: Path
) -> None:
    proxy.arm("corrupt", direction="up", after=600, every=50, count=0)
    outcome, out = _run(home, origin, tmp_path, "corrupt-up")
    assert outcome.code != 0
    assert re.search(r"answered 400 [a-z_]+: \w", outcome.stderr), outcome.stderr
    # The edge's problem as words (code: detail), not its body's bytes repr.
    assert "b'{" not in outcome.stderr and '"type":' not in outcome.stderr, outcome.stderr
    assert not out.exists()
