"""``atlas ledger``: run the embedded ledger."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import click

from cdn_edge.ledger.app import LedgerConfig, create_app
from cdn_edge.serving import serve
from requester.listener_limits import ListenerLimits, listener_options

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
@click.option("--faucet", is_flag=True, help="let anyone mint local BTT (local networks only)")
@listener_options
def serve_command(
    host: str, port: int, data_dir: Path, faucet: bool, listener_limits: ListenerLimits
) -> None:
    """Serve the ledger API; prints {"listening": URL} when ready."""
    config = LedgerConfig(
        data_dir=data_dir, faucet=faucet, crash=_crash_hook if os.environ.get(CRASH_ENV) else None
    )
    asyncio.run(serve(create_app(config), host, port, stops_last=True, limits=listener_limits))
