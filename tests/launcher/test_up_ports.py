"""``atlas up --api-port`` (issue 19) and the check of every port it binds before it starts
anything: a port held by another process is named with the flag that sets it."""

from __future__ import annotations

import json
import signal
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from launcher.local_network import port_free
from tests.launcher.atlas_up import start_up
from tests.launcher.test_up import up_fails


@contextmanager
def held(port: int = 0) -> Iterator[int]:
    """A listening socket on 127.0.0.1 (a free port by default); its port."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        yield holder.getsockname()[1]


def free_pair() -> int:
    """A port P with P + 1 free too, neither held by anyone now."""
    while True:
        with held() as port:
            pass
        if port < 65535 and port_free(port) and port_free(port + 1):
            return port


def nothing_started(data_dir: Path) -> bool:
    """No child ran: the ledger's and edges' folders and network.json are not there."""
    return not any(p.name.startswith(("ledger", "edge", "network")) for p in data_dir.iterdir())


def test_a_held_api_port_is_named_with_its_flag(tmp_path: Path) -> None:
    with held() as port:
        message = up_fails(tmp_path / "a", "--proxy-port", "0", "--api-port", str(port))
    assert f"port 127.0.0.1:{port} (--api-port, the mobile API) is in use" in message
    assert "pass another --api-port" in message
    assert nothing_started(tmp_path / "a")


def test_the_default_api_port_is_the_proxy_port_plus_one(tmp_path: Path) -> None:
    proxy = free_pair()
    with held(proxy + 1):
        message = up_fails(tmp_path / "b", "--proxy-port", str(proxy))
    assert f"port 127.0.0.1:{proxy + 1} (--api-port, the mobile API) is in use" in message
    assert nothing_started(tmp_path / "b")


def test_a_held_edge_port_names_the_file_that_keeps_it(tmp_path: Path) -> None:
    kept = tmp_path / "c"
    kept.mkdir()
    ledger, proxy = free_pair(), free_pair()
    with held() as edge:
        (kept / "network.json").write_text(json.dumps({
            "ledger": ledger, "edges": [{"port": edge, "tunnel_port": ledger + 1}],
            "proxy": proxy, "api": proxy + 1,
        }))  # fmt: skip
        message = up_fails(kept, "--proxy-port", "0")
    assert f"port 127.0.0.1:{edge} (edge1) is in use" in message
    assert "network.json" in message


def test_up_serves_the_api_on_the_port_asked(tmp_path: Path) -> None:
    api = free_pair()
    up = start_up(tmp_path / "d", "--api-port", str(api), edges=1)
    try:
        assert up.info["api"] == f"http://127.0.0.1:{api}"
        with urllib.request.urlopen(f"http://127.0.0.1:{api}/healthz", timeout=10) as resp:
            assert resp.status == 200
        kept = json.loads((tmp_path / "d" / "network.json").read_text())
        assert kept["api"] == api
    finally:
        up.proc.send_signal(signal.SIGTERM)
        assert up.wait() == 0
