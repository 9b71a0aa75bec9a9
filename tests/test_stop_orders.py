"""requester/stop_orders.py in real servers: under ``atlas up`` (``ATLAS_UP_CHILD=1``, stdin
the launcher's pipe) the ledger outlives SIGINT/SIGTERM and stops on the launcher's ``stop``
line; an edge stops when the launcher's pipe closes; by hand, signals stop them as before."""

from __future__ import annotations

import json
import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from requester.stop_orders import STOP_LINE, UP_CHILD_ENV
from tests.launcher.atlas_up import ATLAS, env
from tests.processes import Running, start_ledger


def start_child(argv: list[str], *, under_up: bool) -> tuple[subprocess.Popen[bytes], str]:
    """A server as ``atlas up`` starts it (or by hand); its URL once ready."""
    proc = subprocess.Popen(
        [*ATLAS, *argv], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        env={**env(), UP_CHILD_ENV: "1"} if under_up else env(), start_new_session=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"{argv[0]} exited with {proc.wait()}"
    return proc, str(json.loads(line)["listening"])


def healthy(url: str) -> bool:
    with urllib.request.urlopen(f"{url}/healthz", timeout=10) as resp:
        return bool(resp.status == 200)


def ledger_argv(data_dir: Path) -> list[str]:
    return ["ledger", "serve", "--port", "0", "--data-dir", str(data_dir), "--faucet"]


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Running]:
    running = start_ledger(tmp_path / "ledger")
    yield running
    running.stop()


def test_a_ledger_under_atlas_up_outlives_signals_until_the_stop_line(tmp_path: Path) -> None:
    proc, url = start_child(ledger_argv(tmp_path / "ledger"), under_up=True)
    try:
        proc.send_signal(signal.SIGTERM)
        proc.send_signal(signal.SIGINT)
        time.sleep(0.3)  # let the signals be handled before the ledger is asked
        assert healthy(url)
        assert proc.poll() is None
        assert proc.stdin is not None
        proc.stdin.write(STOP_LINE)
        proc.stdin.close()
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_the_same_ledger_command_line_by_hand_stops_on_sigterm(tmp_path: Path) -> None:
    proc, url = start_child(ledger_argv(tmp_path / "ledger"), under_up=False)
    try:
        assert healthy(url)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()


def test_an_edge_under_atlas_up_stops_when_the_launchers_pipe_closes(
    ledger: Running, tmp_path: Path
) -> None:
    argv = ["edge", "serve", "--port", "0", "--data-dir", str(tmp_path / "edge"),
            "--ledger", ledger.url, "--no-torrents"]  # fmt: skip
    proc, url = start_child(argv, under_up=True)
    try:
        assert healthy(url)
        assert proc.stdin is not None
        proc.stdin.close()  # what the launcher's death does
        assert proc.wait(30) == 0
    finally:
        proc.kill()
        proc.wait()
