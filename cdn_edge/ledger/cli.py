"""``atlas ledger``: run the embedded ledger."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import click

from cdn_edge.ledger.app import LedgerConfig, create_app
from cdn_edge.ledger.faucet import FaucetLimits
from cdn_edge.serving import serve
from requester.cli.amounts import btt
from requester.cli.listener_options import listener_options
from requester.listener_limits import ListenerLimits

CRASH_ENV = "ATLAS_LEDGER_CRASH_AT"
"""Fault injection for crash tests: ``before-commit`` or ``after-commit``."""


def _crash_hook(point: str) -> None:
    if os.environ.get(CRASH_ENV) == point:
        os.kill(os.getpid(), signal.SIGKILL)


@click.group()
def ledger() -> None:
    """The embedded channel ledger (SQLite), for a local network."""


@ledger.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, envvar="ATLAS_HOST")
@click.option("--port", default=0, show_default=True, type=int, help="0 picks a free port")
@click.option(
    "--data-dir", required=True, type=click.Path(file_okay=False, path_type=Path),
    envvar="ATLAS_DATA_DIR",
)  # fmt: skip
@click.option("--faucet", is_flag=True,
              help="let clients on this machine mint local BTT (local networks only)")  # fmt: skip
@click.option("--faucet-max", default="1000", show_default=True, callback=btt,
              envvar="ATLAS_FAUCET_MAX", help="largest faucet grant, in BTT")  # fmt: skip
@click.option("--faucet-per-address", default="2000", show_default=True, callback=btt,
              envvar="ATLAS_FAUCET_PER_ADDRESS",
              help="BTT the faucet gives one address per minute")  # fmt: skip
@click.option("--faucet-per-minute", default="100000", show_default=True, callback=btt,
              envvar="ATLAS_FAUCET_PER_MINUTE",
              help="BTT the faucet gives per minute, all addresses together")  # fmt: skip
@click.option("--faucet-grants-per-minute", default=1000, show_default=True,
              type=click.IntRange(1), envvar="ATLAS_FAUCET_GRANTS_PER_MINUTE",
              help="faucet grants per minute, all addresses together")  # fmt: skip
@listener_options
def serve_command(
    host: str, port: int, data_dir: Path, faucet: bool, faucet_max: int,
    faucet_per_address: int, faucet_per_minute: int, faucet_grants_per_minute: int,
    listener_limits: ListenerLimits,
) -> None:  # fmt: skip
    """Serve the ledger API; prints {"listening": URL} when ready."""
    try:
        limits = FaucetLimits(faucet_max, faucet_per_address, faucet_per_minute,
                              faucet_grants_per_minute)  # fmt: skip
    except ValueError as exc:
        raise click.UsageError(str(exc)) from exc
    config = LedgerConfig(
        data_dir=data_dir, faucet=faucet, faucet_limits=limits,
        crash=_crash_hook if os.environ.get(CRASH_ENV) else None,
    )  # fmt: skip
    asyncio.run(serve(create_app(config), host, port, stops_last=True, limits=listener_limits))
