"""``atlas ledger``: run the embedded ledger."""

from __future__ import annotations

import asyncio
import json
import os
import signal

import click

from cdn_edge.ledger.app import LedgerConfig, create_app
from cdn_edge.ledger.deploy_settings import DeploySettings
from cdn_edge.ledger.settings import LedgerSettings
from cdn_edge.ledger.tron_node.cli import tron_node_command
from cdn_edge.serving import serve
from requester.cli.options import settings_options

CRASH_ENV = "ATLAS_LEDGER_CRASH_AT"
"""Fault injection for crash tests: ``before-commit`` or ``after-commit``."""


def _crash_hook(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@click.group()
def ledger() -> None:
    """The embedded channel ledger (SQLite), for a local network."""


@ledger.command("serve")
@settings_options(LedgerSettings)
def serve_command(settings: LedgerSettings) -> None:
    """Serve the ledger API; prints {"listening": URL} when ready."""
    try:
        limits = settings.faucet_limits()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    config = LedgerConfig(
        data_dir=settings.data_dir, faucet=settings.faucet, faucet_limits=limits,
        crash=_crash_hook if os.environ.get(CRASH_ENV) else None,
    )  # fmt: skip
    asyncio.run(serve(create_app(config), settings.host, settings.port, stops_last=True,
                      limits=settings.listener_limits))  # fmt: skip


ledger.add_command(tron_node_command)


@ledger.command("deploy")
@settings_options(DeploySettings)
@click.option("--json", "as_json", is_flag=True, help="print the deployment as one JSON object")
def deploy_command(settings: DeploySettings, as_json: bool) -> None:
    """Deploy the AtlasChannels contract on TRON; prints its address (T...)."""
    from requester.errors import SdkError
    from requester.tron.deploy import DeployRequest, deploy, deployer_key  # imports tronpy

    request = DeployRequest(settings.node, settings.token, settings.asset, settings.close_grace,
                            settings.fee_limit, settings.expected_chain_id())  # fmt: skip
    try:
        done = asyncio.run(deploy(request, deployer_key(settings.key_file, settings.home)))
    except SdkError as exc:
        raise click.ClickException(exc.message) from None
    click.echo(json.dumps(done.as_json()) if as_json else done.contract)
