"""Edges in a private DHT on loopback, for discovery tests: edge N listens on 127.0.0.N.

The first edge has no bootstrap node; the others bootstrap from it, so no public
node is ever contacted. Every edge allows loopback DHT nodes (``--dht-allow-private``)
unless a test wants to show what happens without.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from launcher import processes
from tests.processes import ATLAS, READY_TIMEOUT, Running

PRIVATE = ("--dht-allow-private", "--allow-private-origins")


def edge_args(
    index: int, data_dir: Path, ledger: str, bootstrap: str, extra: Sequence[str] = PRIVATE
) -> list[str]:
    return [
        ATLAS, "edge", "serve", "--host", f"127.0.0.{index}", "--port", "0",
        "--data-dir", str(data_dir), "--ledger", ledger, "--no-tunnel", "--dht",
        "--dht-bootstrap", bootstrap, *extra,
    ]  # fmt: skip


def start_edges(argvs: list[list[str]]) -> list[Running]:
    """Start them all at once, then wait for each ready line."""
    started = [processes.spawn(argv) for argv in argvs]
    try:
        for process in started:
            process.wait_ready(READY_TIMEOUT)
    except BaseException:
        for process in started:
            process.kill9()
        raise
    return started


def dht_of(edge: Running) -> str:
    return str(edge.ready["dht"])
