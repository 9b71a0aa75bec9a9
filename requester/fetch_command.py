"""``atlas fetch``: a paid, verified, multi-provider download to a file or stdout.

With ``-o FILE`` the bytes go to ``FILE.part`` and a small ``FILE.atlas``
sidecar records the signed head and how many chunks are safely on disk
(updated only after the data is flushed), so an interrupted fetch resumes
where it stopped and never pays twice for a chunk it already has.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from contextlib import AsyncExitStack
from pathlib import Path
from typing import IO, Any

import aiohttp
import click

from requester import keystore
from requester.channel_manager import ChannelManager
from requester.chunk_client import Budget
from requester.cli_amounts import optional_btt
from requester.client import AtlasClient, Download, EdgeUnavailable, FetchRefused, TorrentListing
from requester.downloader import NoProvidersLeft
from requester.ledger_client import LedgerClient, LedgerError
from requester.payer_store import PayerStore
from requester.protocol import (
    BTT_LOCAL,
    ProtocolError,
    b64url_decode,
    b64url_encode,
    format_amount,
)
from requester.protocol.manifest import MAX_HEAD_BYTES
from requester.settings import ConfigError, Settings, load_settings


@click.command("fetch")
@click.argument("url")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--file", "torrent_file", help="for a magnet or infohash: the file in the torrent")
@click.option("--edge", "edges", multiple=True, help="edge URL (repeat); default from config")
@click.option("--ledger", help="ledger URL; default from config")
@click.option("--max-spend", callback=optional_btt, help="stop before spending more (BTT)")
@click.option("--max-price", callback=optional_btt, help="refuse prices above this per MiB (BTT)")
@click.option("--json", "as_json", is_flag=True, help="print a JSON summary on stdout")
def fetch(url: str, output: Path | None, torrent_file: str | None, edges: tuple[str, ...],
          ledger: str | None, max_spend: int | None, max_price: int | None,
          as_json: bool) -> None:  # fmt: skip
    """Download URL through Atlas edges, verified chunk by chunk and paid in BTT."""
    try:
        settings = load_settings(edges, ledger)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    if not settings.edges:
        raise click.ClickException("no edges: pass --edge URL or run `atlas up` first")
    if output is None and as_json:
        raise click.ClickException("--json prints the summary on stdout: use -o FILE with it")
    try:
        summary = asyncio.run(_run(url, output, settings, max_spend, max_price, torrent_file))
    except TorrentListing as exc:
        listing = "\n".join(f"  {f['path']}  ({f['size']} bytes)" for f in exc.files)
        raise click.ClickException(
            f"name a file with --file PATH; the torrent holds:\n{listing}"
        ) from None
    except FetchRefused as exc:
        raise click.ClickException(f"the edge refused: {exc.problem.get('detail')}") from exc
    except (EdgeUnavailable, NoProvidersLeft, LedgerError, keystore.KeystoreError,
            ConfigError) as exc:  # fmt: skip
        raise click.ClickException(str(exc)) from exc
    except ProtocolError as exc:
        raise click.ClickException(exc.message) from exc
    if as_json:
        click.echo(json.dumps(summary))
    if summary["status"] >= 400:  # the body was delivered as sent; the exit code says so
        click.echo(f"atlas: the origin answered {summary['status']}", err=True)
        sys.exit(1)


async def _run(
    url: str, output: Path | None, settings: Settings, max_spend: int | None,
    max_price: int | None, torrent_file: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    async with AsyncExitStack() as stack:
        session = await stack.enter_async_context(aiohttp.ClientSession())
        budget = _payer(settings, session, max_spend, stack)
        client = AtlasClient(settings.edges, session, budget, max_price_per_mib=max_price,
                             trust=settings.trust_policy())  # fmt: skip
        sidecar = _sidecar(output)
        resumed = _load_sidecar(sidecar, url)
        if resumed is not None:
            download = await client.resume(resumed[0], start_index=resumed[1])
        else:
            download = await client.open(url, file=torrent_file)
        await _save(download, output, sidecar, url, resumed[1] if resumed else 0)
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
            "providers": {
                p: {"chunks": s.chunks, "bytes": s.bytes, "paid": str(s.paid)}
                for p, s in progress.providers.items()
            },
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
    manager = ChannelManager(keys.payer, store, LedgerClient(settings.ledger, session),
                             settings.deposit_policy())  # fmt: skip
    return Budget(manager, max_spend)


async def _save(download: Download, output: Path | None, sidecar: Path | None, url: str,
                done: int) -> None:  # fmt: skip
    tty = sys.stderr.isatty()
    if output is None:
        sink: IO[bytes] = sys.stdout.buffer
        async for data in download.chunks():
            sink.write(data)
        sink.flush()
        return
    assert sidecar is not None
    part = output.with_name(output.name + ".part")
    mode = "r+b" if done and part.exists() else "wb"
    with part.open(mode) as sink:
        sink.truncate(done * download.head.chunk_size)
        sink.seek(done * download.head.chunk_size)
        _write_sidecar(sidecar, url, download, done)
        last_report = 0.0
        async for data in download.chunks():
            sink.write(data)
            done += 1
            if done % 8 == 0:
                sink.flush()
                os.fsync(sink.fileno())
                _write_sidecar(sidecar, url, download, done)
            if tty and time.monotonic() - last_report > 0.5:
                last_report = time.monotonic()
                _report(download)
        sink.flush()
        os.fsync(sink.fileno())
    _finish(part, output, sidecar)
    if tty:
        _report(download)
        sys.stderr.write("\n")


def _finish(part: Path, output: Path, sidecar: Path) -> None:
    part.replace(output)
    sidecar.unlink(missing_ok=True)


def _report(download: Download) -> None:
    p = download.progress
    rate = p.delivered_bytes / max(time.monotonic() - p.started, 1e-3) / (1 << 20)
    active = sum(1 for s in p.providers.values() if s.chunks and not s.dropped)
    sys.stderr.write(
        f"\r{p.delivered_bytes / (1 << 20):9.1f} MiB  {rate:7.1f} MiB/s  "
        f"{format_amount(p.paid, BTT_LOCAL)} spent  {active} providers   "
    )
    sys.stderr.flush()


def _sidecar(output: Path | None) -> Path | None:
    return None if output is None else output.with_name(output.name + ".atlas")


def _load_sidecar(sidecar: Path | None, url: str) -> tuple[bytes, int] | None:
    if sidecar is None or not sidecar.exists():
        return None
    try:
        doc = json.loads(sidecar.read_text())
        if doc.get("url") != url:
            return None
        return b64url_decode(doc["head"], MAX_HEAD_BYTES, "head"), int(doc["chunks_done"])
    except (ValueError, KeyError, ProtocolError):
        return None


def _write_sidecar(sidecar: Path, url: str, download: Download, done: int) -> None:
    tmp = sidecar.with_suffix(".tmp")
    tmp.write_text(json.dumps({
        "url": url, "head": b64url_encode(download.head.encode()), "chunks_done": done,
    }))  # fmt: skip
    tmp.replace(sidecar)
