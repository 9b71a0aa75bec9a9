"""``atlas up``: a whole local Atlas network as child processes on 127.0.0.1.

It starts a ledger with a faucet and N edges (the first is every edge's
tracker; each edge is a tracker too), makes and funds a local wallet and
the edges' payee accounts, writes ``config.json`` so that
``ATLAS_HOME=DIR atlas fetch URL`` uses the same wallet and edges, prints one
JSON line of endpoints, and stops everything (edges redeem first) on Ctrl-C
or SIGTERM. A second ``atlas up`` on the same data dir resumes its state.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import click

from requester import keystore
from requester.ledger_client import LedgerClient
from requester.protocol import BTT_LOCAL, TronAddress
from requester.settings import write_config

READY_TIMEOUT = 60.0
WALLET_FUNDS = 1000 * BTT_LOCAL.one
EDGE_FUNDS = 100 * BTT_LOCAL.one


class Child:
    """A child process that prints ``{"listening": URL}`` when ready."""

    def __init__(self, name: str, argv: list[str]) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)  # noqa: S603 (our argv)
        self.url = ""

    def wait_ready(self) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                url = json.loads(line).get("listening")
            except ValueError:
                continue
            if url:
                self.url = str(url)
                return self.url
        raise click.ClickException(f"{self.name} exited before it was ready")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def _atlas() -> list[str]:
    return [sys.executable, "-m", "requester.cli"]


@click.command("up")
@click.option("--data-dir", default="./atlas-data", show_default=True,
              type=click.Path(file_okay=False, path_type=Path))  # fmt: skip
@click.option("--edges", "edge_count", default=3, show_default=True, type=click.IntRange(1, 16))
@click.option("--proxy-port", default=8080, show_default=True, type=int,
              help="the browser proxy's port (the proxy arrives with its own issue)")  # fmt: skip
@click.option(
    "--allow-private-origins", is_flag=True, help="let edges fetch from private addresses"
)
def up(data_dir: Path, edge_count: int, proxy_port: int, allow_private_origins: bool) -> None:
    """Start a local ledger and edges; print their endpoints as one JSON line."""
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    children: list[Child] = []
    stop = _install_stop_handler()
    try:
        ledger = Child("ledger", [*_atlas(), "ledger", "serve", "--port", "0",
                                  "--data-dir", str(data_dir / "ledger"), "--faucet"])  # fmt: skip
        children.append(ledger)
        ledger_url = ledger.wait_ready()
        edges: list[str] = []
        for i in range(edge_count):
            argv = [*_atlas(), "edge", "serve", "--port", "0", "--data-dir",
                    str(data_dir / f"edge{i + 1}"), "--ledger", ledger_url]  # fmt: skip
            argv += [f"--tracker={edges[0]}"] if edges else []
            argv += ["--allow-private-origins"] if allow_private_origins else []
            edge = Child(f"edge{i + 1}", argv)
            children.append(edge)
            edges.append(edge.wait_ready())
        address = asyncio.run(_fund(data_dir, ledger_url, edges))
        write_config(data_dir, edges, ledger_url)
        click.echo(json.dumps({
            "proxy": None, "api": None, "api_token": None, "edges": edges, "ledger": ledger_url,
            "ca_cert": None, "status": f"{edges[0]}/", "data_dir": str(data_dir),
            "wallet": address, "proxy_port": proxy_port,
        }))  # fmt: skip
        sys.stdout.flush()
        stop.wait()
    finally:
        for child in reversed(children):
            child.stop()


def _install_stop_handler() -> _Stop:
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop.set)
    signal.signal(signal.SIGINT, stop.set)
    return stop


class _Stop:
    def __init__(self) -> None:
        self._read, self._write = os.pipe()

    def set(self, *_: object) -> None:
        os.write(self._write, b"x")

    def wait(self) -> None:
        os.read(self._read, 1)


async def _fund(data_dir: Path, ledger_url: str, edges: list[str]) -> str:
    """Make the local wallet if needed; fund it and the edges' payee accounts once."""
    wallet = data_dir / "wallet.json"
    secret_file = data_dir / "passphrase"
    fresh = not wallet.exists()
    if fresh:
        passphrase = os.environ.get(keystore.PASSPHRASE_ENV) or secrets.token_urlsafe(24)
        fd = os.open(secret_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(passphrase)
        keystore.create(wallet, passphrase)
    address = TronAddress.parse(keystore.address_of(wallet))
    async with aiohttp.ClientSession() as session:
        ledger = LedgerClient(ledger_url, session)
        if await ledger.balance(address) == 0:
            await ledger.faucet(address, WALLET_FUNDS)
        for edge in edges:
            async with session.get(f"{edge}/v1/info") as resp:
                payee = TronAddress.parse((await resp.json())["payee"])
            if await ledger.balance(payee) == 0:
                await ledger.faucet(payee, EDGE_FUNDS)
    return str(address)
