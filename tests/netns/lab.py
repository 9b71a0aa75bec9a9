"""Atlas programs on the hosts of a namespace network (loadtest/harness/netns.py).

Host 10 runs the ledger, host 11 the origin, hosts 1-4 edges in a private DHT (edge 1
has no bootstrap node, the others bootstrap from it), host 5 is the requester. Every
program is its own process, started through ``ip netns exec`` on the tests' runner
(tests/processes.py) and stopped by PID before the namespaces are deleted.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from launcher import processes
from loadtest import REPO
from loadtest.harness.netns import Network
from tests.processes import ATLAS, READY_TIMEOUT, Running

LEDGER, ORIGIN, REQUESTER = 10, 11, 5
EDGES = (1, 2, 3, 4)
HOSTS = (*EDGES, REQUESTER, 6, 7, LEDGER, ORIGIN)
PRIVATE = ("--dht-allow-private", "--allow-private-origins")
"""Without both, an edge's private-address filter drops every DHT node on 10.77.0.0/24
(--allow-private-origins alone lifts that filter too: cdn_edge/app.py)."""
RUN_TIMEOUT = 60.0


@dataclass
class Lab:
    net: Network
    root: Path
    running: list[Running] = field(default_factory=list)
    edges: dict[int, Running] = field(default_factory=dict)
    ledger: str = ""
    origin: Running | None = None

    def up(self) -> None:
        """The network, the ledger and the origin, edge 1, then edges 2-4 at once."""
        self.net.build()
        address = self.net.address
        ledger = [ATLAS, "ledger", "serve", "--data-dir", str(self.root / "ledger"), "--faucet"]
        origin = [sys.executable, str(REPO / "tests" / "origin_server.py")]
        self.ledger = self.start(LEDGER, [*ledger, "--host", address(LEDGER), "--port", "0"]).url
        self.origin = self.start(ORIGIN, [*origin, "--host", address(ORIGIN), "--port", "0"])
        first = self.edge(EDGES[0], bootstrap="")
        self.edge(*EDGES[1:], bootstrap=dht_of(first))

    def start(self, host: int, argv: list[str]) -> Running:
        """``argv`` on ``host``, waited for until its ready line."""
        process = processes.spawn(self.net.argv(host, argv))
        self.running.append(process)
        process.wait_ready(READY_TIMEOUT)
        return process

    def edge(self, *hosts: int, bootstrap: str, extra: tuple[str, ...] = PRIVATE) -> Running:
        """Edges on ``hosts`` (started together), bootstrapping from ``bootstrap``; the last."""
        started = [processes.spawn(self.net.argv(h, self._edge_argv(h, bootstrap, extra)))
                   for h in hosts]  # fmt: skip
        self.running += started
        for host, process in zip(hosts, started, strict=True):
            process.wait_ready(READY_TIMEOUT)
            self.edges[host] = process
        return started[-1]

    def _edge_argv(self, host: int, bootstrap: str, extra: tuple[str, ...]) -> list[str]:
        return [ATLAS, "edge", "serve", "--host", self.net.address(host), "--port", "0",
                "--data-dir", str(self.root / f"edge{host}"), "--ledger", self.ledger,
                "--no-tunnel", "--dht", "--dht-bootstrap", bootstrap, *extra]  # fmt: skip

    def fetch(self, host: int, url: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``atlas fetch URL ARGS`` on ``host``, with a home of its own (no wallet: the
        edges' free allowance pays)."""
        env = {**os.environ, "ATLAS_HOME": str(self.root / f"home{host}")}
        argv = self.net.argv(host, [ATLAS, "fetch", url, *args])
        return subprocess.run(argv, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)  # fmt: skip

    def probe(self, host: int, *args: str) -> dict[str, object]:
        """``python -m loadtest.dht.probe ARGS`` on ``host``: its JSON answer."""
        argv = self.net.argv(host, [sys.executable, "-m", "loadtest.dht.probe", *args])
        done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)  # fmt: skip
        assert done.returncode == 0, done.stderr[-2000:]
        answer: dict[str, object] = json.loads(done.stdout.splitlines()[-1])
        return answer

    def listed(self, bootstrap: str) -> set[str]:
        """URLs of the edges the requester host lists through ``bootstrap``."""
        found = self.probe(REQUESTER, "edges", bootstrap)["edges"]
        assert isinstance(found, list)
        return {str(edge["url"]) for edge in found}

    def stop(self) -> None:
        for process in reversed(self.running):
            process.stop()
        self.running.clear()


def dht_of(edge: Running) -> str:
    return str(edge.ready["dht"])
