"""Real processes for proxy tests: origin, ledger, paid edges, a funded wallet and
``atlas proxy`` on top; curl is the client."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.processes import Running, start_program, start_proxy
from tests.sdk.conftest import PASSPHRASE, Home, edges, make_home

__all__ = ["edges"]


@pytest.fixture(scope="module")
def proxy_home(tmp_path_factory: pytest.TempPathFactory, edges: list[Running],
               ledger: Running) -> Home:  # fmt: skip
    return make_home(tmp_path_factory.mktemp("proxy-home"), [e.url for e in edges], ledger.url)


@pytest.fixture(scope="module")
def proxy(proxy_home: Home) -> Iterator[Running]:
    running = start_proxy(proxy_home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    yield running
    running.stop()


@pytest.fixture(scope="module")
def logged_proxy(tmp_path_factory: pytest.TempPathFactory, edges: list[Running],
                 ledger: Running) -> Iterator[tuple[Running, Running, Home]]:  # fmt: skip
    """A proxy whose only edge is ``edges[0]`` behind a logging reverse proxy
    (tests/proxy/request_log.py): ``(proxy, log, home)``."""
    log = start_program([sys.executable, str(Path(__file__).with_name("request_log.py")),
                         "--upstream", edges[0].url])  # fmt: skip
    home = make_home(tmp_path_factory.mktemp("logged"), [log.url], ledger.url)
    proxy = start_proxy(home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    yield proxy, log, home
    proxy.stop()
    log.stop()


async def logged(session: aiohttp.ClientSession, log: Running, prefix: str) -> int:
    """How many requests whose path starts with ``prefix`` the logging proxy has passed on."""
    async with session.get(f"{log.url}/_log") as r:
        doc: dict[str, Any] = await r.json()
    return sum(1 for _, _, path in doc["log"] if path.startswith(prefix))


async def send_connect(proxy: Running, target: str) -> tuple[bytes, asyncio.StreamReader,
                                                              asyncio.StreamWriter]:  # fmt: skip
    """CONNECT through the proxy; the answer's head and the open connection."""
    host, port = proxy.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
    async with asyncio.timeout(30):
        head = await reader.readuntil(b"\r\n\r\n")
    return head, reader, writer


def curl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("curl")
    assert exe, "curl is needed (Debian package curl)"
    return subprocess.run([exe, "-sS", *args], capture_output=True, timeout=timeout,
                          check=False)  # fmt: skip


def api(proxy: Running) -> str:
    return str(proxy.ready["api"])


def token(home: Home) -> str:
    return (home.path / "api_token").read_text().strip()


def bearer(home: Home) -> list[str]:
    """curl arguments that send the API token: the status pages and the mobile API need it."""
    return ["-H", f"Authorization: Bearer {token(home)}"]


def home_path(home: Home) -> Path:
    return home.path
