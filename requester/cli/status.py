"""``atlas status``: what the wallet of the data dir in use holds, spent and can reach.

It reads the wallet's address (no passphrase), its channels and today's spending
from ``state.sqlite3`` (every voucher signed from this data dir: ``atlas fetch``
and the proxy alike), asks the ledger for the balance and each edge for
``/healthz``. The local part is always printed; the exit code says what could
not be reached (``EXIT_CODES``), so a script can tell a dead ledger from a dead
edge.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import click

from requester import keystore
from requester.cli.amounts import short_amount
from requester.cli.channel_listing import listed_channels
from requester.cli.options import settings_options
from requester.errors import AtlasError
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, TronAddress, format_amount
from requester.settings import Settings, read_config

PROBE_TIMEOUT = aiohttp.ClientTimeout(total=3)
LEDGER_DOWN, NO_EDGE = 2, 3
EXIT_CODES = {0: "the ledger and an edge (if any is set) answered", 1: "no wallet in the data dir",
              LEDGER_DOWN: "the ledger could not be reached (local state still shown)",
              NO_EDGE: "the ledger answered but no edge did"}  # fmt: skip


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="one JSON object on stdout")
@settings_options(Settings, only=("edges", "ledger"), config=read_config)
def status(settings: Settings, as_json: bool) -> None:
    """The wallet's balance, channels, today's spending and the edges it can reach."""
    if not settings.wallet_path.exists():
        raise click.ClickException(no_wallet(settings.home))
    view = asyncio.run(gather(settings))
    click.echo(json.dumps(view) if as_json else text_of(view))
    sys.exit(view["exit_code"])


def no_wallet(home: Path) -> str:
    """Why there is nothing to show, and the command for the wallet ``atlas up`` keeps in its
    data dir (``make run``: ``./atlas-data``), which is not the default ``ATLAS_HOME``."""
    made = Path("atlas-data")
    hint = "for the network `atlas up --data-dir DIR` runs, ATLAS_HOME=DIR atlas status"
    if (made / "wallet.json").exists():
        hint = f"`make run` made one in {made.resolve()}: ATLAS_HOME={made} atlas status"
    return f"no wallet in {home} (ATLAS_HOME); {hint}; or make one with `atlas wallet new`"


async def gather(settings: Settings) -> dict[str, Any]:
    """The status as ``--json`` prints it (amounts as BTT text and ``*_units`` strings)."""
    address = TronAddress.parse(keystore.address_of(settings.wallet_path))
    store = PayerStore(settings.state_path)
    try:
        channels = listed_channels(store, [])
        day = time.strftime("%Y-%m-%d", time.gmtime())
        by_hour = store.spend_by_hour(day)
    finally:
        store.close()
    async with aiohttp.ClientSession(timeout=PROBE_TIMEOUT) as session:
        balance, ledger_error = await _balance(settings, session, address)
        edges = await asyncio.gather(*(_probe(session, e) for e in settings.edges))
    spent = sum(by_hour.values())
    reachable = sum(1 for e in edges if e["reachable"])
    code = LEDGER_DOWN if ledger_error else NO_EDGE if edges and not reachable else 0
    return {
        "home": str(settings.home), "wallet": str(address), "ledger": settings.ledger,
        "balance": None if balance is None else format_amount(balance, BTT_LOCAL),
        "balance_units": None if balance is None else str(balance),
        "ledger_error": ledger_error,
        "channels": channels,
        "day": day, "spent_today": format_amount(spent, BTT_LOCAL),
        "spent_today_units": str(spent),
        "spent_by_hour": {f"{h:02d}": str(a) for h, a in sorted(by_hour.items())},
        "edges": list(edges), "edges_reachable": reachable,
        "exit_code": code,
    }  # fmt: skip


async def _balance(settings: Settings, session: aiohttp.ClientSession, address: TronAddress
                   ) -> tuple[int | None, str | None]:  # fmt: skip
    if settings.ledger is None:
        return None, "no ledger configured (--ledger URL, or run `atlas up`)"
    ledger = settings.open_ledger(session)
    try:
        return await ledger.balance(address), None
    except (AtlasError, aiohttp.ClientError, TimeoutError, OSError) as exc:
        return None, f"{settings.ledger}: {str(exc) or type(exc).__name__}"
    finally:
        await ledger.close()


async def _probe(session: aiohttp.ClientSession, edge: str) -> dict[str, Any]:
    try:
        async with session.get(f"{edge}/healthz") as resp:
            ok = resp.status == 200
            return {"url": edge, "reachable": ok, "detail": "ok" if ok else f"HTTP {resp.status}"}
    except (aiohttp.ClientError, TimeoutError) as exc:
        return {"url": edge, "reachable": False, "detail": str(exc) or type(exc).__name__}


def text_of(view: dict[str, Any]) -> str:
    """The status for a person: amounts in BTT, one line per channel and per edge."""
    units = view["balance_units"]
    balance = f"unknown: {view['ledger_error']}" if units is None else short_amount(int(units))
    lines = [
        f"wallet     {view['wallet']}  ({view['home']})",
        f"balance    {balance}",
        f"spent      {short_amount(int(view['spent_today_units']))} today ({view['day']} UTC)",
        f"channels   {len(view['channels'])}",
    ]
    for c in view["channels"]:
        expiry = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(c["expires_at"]))
        spent, deposit = short_amount(int(c["spent_units"])), short_amount(int(c["deposit_units"]))
        lines.append(f"  {c['payee']}  {spent} of {deposit}  expires {expiry}  {c['status']}")
    lines.append(f"edges      {view['edges_reachable']} of {len(view['edges'])} reachable")
    lines += [f"  {e['url']}  {e['detail']}" for e in view["edges"]]
    return "\n".join(lines)
