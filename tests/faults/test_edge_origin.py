"""Faults between an edge and an origin: the requester asks for a URL on the fault proxy,
which relays to the test origin. A broken origin body must reach the requester as the
edge's error for that content (a 502 ``origin_*`` problem, ``origin_timeout``,
``bad_content_encoding``) soon after the edge sees it, never as a verified download
of the wrong bytes and never as a wait for the requester's 60 s no-progress limit."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import CHUNK, FaultProxy, Outcome, completed, fetch, start_fault_proxy
from tests.origin_server import pattern, text
from tests.processes import Running, start_edge
from tests.sdk.conftest import Home, make_home

SIZE = 4 * CHUNK + 1000
PROMPT = 20.0
"""Time within which a failure the edge has seen must reach the requester (it sees a
reset or a short body at once; a stall after its 30 s origin read timeout)."""


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory, origin: Running) -> Iterator[FaultProxy]:
    proxy = start_fault_proxy(origin.url)
    yield proxy
    proxy.running.stop()


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[Home]:
    """A funded requester and the paid edge it uses."""
    edge = start_edge(tmp_path_factory.mktemp("edge"), ledger.url, "--free-mib", "0")
    yield make_home(tmp_path_factory.mktemp("home"), [edge.url], ledger.url)
    edge.stop()


@pytest.fixture
def proxy(link: FaultProxy) -> Iterator[FaultProxy]:
    yield link
    link.clear()


def _run(proxy: FaultProxy, home: Home, tmp_path: Path, path: str) -> tuple[Outcome, Path]:
    out = tmp_path / "out.bin"
    return fetch(home, f"{proxy.url}{path}", out), out


def test_slow_origin_completes(proxy: FaultProxy, home: Home, tmp_path: Path) -> None:
    proxy.arm("delay", delay=0.05, count=0)
    outcome, out = _run(proxy, home, tmp_path, f"/bytes/{SIZE}?t=eo-delay")
    completed(outcome)
    assert out.read_bytes() == pattern(0, SIZE)


@pytest.mark.parametrize(("mode", "bound"), [("reset", PROMPT), ("truncate", PROMPT),
                                             ("stall", 30 + PROMPT)])  # fmt: skip
def test_origin_cut_mid_body_is_an_error_at_once(
    mode: str, bound: float, proxy: FaultProxy, home: Home, tmp_path: Path
) -> None:
    proxy.arm(mode, after=CHUNK + 5000, count=1)
    outcome, out = _run(proxy, home, tmp_path, f"/bytes/{SIZE}?t=eo-{mode}")
    assert outcome.code != 0
    assert not out.exists()
    # The edge's problem for the content: origin_timeout for a stall; for a cut body a 502
    # whose code says how it broke (origin_reset, origin_truncated; origin_unreachable before).
    expected = (
        r"\borigin_timeout\b" if mode == "stall" else r"\b502 origin_[a-z_]+|origin_unreachable"
    )
    assert re.search(expected, outcome.stderr), outcome.stderr
    assert outcome.seconds < bound, f"the requester learnt of it after {outcome.seconds:.0f} s"


def test_corrupt_compressed_origin_body_is_refused(
    proxy: FaultProxy, home: Home, tmp_path: Path
) -> None:
    body = gzip.compress(text(200_000))
    proxy.arm("corrupt", after=len(body) // 2, every=1 << 30, count=1)
    outcome, out = _run(proxy, home, tmp_path, "/gzip/200000?t=eo-corrupt-gzip")
    assert outcome.code != 0
    assert not out.exists()
    assert "bad_content_encoding" in outcome.stderr
    assert outcome.seconds < PROMPT


def test_corrupt_plain_origin_body_is_delivered_as_sent(
    proxy: FaultProxy, home: Home, tmp_path: Path
) -> None:
    """Nothing can tell a flipped byte in a plain-HTTP origin body from the origin's own:
    the edge signs what it received (HTTPS origins are what protects this link)."""
    proxy.arm("corrupt", after=CHUNK, every=1 << 30, count=1)
    outcome, out = _run(proxy, home, tmp_path, f"/bytes/{SIZE}?t=eo-corrupt")
    completed(outcome)
    got, sent = out.read_bytes(), pattern(0, SIZE)
    assert len(got) == SIZE
    assert [i for i in range(SIZE) if got[i] != sent[i]] != []
