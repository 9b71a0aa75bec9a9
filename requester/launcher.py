"""``atlas up``: a whole local Atlas network as child processes on 127.0.0.1.

It starts a ledger with a faucet and N edges (the first is every edge's
tracker; each edge is a tracker too) and the browser proxy with its mobile
API, makes and funds a local wallet and the edges' payee accounts, writes
``config.json`` so that
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

    def __init__(self, name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.name = name
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)  # noqa: S603
        self.url = ""
        self.ready: dict[str, object] = {}

    def wait_ready(self) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            try:
                ready = json.loads(line)
            except ValueError:
                continue
            if isinstance(ready, dict) and ready.get("listening"):
                self.ready = ready
                self.url = str(ready["listening"])
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
@click.option("--proxy-port", default=8080, show_default=True, type=click.IntRange(0, 65535),
              help="the browser proxy's port; the mobile API listens on the next one")  # fmt: skip
@click.option(
    "--allow-private-origins", is_flag=True, help="let edges fetch from private addresses"
)
@click.option("--intercept", is_flag=True, help="the proxy opens HTTPS with its own CA")
def up(data_dir: Path, edge_count: int, proxy_port: int, allow_private_origins: bool,
       intercept: bool) -> None:  # fmt: skip
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
        api_port = proxy_port + 1 if proxy_port else 0
        argv = [*_atlas(), "proxy", "--port", str(proxy_port), "--api-port", str(api_port)]
        proxy = Child("proxy", argv + (["--intercept"] if intercept else []),
                      {**os.environ, "ATLAS_HOME": str(data_dir)})  # fmt: skip
        children.append(proxy)
        proxy.wait_ready()
        asyncio.run(_wait_healthy([ledger_url, *edges, str(proxy.ready["api"])]))
        click.echo(json.dumps({
            "proxy": proxy.url, "api": proxy.ready["api"],
            "api_token": (data_dir / "api_token").read_text().strip(),
            "edges": edges, "ledger": ledger_url, "ca_cert": proxy.ready.get("ca_cert"),
            "status": proxy.ready.get("status"), "data_dir": str(data_dir), "wallet": address,
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


async def _wait_healthy(urls: list[str]) -> None:
    """Every service answers ``/healthz`` with 200 before the endpoints are printed."""
    deadline = asyncio.get_running_loop().time() + READY_TIMEOUT
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:
        for url in urls:
            while True:
                try:
                    async with session.get(f"{url}/healthz") as resp:
                        if resp.status == 200:
                            break
                except (aiohttp.ClientError, TimeoutError):
                    pass
                if asyncio.get_running_loop().time() > deadline:
                    raise click.ClickException(f"{url} is not healthy")
                await asyncio.sleep(0.1)
