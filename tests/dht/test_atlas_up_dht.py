"""``atlas up --dht`` (issue 17): the local network with its own DHT, run as a user runs it.

Its edges join a DHT among themselves (the first edge's node is the others' bootstrap),
its summary line names that node (``"dht"``), the proxy is started with ``--bootstrap``
and config.json carries it, so ``atlas fetch`` uses it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from pathlib import Path

import aiohttp

from requester.dht_bootstrap import edges_through
from requester.discovery import NoEdgeFound
from tests.launcher.atlas_up import descendants, fetch, start_up
from tests.origin_server import pattern
from tests.processes import Running
from tests.proxy.conftest import curl


def edge_of(pid: int) -> str | None:
    """The data dir's name (``edge1``...) of the edge running as ``pid``, if it is one."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    except OSError:
        return None
    return Path(argv[argv.index("--data-dir") + 1]).name if "--data-dir" in argv else None


def command_lines(pid: int) -> list[list[str]]:
    return [Path(f"/proc/{p}/cmdline").read_bytes().decode().split("\0")[:-1]
            for p in descendants(pid)]  # fmt: skip


async def dht_view(info: dict[str, object]) -> tuple[list[str], list[str]]:
    """Each edge's DHT address (``/v1/info``), and the edges the DHT lists through the
    summary's node (waiting up to 10 s for the last advert)."""
    async with aiohttp.ClientSession() as http:
        addresses = []
        for edge in info["edges"]:  # type: ignore[attr-defined]
            async with http.get(f"{edge}/v1/info") as r:
                addresses.append(str((await r.json())["dht"]))
        listed: list[str] = []
        for _ in range(10):
            with contextlib.suppress(NoEdgeFound):
                listed = await edges_through(str(info["dht"]), http)
            if len(listed) == len(addresses):
                break
            await asyncio.sleep(0.5)
    return addresses, listed


def test_atlas_up_dht_runs_the_edges_and_the_proxy_on_a_dht_of_their_own(
    origin: Running, tmp_path: Path
) -> None:
    data_dir = tmp_path / "atlas"
    up = start_up(data_dir, "--dht")
    try:
        info = up.info
        addresses, listed = asyncio.run(dht_view(info))
        assert info["dht"] == addresses[0]
        assert sorted(listed) == sorted(up.edges)
        edge_argvs = [a for a in command_lines(up.proc.pid) if "edge" in a[3:4]]
        assert len(edge_argvs) == 2
        for argv in edge_argvs:
            assert "--dht" in argv and "--dht-allow-private" in argv
        bootstraps = [
            a[a.index("--dht-bootstrap") + 1] for a in edge_argvs if "--dht-bootstrap" in a
        ]
        assert bootstraps == [info["dht"]]  # the second edge's; the first has none
        (proxy_argv,) = [a for a in command_lines(up.proc.pid) if "proxy" in a[3:4]]
        assert proxy_argv[proxy_argv.index("--bootstrap") + 1] == info["dht"]
        assert json.loads((data_dir / "config.json").read_text())["bootstrap"] == info["dht"]
        url = f"{origin.url}/bytes/300000?t=up-dht"
        assert curl("-x", str(info["proxy"]), url).stdout == pattern(0, 300000)
        fetched = fetch(data_dir, url, tmp_path / "out")
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "out").read_bytes() == pattern(0, 300000)
        # edge1, every other node's bootstrap, dies: restarted on its ports with its kept
        # node id, it is listed again through its own address, the others with it
        (edge1,) = [p for p in descendants(up.proc.pid) if edge_of(p) == "edge1"]
        os.kill(edge1, signal.SIGKILL)
        up.wait_log(r"edge1 is back")
        back = time.monotonic()
        again, listed = asyncio.run(dht_view(info))
        print(f"\nboth edges listed through the restarted edge1 {time.monotonic() - back:.2f} s "
              "after it was back")  # fmt: skip
        assert again == addresses
        assert sorted(listed) == sorted(up.edges)
    finally:
        up.proc.send_signal(signal.SIGTERM)
        assert up.wait() == 0
