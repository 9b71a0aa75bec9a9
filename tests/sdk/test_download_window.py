"""Which chunk an idle worker races (requester/download_window.py): only one held up at
another provider gone silent, once. Before, a chunk's own age decided, so the later chunks
of a run in steady progress were raced, fetched and paid twice."""

from __future__ import annotations

from requester.download_window import STRAGGLER_AFTER, DownloadWindow
from requester.protocol import ContentVerifier, NodeKey
from tests.conftest import EDGE_SEED, make_head

CHUNK = 256 * 1024
LATE = STRAGGLER_AFTER + 0.5


def window() -> DownloadWindow:
    head = make_head(NodeKey(EDGE_SEED), size_hint=40 * CHUNK)
    return DownloadWindow(ContentVerifier(head), 32, 0)


def test_a_run_in_steady_progress_is_not_raced() -> None:
    w = window()
    w.asked("a", list(range(0, 20)), now=0.0)
    for index in range(10):  # a chunk every 0.4 s: the run is 4 s old, never silent 2 s
        assert w.take(index, b"x", "a", now=0.4 * (index + 1))
    assert w.straggler(4.0 + STRAGGLER_AFTER - 0.1, "b") is None
    assert w.straggler(4.0 + LATE, "b") == 10  # silent since its last chunk: raced


def test_a_chunk_is_never_raced_at_the_provider_fetching_it() -> None:
    w = window()
    w.asked("a", [0, 1], now=0.0)
    assert w.straggler(LATE, "a") is None
    assert w.pick({}, 0, LATE, "a") == 2  # the next free chunk instead


def test_a_silent_providers_chunk_is_raced_once_and_the_second_copy_counted() -> None:
    w = window()
    w.asked("a", [0], now=0.0)
    assert w.straggler(LATE, "b") == 0
    w.asked("b", [0], now=LATE)
    assert w.straggler(LATE, "c") is None  # raced already
    assert w.take(0, b"b's", "b", now=LATE + 0.1)
    assert not w.take(0, b"a's", "a", now=LATE + 0.2)  # came second: thrown away
    assert w.pop_next() == b"b's"


def test_the_racer_keeps_a_chunk_its_first_provider_gave_up() -> None:
    w = window()
    w.asked("a", [0], now=0.0)
    w.asked("b", [0], now=LATE)
    w.release(0, "a")  # a's connection reset: b is still fetching it
    assert w.inflight == {0: "b"} and w.pick({}, 0, LATE, "c") == 1
    w.release(0, "b")
    assert w.inflight == {} and w.pick({}, 0, LATE, "c") == 0  # free again


def test_a_run_held_back_by_the_window_is_not_silent() -> None:
    w = window()
    w.asked("a", list(range(0, 40)), now=0.0)
    w.held_back("a", now=LATE)
    assert w.straggler(LATE + 1.0, "b") is None
    assert w.straggler(LATE + 1.0 + STRAGGLER_AFTER, "b") == 0


def test_a_racer_gone_silent_too_does_not_hold_the_chunk_from_the_others() -> None:
    """Twenty providers on probation, most hanging, race each other's chunks: a chunk raced
    by one that hangs too is raced again by another, so the honest edge still gets it."""
    w = window()
    w.asked("hangs", [0], now=0.0)
    w.asked("hangs too", [0], now=LATE)  # raced by another that will not answer
    assert w.straggler(LATE + 1.0, "edge") is None  # the racer is not silent yet
    assert w.straggler(2 * LATE, "edge") == 0
    assert w.straggler(2 * LATE, "hangs too") is None  # never the racer itself
    w.asked("edge", [0], now=2 * LATE)
    assert w.take(0, b"edge's", "edge", now=2 * LATE + 0.1)
    w.release(0, "hangs too")  # the hanging racer gives up: nothing left to undo
    assert w.inflight == {} and w.raced == {}
