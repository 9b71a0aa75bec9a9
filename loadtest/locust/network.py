"""The network under test: the test origin and ``atlas up`` (a ledger with faucet, the
edges, the proxy and its mobile API, in a temporary data dir), children of this process
started and stopped with the project's runner (:mod:`launcher.processes`), by PID.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from launcher import processes
from loadtest import REPO
from loadtest.harness.procfs import children_of
from loadtest.locust.locust_process import LoadTestError

ATLAS = Path(sys.executable).with_name("atlas")
ORIGIN = REPO / "tests" / "origin_server.py"
READY_TIMEOUT = 90.0
STOP_TIMEOUT = 90.0


@dataclass
class Network:
    origin_url: str
    roles: dict[str, int]
    """The servers ``atlas up`` started, by role (ledger, edge1.., proxy): their PIDs."""
    up_json: Path

    @property
    def env(self) -> dict[str, str]:
        """Where the locust users find the network (``loadtest.locust.atlas_user``)."""
        return {"ATLAS_UP_JSON": str(self.up_json), "ATLAS_ORIGIN": self.origin_url}


def start(
    name: str, argv: list[str], logs: Path, ready_key: str | None = "listening"
) -> processes.Process:
    """``argv`` started, its ready line read; its output in ``logs/NAME.log``."""
    log = logs / f"{name}.log"
    try:
        return processes.start(argv, name=name, cwd=REPO, log=log, ready_key=ready_key,
                               ready_timeout=READY_TIMEOUT)  # fmt: skip
    except processes.NotReady as exc:
        tail = log.read_text("utf-8", "replace")[-2000:]
        raise LoadTestError(f"{name} {exc} (see {log}):\n{tail}") from None


@contextlib.contextmanager
def network(workdir: Path, edges: int, logs: Path, stops: dict[str, Any]) -> Iterator[Network]:
    """Origin and ``atlas up`` as children; stopped on the way out, the stop timed."""
    started = time.monotonic()
    origin = start("origin", [sys.executable, str(ORIGIN), "--port", "0"], logs)
    try:
        up = start("atlas-up", [str(ATLAS), "up", "--data-dir", str(workdir / "atlas-data"),
                                "--edges", str(edges), "--proxy-port", "0",
                                "--allow-private-origins"], logs, ready_key=None)  # fmt: skip
        roles = roles_of(up.pid)
        try:
            up_json = workdir / "up.json"
            up_json.write_text(json.dumps(up.ready) + "\n", "utf-8")
            stops["startup_s"] = round(time.monotonic() - started, 2)
            pids = ", ".join(f"{r}={p}" for r, p in roles.items())
            print(f"network up in {stops['startup_s']} s: {pids}")
            yield Network(origin.url, roles, up_json)
        finally:
            stops.update(stop_timed(up, roles_of(up.pid)))  # again: atlas up restarts one that died
    finally:
        origin.stop(10)


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


def stop_timed(up: processes.Process, roles: dict[str, int]) -> dict[str, Any]:
    """SIGTERM to ``atlas up``, which stops the proxy, the edges (they redeem what they
    earned), then the ledger: how long it took, when each server exited (seen through a
    pidfd, s after the signal), and which ones had to be SIGKILLed after it."""
    watched: dict[int, str] = {}
    for role, pid in {**roles, "atlas up": up.pid}.items():
        with contextlib.suppress(OSError):  # gone already
            watched[os.pidfd_open(pid)] = role
    exits: dict[str, float] = {}
    started = time.monotonic()
    up.proc.send_signal(signal.SIGTERM)
    while watched and "atlas up" not in exits:
        left = started + STOP_TIMEOUT - time.monotonic()
        ready, _, _ = select.select(list(watched), [], [], max(0.0, left))
        for fd in ready:
            exits[watched.pop(fd)] = round(time.monotonic() - started, 2)
            os.close(fd)
        if left <= 0:
            break
    up.stop(10)  # SIGKILL if it ignored the SIGTERM; reaps it
    took = exits.pop("atlas up", round(time.monotonic() - started, 2))
    out: dict[str, Any] = {"atlas_up_stop_s": took}
    for fd, role in watched.items():  # atlas up waits for its servers: these outlived it
        if role != "atlas up" and not select.select([fd], [], [], 0.1)[0]:
            signal.pidfd_send_signal(fd, signal.SIGKILL)
            out.setdefault("killed", []).append(role)
        os.close(fd)
    return {**out, "exit_after_s": exits}


def earnings(data_dir: Path) -> dict[str, dict[str, str]]:
    """``atlas edge earnings`` of every edge (after the network stopped: edges redeem on
    SIGTERM, so ``unredeemed`` should be 0)."""
    out = {}
    for edge_dir in sorted(data_dir.glob("edge*")):
        result = subprocess.run(
            [str(ATLAS), "edge", "earnings", "--data-dir", str(edge_dir), "--json"],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode == 0:
            report = json.loads(result.stdout)
            out[edge_dir.name] = {
                "paid": report["paid"], "redeemed": report["redeemed"],
                "unredeemed": report["unredeemed"], "channels": str(len(report["channels"])),
            }  # fmt: skip
        else:
            out[edge_dir.name] = {"error": result.stderr.strip()[-300:]}
    return out
