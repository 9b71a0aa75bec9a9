"""The network under test: the test origin and ``atlas up`` (a ledger with faucet, the
edges, the proxy and its mobile API, in a temporary data dir), children of this process
started and stopped by PID with the harness's runner (:class:`Processes`); the
memory and CPU of ``atlas up``'s servers, from /proc."""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from loadtest import REPO
from loadtest.harness.children import Processes
from loadtest.harness.procfs import children_of, cpu_seconds, proc_status, reset_peak_rss

ATLAS = Path(sys.executable).with_name("atlas")
ORIGIN = REPO / "tests" / "origin_server.py"
EDGES = 3
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0


class Sample(NamedTuple):
    rss_mib: float
    peak_mib: float
    """VmHWM: the peak since the last :meth:`Network.reset_peaks`."""
    cpu_s: float


@dataclass
class Network:
    origin_url: str
    roles: dict[str, int]
    """The servers ``atlas up`` started, by role (ledger, edge1.., proxy): their PIDs."""
    env: dict[str, str]
    """Where the locust users find the network (:func:`.atlas_user.load_targets`)."""

    def samples(self) -> dict[str, Sample]:
        """RSS, peak RSS and CPU seconds of each server still running."""
        out = {}
        for role, pid in self.roles.items():
            with contextlib.suppress(OSError, ValueError):
                status = proc_status(pid)
                out[role] = Sample(status.get("VmRSS", 0) / 1024, status.get("VmHWM", 0) / 1024,
                                   cpu_seconds(pid))  # fmt: skip
        return out

    def reset_peaks(self) -> None:
        """VmHWM back to the current RSS, so that a peak is per run."""
        for pid in self.roles.values():
            reset_peak_rss(pid)


@contextlib.contextmanager
def network(workdir: Path, logs: Path, stops: dict[str, Any]) -> Iterator[Network]:
    """Origin and ``atlas up`` as children, their logs in ``logs``; stopped on the way out,
    ``atlas up`` by SIGTERM (it stops the proxy, the edges, which redeem what they earned,
    then the ledger), timed."""
    started, procs = time.monotonic(), Processes(logs)
    try:
        origin = procs.start("origin", [sys.executable, str(ORIGIN), "--port", "0"])
        up = procs.start("atlas-up", [str(ATLAS), "up", "--data-dir", str(workdir / "atlas-data"),
                                      "--edges", str(EDGES), "--proxy-port", "0",
                                      "--allow-private-origins"], ready_key=None,
                         timeout=READY_TIMEOUT)  # fmt: skip
        roles = roles_of(up.pid)
        stops["startup_s"] = round(time.monotonic() - started, 2)
        print(f"network up in {stops['startup_s']} s: "
              + ", ".join(f"{r}={p}" for r, p in roles.items()))  # fmt: skip
        yield Network(origin.url, roles, {"ATLAS_UP_JSON": json.dumps(up.ready),
                                          "ATLAS_ORIGIN": origin.url})  # fmt: skip
    finally:
        stopping = time.monotonic()
        procs.close(STOP_TIMEOUT)  # atlas up first
        stops["atlas_up_stop_s"] = round(time.monotonic() - stopping, 2)


def roles_of(up_pid: int) -> dict[str, int]:
    """The processes ``atlas up`` started, by role: ledger, edge1.., proxy (from /proc)."""
    roles: dict[str, int] = {}
    for pid in children_of(up_pid):
        with contextlib.suppress(OSError):
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode("utf-8", "replace").split("\0")
            if "edge" in argv and "serve" in argv and "--data-dir" in argv:
                roles[Path(argv[argv.index("--data-dir") + 1]).name] = pid
            elif "proxy" in argv or "ledger" in argv:
                roles["proxy" if "proxy" in argv else "ledger"] = pid
    return dict(sorted(roles.items()))
