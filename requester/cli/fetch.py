"""``atlas fetch``: a paid, verified, multi-provider download to a file or stdout.

With ``-o FILE`` the bytes go to ``FILE.part`` first, with a sidecar that lets
the same command resume (:mod:`requester.cli.fetch_output`). One fetch spends at
most ``max_spend`` (default 1 BTT); the error says how to raise it. The download
itself is :mod:`requester.cli.fetch_run`, imported only when a fetch runs.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

import click

from requester import keystore
from requester.cli.fetch_progress import final_line, size_text
from requester.cli.options import settings_options
from requester.errors import AtlasError
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
        keys = unlock(settings)
    except AtlasError as exc:
        raise click.ClickException(_with_notes(str(exc), exc)) from exc
    # The SDK itself (~60 ms of imports) only for a fetch that runs: not for --help.
    from requester.cli.fetch_run import run
    from requester.client import TorrentListing

    try:
        # A bar only for a person watching both streams: not with --json, not when either
        # stream is redirected, and not when the body itself goes to the terminal.
        watched = sys.stdout.isatty() and sys.stderr.isatty()
        shown = watched and output is not None and not as_json
        summary = asyncio.run(run(url, output, settings, limit, torrent_file, shown, keys))
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


def unlock(settings: Settings) -> keystore.Keys | None:
    """The wallet's keys, or None without a wallet or a ledger (the free allowance only).

    Called before the SDK is imported: the wallet's argon2id (64 MiB and ~0.1 s of CPU for a
    wallet made by ``atlas wallet new``) runs without the GIL while aiohttp loads in its
    thread (:data:`requester.cli.root.WARM`)."""
    if not settings.wallet_path.exists() or settings.ledger is None:
        return None
    passphrase = keystore.stored_passphrase(settings.home)
    if passphrase is None:
        if not sys.stdin.isatty():
            raise keystore.KeystoreError(f"set {keystore.PASSPHRASE_ENV} to unlock the wallet")
        passphrase = click.prompt("wallet passphrase", hide_input=True)
    return keystore.load(settings.wallet_path, passphrase)


def torrent_choice(files: list[dict[str, Any]]) -> str:
    """The question a torrent of several files asks: which one, with each file's size."""
    listing = "\n".join(
        f"  {f.get('path')}  ({size_text(f.get('size'))})" for f in files if isinstance(f, dict)
    )
    return f"the torrent holds {len(files)} files: name one with --file PATH\n{listing}"


def _with_notes(message: str, exc: BaseException) -> str:
    return "\n".join([message, *getattr(exc, "__notes__", [])])
