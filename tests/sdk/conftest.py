"""Real processes for SDK tests: an origin, a ledger with faucet, three paid edges,
and a funded wallet in a fresh ``ATLAS_HOME`` per test."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from requester import keystore
from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, TronAddress
from requester.settings import write_config
from tests.processes import Running, start_edge

PASSPHRASE = "sdk-tests-passphrase"
FUNDS = 50 * BTT_LOCAL.one


@pytest.fixture(scope="module")
def edges(tmp_path_factory: pytest.TempPathFactory, ledger: Running) -> Iterator[list[Running]]:
    """Three edges with no free allowance; the first is the others' tracker."""
    started: list[Running] = []
    try:
        for i in range(3):
            tracker = [f"--tracker={started[0].url}"] if started else []
            data = tmp_path_factory.mktemp(f"edge{i}")
            started.append(start_edge(data, ledger.url, "--free-mib", "0", *tracker))
        asyncio.run(fund_edges(ledger.url, [e.url for e in started]))
        yield started
    finally:
        for edge in started:
            edge.stop()


@dataclass
class Home:
    """A requester's ATLAS_HOME: funded wallet, config naming the edges and ledger."""

    path: Path
    address: TronAddress
    edges: list[str]
    ledger: str

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "ATLAS_HOME": str(self.path), "ATLAS_PASSPHRASE": PASSPHRASE}

    def atlas(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "requester.cli", *args],
            env=self.env, capture_output=True, text=True, timeout=timeout, check=False,
        )  # fmt: skip

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "requester.cli", *args],
            env=self.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


def make_home(path: Path, edges: list[str], ledger: str, funds: int = FUNDS) -> Home:
    keys = keystore.create(path / "wallet.json", PASSPHRASE, fast=True)
    write_config(path, edges, ledger)
    if funds:
        asyncio.run(_faucet(ledger, keys.payer.address, funds))
    return Home(path, keys.payer.address, edges, ledger)


async def fund_edges(ledger: str, edges: list[str]) -> None:
    """Edges pay each other to replicate, so each payee account gets funds."""
    async with aiohttp.ClientSession() as session:
        for edge in edges:
            async with session.get(f"{edge}/v1/info") as resp:
                payee = TronAddress.parse((await resp.json())["payee"])
            await LedgerClient(ledger, session).faucet(payee, FUNDS)


async def _faucet(ledger: str, address: TronAddress, amount: int) -> None:
    async with aiohttp.ClientSession() as session:
        await LedgerClient(ledger, session).faucet(address, amount)


@pytest.fixture
def home(tmp_path: Path, edges: list[Running], ledger: Running) -> Home:
    return make_home(tmp_path / "home", [e.url for e in edges], ledger.url)


def summary(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)
