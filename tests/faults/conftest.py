"""Real processes with a fault proxy (tests/fault_proxy.py) on one link between them.

Each test arms one fault, runs ``atlas fetch`` as a user would and checks how it
ends: the documented error or a retry that completes, and always within a bound
(``BOUND``), never a hang.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.processes import Running, start_ledger, start_origin, start_program
from tests.sdk.conftest import Home

FAULT_PROXY = Path(__file__).resolve().parents[1] / "fault_proxy.py"
BOUND = 75.0
"""Longest any faulted fetch may take: the slowest internal timeouts (a 30 s socket read,
the 60 s no-progress limit) plus slack; the point is that it ends."""
CHUNK = 256 * 1024


@dataclass
class FaultProxy:
    running: Running
    fronted: str = ""
    """The program whose clients go through this proxy (for tests that need its URL)."""

    @property
    def url(self) -> str:
        return self.running.url

    def arm(self, mode: str, *, direction: str = "down", after: int = 0, count: int = 1,
            delay: float = 0.2, every: int = 65536) -> None:  # fmt: skip
        spec = {"mode": mode, "direction": direction, "after": after, "count": count,
                "delay": delay, "every": every}  # fmt: skip
        self._call("POST", spec)

    def clear(self) -> None:
        self._call("DELETE", None)

    def stats(self) -> dict[str, Any]:
        return self._call("GET", None, "stats")

    def point_at(self, upstream: str) -> None:
        self._call("PUT", {"upstream": upstream}, "upstream")

    def _call(self, method: str, body: object, path: str = "fault") -> dict[str, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"{self.running.ready['control']}/{path}", data=data, method=method,
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=10) as resp:  # loopback only
            answer: dict[str, Any] = json.loads(resp.read())
        return answer


def start_fault_proxy(upstream: str = "127.0.0.1:9") -> FaultProxy:
    """A fault proxy in front of ``upstream`` (or of nothing yet: see ``point_at``)."""
    return FaultProxy(start_program([sys.executable, str(FAULT_PROXY), "--upstream", upstream]))


@pytest.fixture
def fault_proxies() -> Iterator[list[FaultProxy]]:
    """Fault proxies a test starts with :func:`start_fault_proxy`; stopped after it."""
    started: list[FaultProxy] = []
    yield started
    for proxy in started:
        proxy.running.stop()


@pytest.fixture(scope="package")
def origin() -> Iterator[Running]:
    running = start_origin()
    yield running
    running.stop()


@pytest.fixture(scope="package")
def ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start_ledger(tmp_path_factory.mktemp("ledger"))
    yield running
    running.stop()


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    seconds: float


def fetch(home: Home, url: str, out: Path, *extra: str) -> Outcome:
    """``atlas fetch URL -o OUT`` as a user runs it, timed; killed past ``BOUND``."""
    started = time.monotonic()
    try:
        result = home.atlas("fetch", url, "-o", str(out), "--json", *extra, timeout=BOUND)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"atlas fetch {url} still running after {BOUND} s: it hangs") from exc
    return Outcome(result.returncode, result.stdout, result.stderr, time.monotonic() - started)


class DidNotComplete(AssertionError):
    """A fetch expected to complete (after a retry) ended in an error instead."""


def completed(outcome: Outcome) -> None:
    if outcome.code != 0:
        raise DidNotComplete(outcome.stderr)
