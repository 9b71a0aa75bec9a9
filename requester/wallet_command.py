"""``atlas wallet`` and ``atlas channel``: keys, balance, faucet, payment channels."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import aiohttp
import click

from requester import keystore
from requester.ledger_client import LedgerClient, LedgerError
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, MalformedMessage, TronAddress, format_amount, parse_amount
from requester.settings import Settings, load_settings

T = TypeVar("T")


def _passphrase(confirm: bool = False) -> str:
    value = os.environ.get(keystore.PASSPHRASE_ENV)
    if value is None and not confirm:
        value = keystore.stored_passphrase(load_settings().home)
    if value is not None:
        return value
    if not sys.stdin.isatty():
        raise click.ClickException(f"set {keystore.PASSPHRASE_ENV} (no terminal to ask on)")
    return str(click.prompt("wallet passphrase", hide_input=True, confirmation_prompt=confirm))


def _settings(ledger: str | None) -> Settings:
    settings = load_settings((), ledger)
    if settings.ledger is None:
        raise click.ClickException("no ledger: pass --ledger URL or run `atlas up` first")
    return settings


def _with_ledger(settings: Settings, work: Callable[[LedgerClient], Awaitable[T]]) -> T:
    async def run() -> T:
        async with aiohttp.ClientSession() as session:
            assert settings.ledger is not None
            return await work(LedgerClient(settings.ledger, session))

    try:
        return asyncio.run(run())
    except LedgerError as exc:
        raise click.ClickException(str(exc)) from exc


@click.group()
def wallet() -> None:
    """Your payer keys (TRON) and identity (Ed25519), encrypted at rest."""


@wallet.command("new")
def wallet_new() -> None:
    """Create a wallet in $ATLAS_HOME (refuses to overwrite one)."""
    settings = load_settings()
    try:
        keys = keystore.create(settings.wallet_path, _passphrase(confirm=True))
    except keystore.KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(
        json.dumps({"address": str(keys.payer.address), "wallet": str(settings.wallet_path)})
    )


@wallet.command("show")
def wallet_show() -> None:
    """Print the wallet's TRON address (no passphrase needed)."""
    try:
        click.echo(keystore.address_of(load_settings().wallet_path))
    except keystore.KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc


@wallet.command("balance")
@click.option("--ledger", help="ledger URL; default from config")
def wallet_balance(ledger: str | None) -> None:
    """The wallet's balance on the ledger."""
    settings = _settings(ledger)
    address = TronAddress.parse(keystore.address_of(settings.wallet_path))
    units = _with_ledger(settings, lambda client: client.balance(address))
    click.echo(format_amount(units, BTT_LOCAL))


@wallet.command("fund")
@click.argument("amount", default="100")
@click.option("--ledger", help="ledger URL; default from config")
def wallet_fund(amount: str, ledger: str | None) -> None:
    """Get AMOUNT BTT from a local ledger's faucet."""
    settings = _settings(ledger)
    try:
        units = parse_amount(amount, BTT_LOCAL)
    except MalformedMessage as exc:
        raise click.BadParameter(exc.message) from exc
    address = TronAddress.parse(keystore.address_of(settings.wallet_path))
    _with_ledger(settings, lambda client: client.faucet(address, units))
    balance = _with_ledger(settings, lambda client: client.balance(address))
    click.echo(
        f"funded {format_amount(units, BTT_LOCAL)}; balance {format_amount(balance, BTT_LOCAL)}"
    )


@click.group()
def channel() -> None:
    """Payment channels from your wallet to providers."""


@channel.command("list")
@click.option("--json", "as_json", is_flag=True)
def channel_list(as_json: bool) -> None:
    """Channels recorded in $ATLAS_HOME/state.sqlite3."""
    settings = load_settings()
    store = PayerStore(settings.state_path)
    try:
        rows: list[dict[str, Any]] = [
            {
                "channel_id": c.terms.channel_id.hex(),
                "payee": str(c.terms.payee),
                "deposit": format_amount(c.terms.deposit, c.terms.asset),
                "spent": format_amount(c.issued, c.terms.asset),
                "expires_at": c.terms.expires_at,
                "status": c.status,
            }
            for c in store.channels()
        ]
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        click.echo(f"{row['channel_id'][:16]}  {row['payee']}  {row['spent']} of "
                   f"{row['deposit']}  {row['status']}")  # fmt: skip


@channel.command("close")
@click.argument("channel_id")
@click.option("--ledger", help="ledger URL; default from config")
def channel_close(channel_id: str, ledger: str | None) -> None:
    """Stop paying on a channel; reclaim its rest once it has expired."""
    settings = _settings(ledger)
    cid = bytes.fromhex(channel_id)
    store = PayerStore(settings.state_path)
    try:
        store.set_status(cid, "closed")
        keys = keystore.load(settings.wallet_path, _passphrase())
        view = _with_ledger(settings, lambda client: client.channel(cid))
        if int(view["expires_at"]) <= time.time():
            result = _with_ledger(settings, lambda client: client.reclaim(keys.payer, cid))
            store.set_status(cid, "reclaimed")
            click.echo(f"reclaimed {format_amount(int(result['returned']), BTT_LOCAL)}")
        else:
            click.echo(f"closed; the rest can be reclaimed after {view['expires_at']}")
    except keystore.KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()
