"""``atlas fetch``: a paid, verified, multi-provider download to a file or stdout.

With ``-o FILE`` the bytes go to ``FILE.part`` first, with a sidecar that lets
the same command resume (:mod:`requester.cli.fetch_output`). One fetch spends at
most ``max_spend`` (default 1 BTT); the error says how to raise it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import aiohttp
import click

from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.cli.fetch_output import load_sidecar, save, sidecar_of
from requester.cli.fetch_progress import final_line, size_text
from requester.cli.options import settings_options
from requester.client import AtlasClient, TorrentListing
from requester.dht_bootstrap import edges_and_finder
from requester.errors import AtlasError
from requester.payer_store import PayerStore
from requester.protocol import BTT_LOCAL, format_amount
from requester.settings import ConfigError, Settings, read_config


@click.command("fetch")
@click.argument("url")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--file", "torrent_file", help="for a magnet or infohash: the file in the torrent")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout")
@settings_options(Settings, only=("edges", "bootstrap", "ledger", "max_spend", "max_price",
                                  "target_rate"), config=read_config)  # fmt: skip
def fetch(settings: Settings, url: str, output: Path | None, torrent_file: str | None,
          as_json: bool) -> None:  # fmt: skip
    """Download URL through Atlas edges, verified chunk by chunk and paid in BTT."""
    try:
        limit = settings.spend_limit()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.edges and not settings.bootstrap:
        raise click.ClickException(
            "no edges: pass --edge URL or --bootstrap HOST:PORT, or run `atlas up` first"
        )
    if output is None and as_json:
        raise click.ClickException("--json prints the summary on stdout: use -o FILE with it")
    try:
        # A bar only for a person watching both streams: not with --json, not when either
        # stream is redirected, and not when the body itself goes to the terminal.
        watched = sys.stdout.isatty() and sys.stderr.isatty()
        shown = watched and output is not None and not as_json
        summary = asyncio.run(_run(url, output, settings, limit, torrent_file, shown))
    except TorrentListing as exc:  # not a failure: a question for the user
        raise click.ClickException(torrent_choice(exc.files)) from None
    except AtlasError as exc:
        raise click.ClickException(_with_notes(str(exc), exc)) from exc
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(final_line(summary, output), err=True)
    if summary["status"] >= 400:  # the body was delivered as sent; the exit code says so
        click.echo(f"atlas: the origin answered {summary['status']}", err=True)
        sys.exit(1)


async def _run(
    url: str, output: Path | None, settings: Settings, max_spend: int | None,
    torrent_file: str | None = None, shown: bool = False,
) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        budget = _payer(settings, session, max_spend, stack)
        edges, finder = await edges_and_finder(stack, settings.edges, settings.bootstrap, session)
        client = AtlasClient(edges, session, budget,
                             max_price_per_mib=settings.max_price,
                             trust=settings.trust_policy(),
                             target_rate=settings.target_rate, finder=finder)  # fmt: skip
        sidecar = sidecar_of(output)
        resumed = load_sidecar(sidecar, url)
        if resumed is not None:
            download = await client.resume(resumed[0], start_index=resumed[1])
        else:
            download = await client.open(url, file=torrent_file)
        await save(download, output, sidecar, url, resumed[1] if resumed else 0, shown=shown)
        progress = download.progress
        return {
            "url": url,
            "content_id": download.head.content_id.hex(),
            "status": download.head.status,
            "bytes": progress.delivered_bytes,
            "seconds": round(time.monotonic() - started, 3),
            "paid": str(progress.paid),
            "paid_text": format_amount(progress.paid, BTT_LOCAL),
            "resumed_from_chunk": resumed[1] if resumed else 0,
            "max_spend": None if max_spend is None else str(max_spend),
            "target_rate": settings.target_rate,
            "providers": download.provider_summary(),
            "dropped": {p: s.dropped for p, s in progress.providers.items() if s.dropped},
            "evidence": {p: s.evidence for p, s in progress.providers.items() if s.evidence},
        }
    raise AssertionError("unreachable")


def _payer(settings: Settings, session: aiohttp.ClientSession, max_spend: int | None,
           stack: AsyncExitStack) -> Budget | None:  # fmt: skip
    if not settings.wallet_path.exists() or settings.ledger is None:
        return None  # free allowance only
    passphrase = keystore.stored_passphrase(settings.home)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise keystore.KeystoreError(f"set {keystore.PASSPHRASE_ENV} to unlock the wallet")
        passphrase = click.prompt("wallet passphrase", hide_input=True)
    keys = keystore.load(settings.wallet_path, passphrase)
    store = PayerStore(settings.state_path)
    stack.callback(store.close)
    ledger = settings.open_ledger(session, keys.payer)
    stack.push_async_callback(ledger.close)
    manager = ChannelManager(keys.payer, store, ledger, settings.deposit_policy())
    return Budget(manager, max_spend, SPEND_HINT)


def torrent_choice(files: list[dict[str, Any]]) -> str:
    """The question a torrent of several files asks: which one, with each file's size."""
    listing = "\n".join(
        f"  {f.get('path')}  ({size_text(f.get('size'))})" for f in files if isinstance(f, dict)
    )
    return f"the torrent holds {len(files)} files: name one with --file PATH\n{listing}"


SPEND_HINT = (
    "; raise it with --max-spend AMOUNT, or max_spend in config.json or ATLAS_MAX_SPEND "
    "(none: no limit)"
)


def _with_notes(message: str, exc: BaseException) -> str:
    return "\n".join([message, *getattr(exc, "__notes__", [])])
