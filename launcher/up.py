"""``atlas up``: a whole local Atlas network as child processes on 127.0.0.1.

It starts a ledger with a faucet (the embedded ledger, or with ``--ledger tron``
the offline TRON node and its channel contract: launcher/up_ledger.py) and N
edges (the first is every edge's tracker; each edge is a tracker too) and the
browser proxy with its mobile API, makes and funds a local wallet and the
edges' payee accounts, writes ``config.json`` so that ``ATLAS_HOME=DIR atlas
fetch URL`` uses the same wallet, edges and ledger, and prints one JSON line of
endpoints. Its ports are chosen once and kept in ``DIR/network.json``
(launcher/local_network.py), so a second ``atlas up`` on the same data dir
resumes the same network at the same addresses. It supervises the children
(launcher/supervisor.py): one that dies is reported and restarted. Ctrl-C,
SIGTERM or SIGHUP stop the proxy, then the edges (they redeem what they
earned), then the ledger.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import click

from launcher.local_network import (
    FILE_NAME,
    HOST,
    NetworkPorts,
    NetworkSetupError,
    check_free,
    plan_ports,
    save_ports,
)
from launcher.supervisor import Child, ChildFailed, ChildSpec, Supervisor, say
from launcher.up_ledger import ATLAS, LEDGER_STAGE, UpLedger, fund, start_ledger
from launcher.up_settings import UpSettings
from requester import keystore
from requester.cli.options import settings_options
from requester.ledger_client import LedgerError
from requester.protocol import TronAddress
from requester.secret_file import write_secret
from requester.settings import write_config

READY_TIMEOUT = 60.0
LEDGER, EDGES, PROXY = LEDGER_STAGE, 1, 2
"""Stages: each starts after the one before and stops before it."""


@dataclass(frozen=True)
class Plan:
    data_dir: Path
    ports: NetworkPorts
    allow_private_origins: bool
    intercept: bool
    ledger: str = "embedded"
    dht: bool = False


@click.command("up")
@settings_options(UpSettings)
def up(settings: UpSettings) -> None:
    """Start a local ledger, edges and proxy; print their endpoints as one JSON line."""
    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        ports = plan_ports(data_dir, settings.edges, settings.proxy_port, settings.api_port)
        _check_ports(data_dir, ports, settings)
        plan = Plan(data_dir, ports, settings.allow_private_origins, settings.intercept,
                    settings.ledger, settings.dht)  # fmt: skip
        asyncio.run(_run(plan))
    except (NetworkSetupError, ChildFailed, LedgerError) as exc:
        raise click.ClickException(str(exc)) from None


def _check_ports(data_dir: Path, ports: NetworkPorts, settings: UpSettings) -> None:
    """Before anything starts, every port the network binds is checked: one some other
    process holds is named with the flag that sets it, or the file that keeps it."""
    kept = (f"is another `atlas up` running on {data_dir}? Stop it, or delete "
            f"{data_dir / FILE_NAME} to pick new ports")  # fmt: skip
    proxy_hint = "pass another --proxy-port (0 picks free ports and keeps them)"
    api_hint = "pass another --api-port (0: the proxy port + 1)"
    check_free([r for r in ports.roles() if r[0] not in ("proxy", "mobile API")], kept)
    check_free([("--proxy-port, the proxy", ports.proxy)],
               proxy_hint if settings.proxy_port else kept)  # fmt: skip
    check_free([("--api-port, the mobile API", ports.api)],
               api_hint if settings.api_port or settings.proxy_port else kept)  # fmt: skip


async def _run(plan: Plan) -> None:
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(sig, stopping.set)
    async with Supervisor(stopping) as supervisor:
        starting = asyncio.ensure_future(_start(supervisor, plan))
        asked = asyncio.ensure_future(stopping.wait())
        await asyncio.wait({starting, asked}, return_when=asyncio.FIRST_COMPLETED)
        asked.cancel()
        if not starting.done():
            starting.cancel()
            await asyncio.wait({starting})
            raise click.ClickException("stopped before the network was up")
        click.echo(json.dumps(starting.result()))
        sys.stdout.flush()
        await stopping.wait()
        say("stopping: the proxy, the edges (they redeem what they earned), then the ledger")
    say("stopped")


async def _start(supervisor: Supervisor, plan: Plan) -> dict[str, object]:
    data_dir, ports = plan.data_dir, plan.ports
    ledger = await start_ledger(supervisor, plan.ledger, data_dir, ports.ledger)
    specs = []
    for i, edge in enumerate(ports.edges):
        argv = [*ATLAS, "edge", "serve", "--host", HOST, "--port", str(edge.port),
                "--tunnel-port", str(edge.tunnel_port),
                "--data-dir", str(data_dir / f"edge{i + 1}"), "--ledger", ledger.url]  # fmt: skip
        argv += [f"--tracker=http://{HOST}:{ports.edges[0].port}"] if i else []
        argv += ["--allow-private-origins"] if plan.allow_private_origins else []
        argv += dht_args(ports, i) if plan.dht else []
        held = (edge.port, edge.tunnel_port, *([edge.dht_port] if plan.dht else []))
        specs.append(ChildSpec(f"edge{i + 1}", argv, EDGES, held, env=ledger.edge_env))
    first = await supervisor.start(specs[0])  # the others' tracker: up before they announce
    edges = [first.url, *[e.url for e in await _start_together(supervisor, specs[1:])]]
    address = await _fund(data_dir, ledger, edges)
    bootstrap = str(first.ready.get("dht", "")) if plan.dht else ""
    write_config(data_dir, edges, ledger.url, bootstrap)
    argv = [*ATLAS, "proxy", "--host", HOST, "--port", str(ports.proxy), "--api-port",
            str(ports.api), "--ledger", ledger.url, *[f"--edge={e}" for e in edges]]  # fmt: skip
    argv += ["--bootstrap", bootstrap] if bootstrap else []
    proxy = await supervisor.start(ChildSpec(
        "proxy", argv + (["--intercept"] if plan.intercept else []), PROXY,
        (ports.proxy, ports.api), env={"ATLAS_HOME": str(data_dir)},
    ))  # fmt: skip
    await _wait_healthy([ledger.node, *edges, str(proxy.ready["api"])])
    save_ports(data_dir, ports)
    return {
        "proxy": proxy.url, "api": proxy.ready["api"],
        "api_token": (data_dir / "api_token").read_text().strip(),
        "edges": edges, "ledger": ledger.url, "ca_cert": proxy.ready.get("ca_cert"),
        "status": proxy.ready.get("status"), "data_dir": str(data_dir), "wallet": address,
        **ledger.facts, **({"dht": bootstrap} if bootstrap else {}),
    }  # fmt: skip


def dht_args(ports: NetworkPorts, index: int) -> list[str]:
    """``atlas up --dht``: edge ``index`` runs its DHT node on its kept port, allowing
    loopback nodes; the first edge is the others' bootstrap node and has none itself.
    (libtorrent never adds its bootstrap nodes to its routing table: two edges each
    bootstrapping from the other would list nobody to a requester. A restarted first edge
    finds the others from the nodes kept in its data dir, and they keep pinging it.)"""
    own, first = ports.edges[index], ports.edges[0]
    argv = ["--dht", "--dht-allow-private", "--torrent-listen", f"{HOST}:{own.dht_port}"]
    return argv + (["--dht-bootstrap", f"{HOST}:{first.dht_port}"] if index else [])


async def _start_together(supervisor: Supervisor, specs: list[ChildSpec]) -> list[Child]:
    try:
        async with asyncio.TaskGroup() as tasks:
            started = [tasks.create_task(supervisor.start(spec)) for spec in specs]
    except* ChildFailed as failed:
        raise failed.exceptions[0] from None
    return [task.result() for task in started]


async def _fund(data_dir: Path, ledger: UpLedger, edges: list[str]) -> str:
    """Make the local wallet if needed; fund it and the edges' payee accounts."""
    wallet = data_dir / "wallet.json"
    secret_file = data_dir / "passphrase"
    fresh = not wallet.exists()
    if fresh:
        passphrase = os.environ.get(keystore.PASSPHRASE_ENV) or secrets.token_urlsafe(24)
        write_secret(secret_file, passphrase.encode())
        keystore.create(wallet, passphrase)
    address = TronAddress.parse(keystore.address_of(wallet))
    async with aiohttp.ClientSession() as session:
        payees = []
        for edge in edges:
            async with session.get(f"{edge}/v1/info") as resp:
                payees.append(TronAddress.parse((await resp.json())["payee"]))
        await fund(ledger, session, address, payees)
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
