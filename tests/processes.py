"""Start real Atlas programs as child processes on 127.0.0.1, and stop them.

Every server prints ``{"listening": URL}`` on stdout when ready; tests bind
port 0 and read that line. The fixture that starts a process stops it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ATLAS = str(Path(sys.executable).with_name("atlas"))
READY_TIMEOUT = 30.0


@dataclass
class Running:
    proc: subprocess.Popen[str]
    url: str

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        """Stop the process (SIGTERM by default) and return its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill9(self) -> None:
        self.stop(signal.SIGKILL)


def start(args: Sequence[str], env: dict[str, str] | None = None) -> Running:
    """Start ``atlas *args`` and wait for its ready line."""
    proc = subprocess.Popen(
        [ATLAS, *args],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        try:
            url = json.loads(line).get("listening")
        except ValueError:
            continue
        if url:
            return Running(proc, url)
    proc.kill()
    proc.wait()
    raise RuntimeError(f"atlas {' '.join(args)} did not become ready (exit {proc.returncode})")


def start_ledger(data_dir: Path, *, faucet: bool = True, env: dict[str, str] | None = None) -> Running:
    args = ["ledger", "serve", "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir)]
    return start([*args, "--faucet"] if faucet else args, env)
