"""``atlas ledger tron-node``: the offline TRON full node tests and local networks run on."""

from __future__ import annotations

import asyncio

import click

from cdn_edge.ledger.tron_node.app import URL, create_app
from cdn_edge.ledger.tron_node.genesis import DeployerFailed
from cdn_edge.ledger.tron_node.node import Node
from cdn_edge.ledger.tron_node.settings import TronNodeSettings
from cdn_edge.serving import serve
from requester.cli.options import settings_options
from requester.tron.artifacts import StaleArtifact


@click.command("tron-node")
@settings_options(TronNodeSettings)
def tron_node_command(settings: TronNodeSettings) -> None:
    """Serve java-tron's HTTP API over an in-memory chain that runs contracts in pyrevm,
    with the test BTT and the channel contract deployed; prints {"listening": URL,
    "contract": T..., "token": T..., ...} when ready (docs/ledger.md)."""
    try:
        node = Node(settings.chain_id, settings.close_grace, settings.fund)
    except (StaleArtifact, DeployerFailed) as exc:
        raise click.ClickException(f"cannot deploy the contracts: {exc}") from exc
    except ValueError as exc:
        raise click.UsageError(f"--fund: {exc}") from exc
    app = create_app(node)

    def ready(url: str) -> dict[str, object]:
        app[URL] = url
        return node.ready(url)

    # Like the embedded ledger, it stops last under atlas up: the edges redeem on it first.
    asyncio.run(serve(app, settings.host, settings.port, stops_last=True,
                      limits=settings.listener_limits, ready_extra=ready))  # fmt: skip
