"""``atlas ledger``: run the embedded ledger."""

from __future__ import annotations

import asyncio
import os
import signal

import click

from cdn_edge.ledger.app import LedgerConfig, create_app
from cdn_edge.ledger.settings import LedgerSettings
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
