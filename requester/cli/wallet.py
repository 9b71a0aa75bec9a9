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
from requester.channel_manager import ChannelManager
from requester.cli.amounts import parse_btt
from requester.cli.channel_listing import listed_channels, settle_recorded
from requester.cli.options import settings_options
from requester.ledger_api import Ledger
from requester.ledger_client import LedgerError
from requester.payer_store import PayerStore
from requester.protocol import (
    BTT_LOCAL,
    MalformedMessage,
    PayerChannel,
    PayerKey,
    ProtocolError,
    TronAddress,
    format_amount,
)
from requester.settings import ConfigError, Settings, load_settings, read_config

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


def _with_ledger(settings: Settings, work: Callable[[Ledger], Awaitable[T]],
                 key: PayerKey | None = None) -> T:  # fmt: skip
    """Run ``work`` with the configured ledger (on TRON, ``key`` signs transactions)."""

    async def run() -> T:
        async with aiohttp.ClientSession() as session:
            ledger = settings.open_ledger(session, key)
            try:
                return await work(ledger)
            finally:
                await ledger.close()

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
@click.option("--ledger", envvar="ATLAS_LEDGER", show_envvar=True,
              help="ledger URL; default from config")  # fmt: skip
def wallet_balance(ledger: str | None) -> None:
    """The wallet's balance on the ledger."""
    settings = _settings(ledger)
    address = TronAddress.parse(keystore.address_of(settings.wallet_path))
    units = _with_ledger(settings, lambda client: client.balance(address))
    click.echo(format_amount(units, BTT_LOCAL))


@wallet.command("fund")
@click.argument("amount", default="100")
@click.option("--ledger", envvar="ATLAS_LEDGER", show_envvar=True,
              help="ledger URL; default from config")  # fmt: skip
def wallet_fund(amount: str, ledger: str | None) -> None:
    """Get AMOUNT BTT from a local ledger's faucet."""
    settings = _settings(ledger)
    units = parse_btt(amount)
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
    """Channels recorded in $ATLAS_HOME/state.sqlite3, after settling with the ledger any
    open or top-up a crash left unanswered (listed as pending if the ledger is down)."""
    settings = load_settings()
    store = PayerStore(settings.state_path)
    try:
        rows = listed_channels(store, settle_recorded(store, settings))
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows))
        return
    for row in rows:
        note = f"  ({row['pending']})" if row["pending"] else ""
        click.echo(f"{row['channel_id'][:16]}  {row['payee']}  {row['spent']} of "
                   f"{row['deposit']}  {row['status']}{note}")  # fmt: skip


def _manager_call(settings: Settings, work: Callable[[ChannelManager], Awaitable[T]]) -> T:
    """Run ``work`` with this wallet's channel manager (keys unlocked, state opened)."""
    try:
        keys = keystore.load(settings.wallet_path, _passphrase())
    except keystore.KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    store = PayerStore(settings.state_path)

    async def settled_first(client: Ledger) -> T:
        manager = ChannelManager(keys.payer, store, client)
        await manager.settle_pending(int(time.time()))
        return await work(manager)

    try:
        return _with_ledger(settings, settled_first, keys.payer)
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    finally:
        store.close()


async def _payee_of(target: str) -> TronAddress:
    """A TRON address as given, or the payee an edge names at ``/v1/info``."""
    if not target.startswith(("http://", "https://")):
        try:
            return TronAddress.parse(target)
        except MalformedMessage as exc:
            raise click.BadParameter(f"{target!r}: {exc.message}") from exc
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"{target.rstrip('/')}/v1/info") as resp:
                return TronAddress.parse((await resp.json())["payee"])
        except (aiohttp.ClientError, ValueError, KeyError, TypeError) as exc:
            raise click.ClickException(f"{target} did not name its payee: {exc}") from exc


def _print_channel(ch: PayerChannel) -> None:
    t = ch.terms
    click.echo(json.dumps({
        "channel_id": t.channel_id.hex(), "payee": str(t.payee),
        "deposit": format_amount(t.deposit, t.asset), "spent": format_amount(ch.issued, t.asset),
        "expires_at": t.expires_at,
    }))  # fmt: skip


