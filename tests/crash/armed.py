"""Processes started with a failpoint armed, and the proof that they died at it.

A process armed with ``point=N`` (``requester/failpoints.py``) SIGKILLs itself
the Nth time it reaches that step. Nothing else in these tests sends SIGKILL,
so an exit status of -9 is the failpoint firing.
"""

from __future__ import annotations

import random
import signal
import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp

from requester.failpoints import ENV
from requester.ledger_client import LedgerClient
from tests.processes import Running, start, start_edge_env

RUNS = 20
"""Kills per crash point."""


@dataclass(frozen=True)
class Arming:
    """Where the next process dies: the ``count``-th time it reaches ``point``."""

    point: str
    count: int

    @property
    def env(self) -> dict[str, str]:
        return {ENV: f"{self.point}={self.count}"}


def schedule(rng: random.Random, point: str, most: int, runs: int = RUNS) -> list[Arming]:
    """``runs`` kills at ``point``, each at a random hit from 1 to ``most``."""
    return [Arming(point, rng.randint(1, most)) for _ in range(runs)]


def env_of(arming: Arming | None) -> dict[str, str]:
    return {} if arming is None else arming.env


def start_ledger_at(data_dir: Path, url: str, env: dict[str, str] | None = None) -> Running:
    """The ledger on ``data_dir`` at the port of ``url`` (so edges keep their --ledger)."""
    port = str(urlsplit(url).port or 0)
    args = ["ledger", "serve", "--host", "127.0.0.1", "--port", port, "--data-dir", str(data_dir)]
    return start([*args, "--faucet"], env)


@asynccontextmanager
async def client_of(running: Running) -> AsyncIterator[LedgerClient]:
    """A client of ``running`` on a fresh session: no pooled connection outlives the
    process it went to."""
    async with aiohttp.ClientSession() as http:
        yield LedgerClient(running.url, http)


def start_edge_armed(data_dir: Path, ledger_url: str, arming: Arming | None) -> Running:
    """A paid-only edge (no free allowance) on ``data_dir``, armed or not."""
    return start_edge_env(data_dir, ledger_url, env_of(arming), "--free-mib", "0")


def died_at_failpoint(proc: subprocess.Popen[str], arming: Arming, timeout: float = 60.0) -> None:
    """Wait for ``proc`` and check the failpoint killed it (it did not exit on its own)."""
    try:
        code = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        raise AssertionError(f"{arming} was never reached: the process kept running") from None
    finally:
        if proc.stdout is not None:
            proc.stdout.close()
    assert code == -signal.SIGKILL, f"{arming}: exited {code}, not killed at the failpoint"
