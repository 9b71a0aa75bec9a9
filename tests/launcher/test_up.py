"""``atlas up`` (what ``make run`` calls): the whole system as child processes, at addresses
that stay the same across restarts."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

from tests.launcher.atlas_up import ATLAS, descendants, env, fetch, start_up
from tests.origin_server import pattern
from tests.processes import Running, start_program
from tests.proxy.conftest import curl

KEYS = {"proxy", "api", "api_token", "edges", "ledger", "ca_cert", "status", "data_dir"}
ADDRESSES = ("proxy", "api", "edges", "ledger")


def command_line(pid: int) -> list[str]:
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]


def test_up_serves_and_a_restart_keeps_its_wallet_and_addresses(
    origin: Running, tmp_path: Path
) -> None:
    up = start_up(tmp_path / "atlas")
    try:
        info = up.info
        assert set(info) >= KEYS
        assert len(up.edges) == 2
        url = f"{origin.url}/bytes/300000?t=up"
        through_proxy = curl("-x", str(info["proxy"]), url)
        assert through_proxy.stdout == pattern(0, 300000)
        api = curl("-H", f"Authorization: Bearer {info['api_token']}",
                   f"{info['api']}/v1/fetch?url={quote(url, safe='')}")  # fmt: skip
        assert api.stdout == pattern(0, 300000)
        status = json.loads(curl("-H", f"Authorization: Bearer {info['api_token']}",
                                 f"{info['api']}/status.json").stdout)  # fmt: skip
        assert status["wallet"] and status["balance"].endswith("BTT")
        fetched = fetch(tmp_path / "atlas", url, tmp_path / "out")
        assert fetched.returncode == 0, fetched.stderr
        assert (tmp_path / "out").read_bytes() == pattern(0, 300000)
        argvs = {a[3]: a for a in map(command_line, descendants(up.proc.pid))}  # by command
    finally:
        up.proc.send_signal(signal.SIGTERM)
        assert up.wait() == 0
    ledger = start_program(argvs["ledger"])  # the same command lines, typed by hand
    try:
        assert ledger.url == info["ledger"]
        edge = start_program(argvs["edge"])
        assert edge.url in up.edges
        assert edge.stop() == 0
    finally:
        assert ledger.stop() == 0
    again = start_up(tmp_path / "atlas")  # a second start resumes the same network
    try:
        assert again.info["wallet"] == info["wallet"]
        assert {k: again.info[k] for k in ADDRESSES} == {k: info[k] for k in ADDRESSES}
    finally:
        again.proc.send_signal(signal.SIGTERM)
        assert again.wait() == 0


def test_a_port_in_use_is_named(tmp_path: Path) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        flag = up_fails(tmp_path / "a", "--proxy-port", str(port))
        assert f"port 127.0.0.1:{port} (--proxy-port, the proxy) is in use" in flag
        assert "--proxy-port" in flag
        kept = tmp_path / "b"
        kept.mkdir()
        (kept / "network.json").write_text(json.dumps({
            "ledger": port, "edges": [{"port": port + 1, "tunnel_port": port + 2}],
            "proxy": port + 3, "api": port + 4,
        }))  # fmt: skip
        in_file = up_fails(kept, "--proxy-port", "0")
        assert f"port 127.0.0.1:{port} (ledger) is in use" in in_file
        assert "network.json" in in_file


def up_fails(data_dir: Path, *extra: str) -> str:
    """``atlas up`` that must fail at once; its error message."""
    done = subprocess.run(
        [*ATLAS, "up", "--data-dir", str(data_dir), "--edges", "1", *extra],
        env=env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    return done.stderr