@channel.command("open")
@click.argument("payee")
@settings_options(Settings, only=("ledger", "deposit", "channel_hours"), config=read_config)
def channel_open(settings: Settings, payee: str) -> None:
    """Open a channel to PAYEE (a TRON address, or an edge URL) before it is needed, with
    the deposit and lifetime a download would use (flags, ATLAS_DEPOSIT and
    ATLAS_CHANNEL_HOURS, config.json's deposit and channel_hours, else 10 BTT for 24 h)."""
    if settings.ledger is None:
        raise click.ClickException("no ledger: pass --ledger URL or run `atlas up` first")
    try:
        policy = settings.deposit_policy()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    address = asyncio.run(_payee_of(payee))
    ch = _manager_call(settings, lambda m: m.open_channel(
        address, policy.deposit, int(time.time()), policy.duration))  # fmt: skip
    _print_channel(ch)


@channel.command("topup")
@click.argument("channel_id")
@click.argument("amount")
@click.option("--hours", default=0.0, type=click.FloatRange(0, 24 * 365),
              help="also keep the channel open at least this long from now")  # fmt: skip
@click.option("--ledger", envvar="ATLAS_LEDGER", show_envvar=True,
              help="ledger URL; default from config")  # fmt: skip
def channel_topup(channel_id: str, amount: str, hours: float, ledger: str | None) -> None:
    """Add AMOUNT BTT to an open channel's deposit."""
    settings = _settings(ledger)
    units = parse_btt(amount)
    cid = _channel_id(channel_id)
    ch = _manager_call(settings, lambda m: m.top_up(cid, units, int(hours * 3600),
                                                    int(time.time())))  # fmt: skip
    _print_channel(ch)


def _channel_id(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise click.BadParameter(f"{text!r} is not a channel id (64 hex digits)")
    return raw


@channel.command("close")
@click.argument("channel_id")
@click.option("--ledger", envvar="ATLAS_LEDGER", show_envvar=True,
              help="ledger URL; default from config")  # fmt: skip
def channel_close(channel_id: str, ledger: str | None) -> None:
    """Stop paying on a channel; reclaim its rest once it has expired. On TRON, ask the
    contract to close it (``requestClose``: it expires within the contract's close grace,
    which the payee has left to redeem)."""
    settings = _settings(ledger)
    cid = _channel_id(channel_id)
    store = PayerStore(settings.state_path)
    try:
        settle_recorded(store, settings)  # a channel a crash left unrecorded, first
        store.set_status(cid, "closed")
        keys = keystore.load(settings.wallet_path, _passphrase())
        result = _with_ledger(settings, lambda client: _close(client, keys.payer, cid),
                              keys.payer)  # fmt: skip
        if result["channel"]["status"] == "reclaimed" and "returned" not in result:
            store.set_status(cid, "reclaimed")  # by an earlier run that stopped before saying so
            click.echo("already reclaimed")
        elif "returned" in result:
            store.set_status(cid, "reclaimed")
            click.echo(f"reclaimed {format_amount(int(result['returned']), BTT_LOCAL)}")
        else:
            expires_at = result["channel"]["expires_at"]
            click.echo(f"closed; the rest can be reclaimed after {expires_at}")
    except keystore.KeystoreError as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        store.close()


async def _close(ledger: Ledger, key: PayerKey, channel_id: bytes) -> dict[str, Any]:
    """Reclaim an expired channel; ask for the close of one still running. A channel found
    reclaimed (an earlier run was killed after its reclaim applied) is answered as it is."""
    view = await ledger.channel(channel_id)
    if int(view["expires_at"]) <= await _ledger_time(ledger):
        try:
            return await ledger.reclaim(key, channel_id)
        except LedgerError as exc:
            if exc.code != "already_reclaimed":
                raise
            return {"channel": await ledger.channel(channel_id)}
    return await ledger.request_close(key, channel_id)


async def _ledger_time(ledger: Ledger) -> int:
    """The ledger's clock (a TRON node's head block), which decides expiry."""
    return int((await ledger.info()).get("time") or time.time())
