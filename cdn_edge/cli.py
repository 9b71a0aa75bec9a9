"""``atlas edge``: run an edge node and see what it earned."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path

import click
from aiohttp import web

from cdn_edge.config import EdgeConfig
from cdn_edge.serving import serve
from requester.cli.amounts import btt
from requester.cli.listener_options import listener_options
from requester.listener_limits import ListenerLimits
from requester.protocol import BTT_LOCAL, format_amount


def _positive_btt(ctx: click.Context, param: click.Parameter, value: str) -> int:
    amount = btt(ctx, param, value)
    if amount <= 0:
        raise click.BadParameter("must be more than 0 BTT")
    return amount


@click.group()
def edge() -> None:
    """An edge node: fetch for requesters, serve signed chunks, earn BTT."""


@edge.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ATLAS_HOST")
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port")
@click.option(
    "--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    envvar="ATLAS_DATA_DIR",
)  # fmt: skip
@click.option("--ledger", "ledger_url", required=True, envvar="ATLAS_LEDGER", help="ledger URL")
@click.option("--tracker", "trackers", multiple=True, help="tracker URL to announce to (repeat)")
@click.option("--public-url", envvar="ATLAS_PUBLIC_URL", help="URL others reach this edge at")
@click.option(
    "--price", default="0.001", show_default=True, callback=btt, envvar="ATLAS_PRICE",
    help="price per MiB sent on the wire, in BTT",
)  # fmt: skip
@click.option(
    "--free-mib", default=4.0, show_default=True, type=float, envvar="ATLAS_FREE_MIB",
    help="free allowance per requester per 10 minutes, in MiB (0 turns it off)",
)  # fmt: skip
@click.option(
    "--store-cap-gib", default=10.0, show_default=True, type=float, help="chunk store size cap"
)
@click.option(
    "--allow-private-origins", is_flag=True,
    help="allow origins on loopback/private addresses and any port (tests, local networks)",
)  # fmt: skip
@click.option(
    "--tunnel-port", default=0, show_default=True, type=click.IntRange(0, 65535),
    envvar="ATLAS_TUNNEL_PORT", help="port of the CONNECT tunnel listener on --host (0: any free)",
)  # fmt: skip
@click.option("--no-tunnel", is_flag=True, envvar="ATLAS_NO_TUNNEL", help="run no tunnel listener")
@click.option(
    "--max-tunnels-per-client", default=64, show_default=True, type=click.IntRange(1),
    envvar="ATLAS_MAX_TUNNELS_PER_CLIENT", help="open tunnels per client address",
)  # fmt: skip
@click.option(
    "--max-tunnels", default=1024, show_default=True, type=click.IntRange(1),
    envvar="ATLAS_MAX_TUNNELS", help="open tunnels in all",
)  # fmt: skip
@click.option(
    "--tunnel-pay-timeout", default=30.0, show_default=True, type=click.FloatRange(min=0.1),
    envvar="ATLAS_TUNNEL_PAY_TIMEOUT",
    help="seconds a tunnel waits for payment once its paid bytes are used up",
)  # fmt: skip
@click.option(
    "--tunnel-idle-timeout", default=300.0, show_default=True, type=click.FloatRange(min=0.1),
    envvar="ATLAS_TUNNEL_IDLE_TIMEOUT", help="seconds without a byte before a tunnel closes",
)  # fmt: skip
@click.option(
    "--torrent-listen", default=None, envvar="ATLAS_TORRENT_LISTEN",
    help="libtorrent listen interfaces (default: HOST:0)",
)  # fmt: skip
@click.option("--no-torrents", is_flag=True, help="do not fetch torrent content")
@click.option(
    "--torrent-discovery", is_flag=True, envvar="ATLAS_TORRENT_DISCOVERY",
    help="turn on DHT, LSD, UPnP and NAT-PMP (off by default)",
)  # fmt: skip
@click.option("--torrent-seed", is_flag=True, help="keep seeding fetched torrents")
@click.option(
    "--torrent-cap-gib", default=4.0, show_default=True, type=click.FloatRange(min=0.001),
    help="largest file taken from a torrent",
)  # fmt: skip
@click.option(
    "--replica-unknown-channels", default=2, show_default=True, type=click.IntRange(0),
    envvar="ATLAS_REPLICA_UNKNOWN_CHANNELS",
    help="new channels per replicated content to payees of providers other than the trackers",
)  # fmt: skip
@click.option(
    "--replica-unknown-deposit", default="0.1", show_default=True, callback=_positive_btt,
    envvar="ATLAS_REPLICA_UNKNOWN_DEPOSIT",
    help="deposit of each such channel, and the most such a provider may ask per chunk, in BTT",
)  # fmt: skip
@click.option(
    "--replica-unknown-channels-per-hour", default=10, show_default=True,
    type=click.IntRange(0), envvar="ATLAS_REPLICA_UNKNOWN_CHANNELS_PER_HOUR",
    help="such channels for all contents together, over any hour",
)  # fmt: skip
@listener_options
def serve_command(
    host: str,
    port: int,
    data_dir: Path,
    ledger_url: str,
    trackers: tuple[str, ...],
    public_url: str | None,
    price: int,
    free_mib: float,
    store_cap_gib: float,
    allow_private_origins: bool,
    tunnel_port: int,
    no_tunnel: bool,
    max_tunnels_per_client: int,
    max_tunnels: int,
    tunnel_pay_timeout: float,
    tunnel_idle_timeout: float,
    torrent_listen: str | None,
    no_torrents: bool,
    torrent_discovery: bool,
    torrent_seed: bool,
    torrent_cap_gib: float,
    replica_unknown_channels: int,
    replica_unknown_deposit: int,
    replica_unknown_channels_per_hour: int,
    listener_limits: ListenerLimits,
) -> None:
    """Serve an edge; prints {"listening": URL} (the HTTP port) when ready."""
    config = EdgeConfig(
        data_dir=data_dir,
        ledger_url=ledger_url,
        trackers=trackers,
        public_url=public_url,
        price_per_mib=price,
        free_bytes=int(free_mib * (1 << 20)),
        store_cap_bytes=int(store_cap_gib * (1 << 30)),
        allow_private_origins=allow_private_origins,
        tunnel_host=host,
        tunnel_port=None if no_tunnel else tunnel_port,
        max_tunnels_per_client=max_tunnels_per_client,
        max_tunnels=max_tunnels,
        tunnel_pay_timeout=tunnel_pay_timeout,
        tunnel_idle_timeout=tunnel_idle_timeout,
        torrent_listen=None if no_torrents else (torrent_listen or f"{host}:0"),
        torrent_discovery=torrent_discovery,
        torrent_seed=torrent_seed,
        max_torrent_file_bytes=int(torrent_cap_gib * (1 << 30)),
        tunnel_head_timeout=listener_limits.header_timeout,
        max_tunnel_connections_per_address=listener_limits.max_per_address,
        replica_unknown_channels=replica_unknown_channels,
        replica_unknown_deposit=replica_unknown_deposit,
        replica_unknown_channels_per_hour=replica_unknown_channels_per_hour,
    )
    from cdn_edge.app import create_app
    from cdn_edge.edge_state import EDGE

    def on_bound(app: web.Application, url: str) -> None:
        announcer = app[EDGE].announcer
        announcer.public_url = announcer.public_url or url

    asyncio.run(serve(create_app(config), host, port, on_bound, limits=listener_limits))


@edge.command("earnings")
@click.option(
    "--data-dir", required=True, type=click.Path(file_okay=False, exists=True, path_type=Path),
    envvar="ATLAS_DATA_DIR",
)  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="print JSON")
def earnings_command(data_dir: Path, as_json: bool) -> None:
    """What this edge has been paid (accepted vouchers) and redeemed on the ledger."""
    path = data_dir / "payments.sqlite3"
    if not path.exists():
        raise click.ClickException(f"no payment records in {data_dir} (has the edge run?)")
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute(
            "SELECT channel_id, payer, paid, consumed, redeemed FROM channels ORDER BY channel_id"
        ).fetchall()
    channels = [
        {"channel_id": c, "payer": p, "paid": int(pd), "served": int(cs), "redeemed": int(r)}
        for c, p, pd, cs, r in rows
    ]
    paid = sum(c["paid"] for c in channels)
    redeemed = sum(c["redeemed"] for c in channels)
    if as_json:
        click.echo(json.dumps({
            "asset": BTT_LOCAL.uri, "paid": str(paid), "redeemed": str(redeemed),
            "unredeemed": str(paid - redeemed),
            "channels": [{k: str(v) for k, v in c.items()} for c in channels],
        }))  # fmt: skip
        return
    click.echo(f"paid       {format_amount(paid, BTT_LOCAL)}")
    click.echo(f"redeemed   {format_amount(redeemed, BTT_LOCAL)}")
    click.echo(f"unredeemed {format_amount(paid - redeemed, BTT_LOCAL)}")
    click.echo(f"channels   {len(channels)}")
