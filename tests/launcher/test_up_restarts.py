"""``atlas up`` supervises its children: one that dies is reaped, reported and restarted on
the same port, the network serves (and pays) through it again, and it settles on the stop."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from tests.launcher.atlas_up import descendants, earnings, fetch, start_up
from tests.origin_server import pattern
from tests.processes import Running


def pid_of(up_pid: int, *words: str) -> int:
    """The child of ``atlas up`` whose command line holds ``words`` in order."""
    for pid in descendants(up_pid):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if any(argv[i : i + len(words)] == list(words) for i in range(len(argv))):
            return pid
    raise AssertionError(f"no child runs {words}")


def test_a_killed_edge_is_reported_reaped_and_restarted_on_its_port(
    origin: Running, tmp_path: Path
) -> None:
    up = start_up(tmp_path / "atlas", edges=1, more_env={"ATLAS_FREE_MIB": "0"})
    try:
        edge = up.edges[0]
        killed = pid_of(up.proc.pid, "edge", "serve")
        os.kill(killed, signal.SIGKILL)
        up.wait_log(rf"edge1 \(pid {killed}\) was killed by SIGKILL; restarting it")
        back = up.wait_log(r"edge1 is back \(pid (\d+)\) on (\S+)", timeout=60)
        assert back[2] == edge
        assert not Path(f"/proc/{killed}").exists(), "the killed edge was not reaped"
        assert pid_of(up.proc.pid, "edge", "serve") == int(back[1])
        out = tmp_path / "out"
        url = f"{origin.url}/bytes/300000?t=restart"
        done = fetch(Path(str(up.info["data_dir"])), url, out, "--edge", edge)
        assert done.returncode == 0, done.stderr
        assert out.read_bytes() == pattern(0, 300000)
        os.kill(up.proc.pid, signal.SIGTERM)  # to atlas up alone
        assert up.wait() == 0
    finally:
        up.kill_all()
    earned = earnings(tmp_path / "atlas" / "edge1")  # the restarted edge settled on the stop
    assert earned["paid"] > 0
    assert earned["unredeemed"] == 0
