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
from requester.cli.options import settings_options
from requester.protocol import BTT_LOCAL, asset_by_code, format_amount


@click.group()
def edge() -> None:
    """An edge node: fetch for requesters, serve signed chunks, earn BTT."""


@edge.command("serve")
@settings_options(EdgeConfig)
def serve_command(config: EdgeConfig) -> None:
    """Serve an edge; prints {"listening": URL} (the HTTP port) when ready."""
    from cdn_edge.app import create_app
    from cdn_edge.edge_state import EDGE

    def on_bound(app: web.Application, url: str) -> None:
        announcer = app[EDGE].announcer
        announcer.public_url = announcer.public_url or url

    def ready_extra(url: str) -> dict[str, object]:
        return {"dht": app[EDGE].dht_address} if config.dht else {}

    app, limits = create_app(config), config.listener_limits
    asyncio.run(serve(app, config.host, config.port, on_bound, limits=limits,
                      ready_extra=ready_extra))  # fmt: skip


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
            "SELECT channel_id, payer, paid, consumed, redeemed, asset FROM channels"
            " ORDER BY channel_id"
        ).fetchall()
    assets = {asset_by_code(row[5]) for row in rows}
    if len(assets) > 1:  # one data dir serves one ledger; a mix cannot be added up
        names = ", ".join(sorted(a.uri for a in assets))
        raise click.ClickException(f"{data_dir} holds channels in several assets: {names}")
    asset = assets.pop() if assets else BTT_LOCAL  # the asset its channels are paid in
    channels = [
        {"channel_id": c, "payer": p, "paid": int(pd), "served": int(cs), "redeemed": int(r)}
        for c, p, pd, cs, r, _ in rows
    ]
    paid = sum(c["paid"] for c in channels)
    redeemed = sum(c["redeemed"] for c in channels)
    if as_json:
        click.echo(json.dumps({
            "asset": asset.uri, "paid": str(paid), "redeemed": str(redeemed),
            "unredeemed": str(paid - redeemed),
            "channels": [{k: str(v) for k, v in c.items()} for c in channels],
        }))  # fmt: skip
        return
    click.echo(f"paid       {format_amount(paid, asset)}")
    click.echo(f"redeemed   {format_amount(redeemed, asset)}")
    click.echo(f"unredeemed {format_amount(paid - redeemed, asset)}")
    click.echo(f"channels   {len(channels)}")
