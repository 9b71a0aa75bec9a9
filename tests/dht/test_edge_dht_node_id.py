"""An edge's DHT node id survives restarts (issue 17): it is kept in the edge's data dir.

The id is read from outside, as any DHT node sees it: the ``id`` in the edge's answer
to a KRPC ``ping`` on its DHT address. A restart, graceful or kill -9, and a new DHT
port keep it; a data dir without the saved state (here a damaged one) gets a new one
and starts all the same.
"""

from __future__ import annotations

import time
from pathlib import Path

from cdn_edge.dht.node_state import STATE_FILE
from tests.dht.dht_edges import dht_of, edge_args, start_edges
from tests.dht.private_dht import krpc
from tests.processes import Running


def node_id(edge: Running) -> bytes:
    host, port = dht_of(edge).rsplit(":", 1)
    assert host == "127.0.0.1"
    answer = krpc(int(port), b"ping", {b"id": bytes(20)})
    return bytes(answer[b"r"][b"id"])


def wait_saved(data_dir: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not (data_dir / STATE_FILE).exists():
        assert time.monotonic() < deadline, "the DHT state was never saved"
        time.sleep(0.1)


def test_the_dht_node_id_is_the_same_after_a_restart(ledger: Running, tmp_path: Path) -> None:
    data_dir = tmp_path / "edge"
    argv = edge_args(1, data_dir, ledger.url, "")
    (edge,) = start_edges([argv])
    try:
        first = node_id(edge)
        wait_saved(data_dir)
        edge.stop()
        (edge,) = start_edges([argv])  # a new DHT port (port 0): the id is per address
        assert node_id(edge) == first
        edge.kill9()
        (edge,) = start_edges([argv])
        assert node_id(edge) == first
    finally:
        edge.stop()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / STATE_FILE).write_bytes(b"d7:node-idl3:abce")  # damaged
    (other,) = start_edges([edge_args(1, tmp_path / "other", ledger.url, "")])
    try:
        assert node_id(other) != first
    finally:
        other.stop()
