"""Faults between an edge and its ledger: the edge's ``--ledger`` is the fault proxy, the
requester talks to the ledger directly. A paid fetch opens a new channel, so the edge
asks the ledger for the channel's terms before it accepts the first voucher; that
answer is broken. The edge must refuse with a retryable 503 (``ledger_unavailable``),
never accept a voucher on terms it could not read, and the download must end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.conftest import (
    CHUNK,
    FaultProxy,
    Outcome,
    completed,
    fetch,
    start_fault_proxy,
)
from tests.origin_server import pattern
from tests.processes import Running, start_edge
from tests.sdk.conftest import make_home

SIZE = 4 * CHUNK + 1000


@pytest.fixture(scope="module")
def link(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[FaultProxy]:
    """The fault proxy in front of the ledger, and a paid edge that uses it as its ledger."""
    proxy = start_fault_proxy(ledger.url)
    edge = start_edge(tmp_path_factory.mktemp("edge"), proxy.url, "--free-mib", "0")
    proxy.fronted = edge.url
    yield proxy
    edge.stop()
    proxy.running.stop()


@pytest.fixture
def proxy(link: FaultProxy) -> Iterator[FaultProxy]:
    yield link
    link.clear()


def _run(proxy: FaultProxy, ledger: Running, origin: Running, tmp_path: Path, name: str
         ) -> tuple[Outcome, Path]:  # fmt: skip
    home = make_home(tmp_path / "home", [proxy.fronted], ledger.url)  # a new channel each time
    out = tmp_path / "out.bin"
    return fetch(home, f"{origin.url}/bytes/{SIZE}?t=el-{name}", out), out


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("delay", {"delay": 0.5}),
        ("reset", {}),
        ("truncate", {"after": 60}),
        ("corrupt", {"after": 150, "every": 5}),
        # A stalled ledger: the edge gives up on the look-up after 5 s
        # (cdn_edge/payments.py CHANNEL_LOOKUP_TIMEOUT) and answers 503 ledger_unavailable,
        # which the requester retries. It used to wait 30 s, as long as the requester's
        # chunk read, and was dropped as unreachable (SocketTimeoutError) after ~38 s.
        ("stall", {"after": 60}),
    ],
)
def test_a_broken_channel_lookup_is_retried_and_the_fetch_completes(
    mode: str, options: dict[str, float], proxy: FaultProxy, ledger: Running, origin: Running,
    tmp_path: Path,
) -> None:  # fmt: skip
    proxy.arm(mode, count=1, **options)  # type: ignore[arg-type]
    outcome, out = _run(proxy, ledger, origin, tmp_path, mode)
    assert proxy.stats()["faulted"] >= 1
    completed(outcome)
    assert out.read_bytes() == pattern(0, SIZE)
