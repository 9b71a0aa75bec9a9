"""libtorrent's threads yield the CPU to the edge's event loop (issue 18).

On a first fetch libtorrent downloads flat out once the first piece is in; on a busy
machine its threads took the cores from the event loop that hands that piece on and
answers the requester. The session lowers their priority (nice) as it starts them, and
the disk threads libtorrent starts during a download inherit it. Observed here through
/proc: the nice value of each of this process's threads, no clock.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cdn_edge.torrent import TorrentSession, open_torrent, parse_source
from cdn_edge.torrent.session_guards import BULK_NICE
from tests.processes import Running
from tests.torrent.conftest import expected_sha256, torrent
from tests.torrent.test_fetch import sha256_of

pytestmark = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="Linux /proc only")
GiB = 1 << 30


def nice_values() -> dict[int, int]:
    """Each thread of this process and its nice value (field 19 of /proc/.../stat)."""
    values = {}
    for task in Path("/proc/self/task").iterdir():
        stat = (task / "stat").read_text(encoding="ascii")
        values[int(task.name)] = int(stat.rsplit(")", 1)[1].split()[16])
    return values


async def test_libtorrent_threads_run_below_the_event_loop(tmp_path: Path, seeder: Running) -> None:
    loop_nice = os.getpriority(os.PRIO_PROCESS, 0)
    before = set(nice_values())
    record = torrent(seeder, "single-v1")
    async with TorrentSession(tmp_path / "t", allow_private_peers=True) as ses:
        async with await open_torrent(ses, parse_source(record["magnet"])) as handle:
            _, body = await handle.stream(record["files"][0]["path"], GiB)
            assert await sha256_of(body) == expected_sha256(record["files"][0])
        values = nice_values()
    started = {tid: nice for tid, nice in values.items() if tid not in before}
    lowered = [tid for tid, nice in started.items() if nice >= min(19, loop_nice + BULK_NICE)]
    assert len(lowered) >= 3, f"threads started by the session and their nice: {started}"
    assert os.getpriority(os.PRIO_PROCESS, 0) == loop_nice
    assert values[os.getpid()] == loop_nice
