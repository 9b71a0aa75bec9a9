"""Stopping ``atlas up`` settles: the edges redeem what they earned before the ledger stops,
however the stop signal arrives (Ctrl-C to the terminal's process group, or SIGTERM to every
process at once as systemd or a container runtime does to a cgroup)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.launcher.atlas_up import Up, descendants, earnings, fetch, start_up
from tests.processes import Running

PAYING = {"ATLAS_FREE_MIB": "0"}
"""The edges' free allowance off, so that every fetch pays."""


def earn_at_every_edge(up: Up, origin: Running, tmp_path: Path) -> list[Path]:
    """One paid fetch through each edge; their data dirs."""
    data_dir = Path(str(up.info["data_dir"]))
    for i, edge in enumerate(up.edges):
        url = f"{origin.url}/bytes/300000?t=stop{i}"
        done = fetch(data_dir, url, tmp_path / f"out{i}", "--edge", edge)
        assert done.returncode == 0, done.stderr
    return [data_dir / f"edge{i + 1}" for i in range(len(up.edges))]


def alive(pids: list[int]) -> list[int]:
    return [p for p in pids if Path(f"/proc/{p}").exists()]


def assert_settled(up: Up, dirs: list[Path]) -> None:
    """Every edge was paid, and redeemed all it was paid (while it runs, it redeems only
    channels near their expiry: what it holds at the stop is redeemed on the way out)."""
    for edge_dir in dirs:
        earned = earnings(edge_dir)
        assert earned["paid"] > 0
        assert earned["unredeemed"] == 0, f"{edge_dir.name}:\n" + "".join(up.log)


def test_ctrl_c_to_the_process_group_settles_every_edge(origin: Running, tmp_path: Path) -> None:
    up = start_up(tmp_path / "atlas", more_env=PAYING)
    pids: list[int] = []
    try:
        dirs = earn_at_every_edge(up, origin, tmp_path)
        pids = descendants(up.proc.pid)
        os.killpg(up.proc.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
        assert up.wait() == 0
        assert not alive(pids), "children outlived atlas up"
    finally:
        up.kill_all(alive(pids))
    assert_settled(up, dirs)


def test_sigterm_to_every_process_at_once_settles_every_edge(
    origin: Running, tmp_path: Path
) -> None:
    up = start_up(tmp_path / "atlas", more_env=PAYING)
    pids: list[int] = []
    try:
        dirs = earn_at_every_edge(up, origin, tmp_path)
        pids = descendants(up.proc.pid)
        for pid in [up.proc.pid, *pids]:  # what stopping a cgroup (systemd, docker) does
            os.kill(pid, signal.SIGTERM)
        assert up.wait() == 0
        assert not alive(pids), "children outlived atlas up"
    finally:
        up.kill_all(alive(pids))
    assert_settled(up, dirs)
