"""A download's memory and its runs, both in bytes (requester/download_window.py): the window
bounds what is held, the reach how far a run asks. Before, the reach was four windows, so
the proxy's small window of 1 MiB chunks (4 of them) gave runs of 5 chunks over 3 edges:
about 41 requests and vouchers per 100 MiB through the proxy, against 30 now."""

from __future__ import annotations

from requester.download_window import REACH_BYTES, DownloadWindow
from requester.protocol import ContentVerifier, NodeKey
from tests.conftest import EDGE_SEED, make_head

KIB = 1024
MIB = 1024 * KIB


def window(chunk_size: int, window: int, size: int = 100 * MIB) -> DownloadWindow:
    head = make_head(NodeKey(EDGE_SEED), chunk_size=chunk_size, size_hint=size)
    return DownloadWindow(ContentVerifier(head), window, 0)


def test_the_window_holds_its_bytes_whatever_the_chunk_size() -> None:
    assert window(256 * KIB, 16).size == 16  # the proxy's 4 MiB
    assert window(MIB, 16).size == 4
    assert window(MIB, 32).size == 8  # atlas fetch's 8 MiB


def test_runs_reach_the_same_bytes_whatever_the_window() -> None:
    assert REACH_BYTES == 32 * MIB
    for chunk, win in ((256 * KIB, 32), (MIB, 32), (MIB, 16), (256 * KIB, 16)):
        w = window(chunk, win)
        assert w.reach() * chunk == 32 * MIB, (chunk, win)
    assert window(MIB, 16).run_share(3) == 10  # the proxy over 3 edges; was 5 (16 // 3)


def test_a_run_reads_only_what_fits_in_the_window() -> None:
    w = window(MIB, 16)
    assert w.claim(0, 10, {}) == list(range(10))  # asked and paid ahead as one run
    assert [w.fits(i) for i in range(6)] == [True] * 4 + [False] * 2
    assert w.take(0, b"x", "a", now=0.0)
    assert w.pop_next() == b"x"
    assert w.fits(4) and not w.fits(5)


def test_a_short_download_keeps_its_runs_in_the_window() -> None:
    w = window(MIB, 16, size=12 * MIB)
    assert w.reach() == 6  # half of what is left, more than the window of 4
    assert w.run_share(3) == 2
