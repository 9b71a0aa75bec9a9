"""``atlas up`` (what ``make run`` calls): the whole system as child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.origin_server import pattern
from tests.processes import Running, start_origin
from tests.proxy.conftest import curl

KEYS = {"proxy", "api", "api_token", "edges", "ledger", "ca_cert", "status", "data_dir"}


@pytest.fixture(scope="module")
def origin() -> Iterator[Running]:
    running = start_origin()
    yield running
    running.stop()


def up(data_dir: Path) -> tuple[subprocess.Popen[str], dict[str, object]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "requester.cli", "up", "--data-dir", str(data_dir), "--edges", "2",
         "--proxy-port", "0", "--allow-private-origins"],
        stdout=subprocess.PIPE, text=True, env=_env(),
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line, f"atlas up exited with {proc.wait()}"
    return proc, json.loads(line)


def _env() -> dict[str, str]:
    """The user's environment minus a passphrase: ``atlas up`` makes and keeps its own."""
    return {k: v for k, v in os.environ.items() if k != "ATLAS_PASSPHRASE"}


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(60)


def test_up_starts_everything_and_stops_cleanly(origin: Running, tmp_path: Path) -> None:
    proc, info = up(tmp_path / "atlas")
    try:
        assert set(info) >= KEYS
        assert len(info["edges"]) == 2  # type: ignore[arg-type]
        url = f"{origin.url}/bytes/300000?t=up"
        through_proxy = curl("-x", str(info["proxy"]), url)
        assert through_proxy.stdout == pattern(0, 300000)
        api = curl("-H", f"Authorization: Bearer {info['api_token']}",
                   f"{info['api']}/v1/fetch?url={quote(url, safe='')}")  # fmt: skip
        assert api.stdout == pattern(0, 300000)
        status = json.loads(curl(f"{info['api']}/status.json").stdout)
        assert status["wallet"] and status["balance"].endswith("BTT")
        fetched = subprocess.run(
            [sys.executable, "-m", "requester.cli", "fetch", url],
            env={**_env(), "ATLAS_HOME": str(info["data_dir"])},
            capture_output=True, timeout=120, check=False,
        )  # fmt: skip
        assert fetched.stdout == pattern(0, 300000).decode("latin-1").encode("latin-1")
    finally:
        assert stop(proc) == 0
    again, info2 = up(tmp_path / "atlas")  # a second start resumes the same wallet
    try:
        assert json.loads(curl(f"{info2['api']}/status.json").stdout)["wallet"] == status["wallet"]
    finally:
        assert stop(again) == 0
