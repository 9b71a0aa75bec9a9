"""``atlas up`` run as a user runs it, for the tests of the local network.

The launcher starts in its own session, so a test can signal its whole
process group (what Ctrl-C in a terminal does) without signalling itself.
Its stderr is read by a thread, so tests can wait for its log lines.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

ATLAS = [sys.executable, "-m", "requester.cli"]


def env() -> dict[str, str]:
    """The user's environment minus a passphrase: ``atlas up`` makes and keeps its own."""
    return {k: v for k, v in os.environ.items() if k != "ATLAS_PASSPHRASE"}


@dataclass
class Up:
    proc: subprocess.Popen[str]
    info: dict[str, object]
    log: list[str] = field(default_factory=list)
    """``atlas up``'s stderr so far, line by line (its own lines and its children's)."""

    @property
    def edges(self) -> list[str]:
        return [str(e) for e in self.info["edges"]]  # type: ignore[attr-defined]

    def wait_log(self, pattern: str, timeout: float = 30.0) -> re.Match[str]:
        """The first stderr line matching ``pattern``, waiting for it if need be."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.log):
                if found := re.search(pattern, line):
                    return found
            time.sleep(0.05)
        raise AssertionError(f"no line matching {pattern!r} in atlas up's stderr:\n"
                             + "".join(self.log))  # fmt: skip

    def wait(self, timeout: float = 60.0) -> int:
        return self.proc.wait(timeout)

    def kill_all(self, known: Sequence[int] = ()) -> None:
        """Last resort for a failed test: SIGKILL the launcher, what it runs and ``known``
        (its children as seen before; they may outlive it)."""
        pids = [*descendants(self.proc.pid), *known]
        if self.proc.poll() is None:
            pids.append(self.proc.pid)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(10)


def start_up(data_dir: Path, *extra: str, edges: int = 2, more_env: dict[str, str] | None = None
             ) -> Up:  # fmt: skip
    """``atlas up`` on ``data_dir`` (proxy on a free port), once its JSON line is out;
    ``more_env`` reaches its children too (``ATLAS_FREE_MIB=0``: edges charge from byte 0)."""
    proc = subprocess.Popen(
        [*ATLAS, "up", "--data-dir", str(data_dir), "--edges", str(edges),
         "--proxy-port", "0", "--allow-private-origins", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**env(), **(more_env or {})}, start_new_session=True,
    )  # fmt: skip
    up = Up(proc, {})
    assert proc.stderr is not None
    threading.Thread(target=_collect, args=(proc.stderr, up.log), daemon=True).start()
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line:
        raise AssertionError(f"atlas up exited with {proc.wait()}:\n" + "".join(up.log))
    up.info = json.loads(line)
    return up


def _collect(stream: object, lines: list[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        lines.append(line)


def descendants(pid: int) -> list[int]:
    """Every process below ``pid`` (children first, then theirs)."""
    found: list[int] = []
    todo = [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                kids = [int(p) for p in (task / "children").read_text().split()]
            except OSError:
                continue
            found += kids
            todo += kids
    return found


def fetch(data_dir: Path, url: str, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    """``atlas fetch URL -o OUT`` with the wallet and config ``atlas up`` made."""
    return subprocess.run(
        [*ATLAS, "fetch", url, "-o", str(out), *extra],
        env={**env(), "ATLAS_HOME": str(data_dir)}, capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip


def earnings(edge_dir: Path) -> dict[str, int]:
    """``atlas edge earnings --json`` of one edge: paid, redeemed, unredeemed (base units)."""
    done = subprocess.run(
        [*ATLAS, "edge", "earnings", "--data-dir", str(edge_dir), "--json"],
        env=env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    view = json.loads(done.stdout)
    return {k: int(view[k]) for k in ("paid", "redeemed", "unredeemed")}
