"""Real processes for proxy tests: origin, ledger, paid edges, a funded wallet and
``atlas proxy`` on top; curl is the client."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import Running, start_proxy
from tests.sdk.conftest import PASSPHRASE, Home, edges, ledger, make_home, origin

__all__ = ["edges", "ledger", "origin"]


@pytest.fixture(scope="module")
def proxy_home(tmp_path_factory: pytest.TempPathFactory, edges: list[Running],
               ledger: Running) -> Home:  # fmt: skip
    return make_home(tmp_path_factory.mktemp("proxy-home"), [e.url for e in edges], ledger.url)


@pytest.fixture(scope="module")
def proxy(proxy_home: Home) -> Iterator[Running]:
    running = start_proxy(proxy_home.path, env={"ATLAS_PASSPHRASE": PASSPHRASE})
    yield running
    running.stop()


def curl(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    exe = shutil.which("curl")
    assert exe, "curl is needed (Debian package curl)"
    return subprocess.run([exe, "-sS", *args], capture_output=True, timeout=timeout,
                          check=False)  # fmt: skip


def api(proxy: Running) -> str:
    return str(proxy.ready["api"])


def token(home: Home) -> str:
    return (home.path / "api_token").read_text().strip()


def home_path(home: Home) -> Path:
    return home.path
