"""A requester in its own process, for the payer's crash points.

    python -m tests.crash.payer_worker HOME LEDGER EDGE URL [--rounds N]
        [--deposit UNITS] [--open-every K]

Downloads URL through EDGE ``--rounds`` times with the SDK (``AtlasClient``
over a ``ChannelManager`` and the ``PayerStore`` in HOME, as ``atlas fetch``
does), paying per chunk; a channel of ``--deposit`` that runs out is topped
up by as much. With ``--open-every``, it also opens a new channel to the
edge every K chunks, as ``atlas channel open`` does.
HOME holds the payer's secret key (``key.hex``) and ``state.sqlite3``. Prints
``{"chunks": N}`` when done. Started with ``ATLAS_FAILPOINTS``, it dies at the
armed step; started again on the same HOME, it resumes from its store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp

from requester.channel_manager import ChannelManager, DepositPolicy
from requester.client import AtlasClient
from requester.ledger_client import LedgerClient
from requester.payer_store import PayerStore
from requester.protocol import PayerKey


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="payer_worker")
    parser.add_argument("home", type=Path)
    parser.add_argument("ledger")
    parser.add_argument("edge")
    parser.add_argument("url")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--deposit", type=int, default=DepositPolicy().deposit)
    parser.add_argument("--open-every", type=int, default=0)
    return parser.parse_args()


async def _run(args: argparse.Namespace) -> int:
    key = PayerKey(bytes.fromhex((args.home / "key.hex").read_text()))
    store = PayerStore(args.home / "state.sqlite3")
    chunks = 0
    try:
        async with aiohttp.ClientSession() as session:
            ledger = LedgerClient(args.ledger, session)
            manager = ChannelManager(key, store, ledger, DepositPolicy(args.deposit, 3600))
            client = AtlasClient([args.edge], session, manager)
            for _ in range(args.rounds):
                download = await client.open(args.url)
                async for _data in download.chunks():
                    chunks += 1
                    if args.open_every and chunks % args.open_every == 0:
                        payee = manager.channels()[-1].terms.payee
                        await manager.open_channel(payee, args.deposit, int(time.time()))
    finally:
        store.close()
    return chunks


def main() -> None:
    args = _arguments()
    print(json.dumps({"chunks": asyncio.run(_run(args))}), flush=True)


if __name__ == "__main__":
    main()
